// GET /v2/service_instances/:instance_id/last_operation
import type { Broker } from '../../broker/index.ts';
import { errors } from '../../osb/errors.ts';
import { lastOperationReply } from '../presenters.ts';
import type { Route } from '../reply.ts';
import { parse, schemas } from '../schemas.ts';

export const instanceLastOperation = (broker: Broker): Route => async ({ params, query }) => {
  const { instance_id } = parse(schemas.instanceParams, params);
  const { operation } = parse(schemas.lastOperationQuery, query);
  const status = await broker.instances.lastOperation(instance_id, operation);
  if (status === 'gone') throw errors.gone();
  return lastOperationReply(status);
};
