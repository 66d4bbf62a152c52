// PATCH /v2/service_instances/:instance_id
import type { Broker } from '../../broker/index.ts';
import { instanceBody } from '../presenters.ts';
import type { Route } from '../reply.ts';
import { objectBody, parse, schemas } from '../schemas.ts';

export const update = (broker: Broker): Route => async ({ params, query, body: raw, meta }) => {
  const { instance_id } = parse(schemas.instanceParams, params);
  const body = parse(schemas.updateBody, objectBody(raw));
  const { accepts_incomplete } = parse(schemas.asyncQuery, query);
  const answer = await broker.instances.update(
    {
      instanceId: instance_id,
      serviceId: body.service_id,
      planId: body.plan_id,
      context: body.context,
      parameters: body.parameters,
      maintenanceVersion: body.maintenance_info,
      acceptsIncomplete: accepts_incomplete,
    },
    meta,
  );
  return { status: answer.status, body: instanceBody(answer, meta.apiMinor) };
};
