// GET /v2/service_instances/:instance_id/service_bindings/:binding_id/last_operation (OSB 2.14+)
import type { Broker } from '../../broker/index.ts';
import { errors } from '../../osb/errors.ts';
import { since } from '../../osb/versions.ts';
import { lastOperationReply } from '../presenters.ts';
import type { Route } from '../reply.ts';
import { readWaiting, withWaitEcho } from '../long-poll.ts';
import { parse, schemas } from '../schemas.ts';

export const bindingLastOperation = (broker: Broker): Route => async ({ params, query, meta }) => {
  if (meta.apiMinor < since.asyncBindings) throw errors.versionTooOld('Polling a binding operation', since.asyncBindings);
  const { instance_id, binding_id } = parse(schemas.bindingParams, params);
  const { operation } = parse(schemas.lastOperationQuery, query);
  const wait = meta.waitSeconds ?? 0;
  const status = await readWaiting(wait, () => broker.bindings.lastOperation(instance_id, binding_id, operation), broker.operationEnd, operation);
  if (status === 'gone') throw errors.gone();
  return withWaitEcho(lastOperationReply(status), wait);
};
