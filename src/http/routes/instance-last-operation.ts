// GET /v2/service_instances/:instance_id/last_operation
import type { Broker } from '../../broker/index.ts';
import { errors } from '../../osb/errors.ts';
import { lastOperationReply } from '../presenters.ts';
import type { Route } from '../reply.ts';
import { readWaiting, withWaitEcho } from '../long-poll.ts';
import { parse, schemas } from '../schemas.ts';

export const instanceLastOperation = (broker: Broker): Route => async ({ params, query, meta }) => {
  const { instance_id } = parse(schemas.instanceParams, params);
  const { operation } = parse(schemas.lastOperationQuery, query);
  const wait = meta.waitSeconds ?? 0;
  const status = await readWaiting(wait, () => broker.instances.lastOperation(instance_id, operation), broker.operationEnd, operation);
  if (status === 'gone') throw errors.gone();
  return withWaitEcho(lastOperationReply(status), wait);
};
