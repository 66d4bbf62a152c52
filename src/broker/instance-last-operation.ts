// GET /v2/service_instances/:instance_id/last_operation
import type { RequestHandler } from 'express';
import type { BrokerService } from '../service/broker-service.ts';
import { idParam, stringQuery } from './middleware.ts';
import { sendLastOperation } from './retry-after.ts';
import { readWaiting } from './long-poll.ts';

export function instanceLastOperation(service: BrokerService): RequestHandler {
  return async (req, res) => {
    const instanceId = idParam(req, 'instance_id');
    stringQuery(req, 'service_id', false);
    stringQuery(req, 'plan_id', false);
    const operation = stringQuery(req, 'operation', false);
    const read = () => service.lastOperation(instanceId, operation);
    sendLastOperation(res, await readWaiting(req, res, read, (id, signal) => service.operationEnd(id, signal), operation));
  };
}
