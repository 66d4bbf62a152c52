// PUT /v2/service_instances/:instance_id/service_bindings/:binding_id
import type { Broker } from '../../broker/index.ts';
import { bindingBody } from '../presenters.ts';
import type { Route } from '../reply.ts';
import { objectBody, parse, schemas } from '../schemas.ts';

export const bind = (broker: Broker): Route => async ({ params, query, body, meta }) => {
  const { instance_id, binding_id } = parse(schemas.bindingParams, params);
  const fields = parse(schemas.bindBody, objectBody(body));
  const { accepts_incomplete } = parse(schemas.asyncQuery, query);
  const answer = await broker.bindings.bind({ instanceId: instance_id, bindingId: binding_id, ...fields, acceptsIncomplete: accepts_incomplete }, meta);
  return { status: answer.status, body: answer.status === 202 ? { operation: answer.operation } : bindingBody(answer.binding, meta.apiMinor) };
};
