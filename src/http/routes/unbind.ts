// DELETE /v2/service_instances/:instance_id/service_bindings/:binding_id
import type { Broker } from '../../broker/index.ts';
import { deleteBody } from '../presenters.ts';
import type { Route } from '../reply.ts';
import { parse, schemas } from '../schemas.ts';

export const unbind = (broker: Broker): Route => async ({ params, query, meta }) => {
  const { instance_id, binding_id } = parse(schemas.bindingParams, params);
  const q = parse(schemas.deleteQuery, query);
  const answer = await broker.bindings.unbind(
    { instanceId: instance_id, bindingId: binding_id, serviceId: q.service_id!, planId: q.plan_id!, acceptsIncomplete: q.accepts_incomplete },
    meta,
  );
  return { status: answer.status, body: deleteBody(answer) };
};
