// GET /v2/service_instances/:instance_id/service_bindings/:binding_id/last_operation (OSB 2.14+)
import type { RequestHandler } from 'express';
import type { BrokerService } from '../service/broker-service.ts';
import { errors } from '../osb/errors.ts';
import { since } from '../osb/versions.ts';
import { idParam, stringQuery } from './middleware.ts';
import { sendLastOperation } from './retry-after.ts';

export function bindingLastOperation(service: BrokerService): RequestHandler {
  return async (req, res) => {
    if (res.locals.meta.apiMinor < since.asyncBindings) throw errors.versionTooOld('Polling a binding operation', since.asyncBindings);
    const instanceId = idParam(req, 'instance_id');
    const bindingId = idParam(req, 'binding_id');
    stringQuery(req, 'service_id', false);
    stringQuery(req, 'plan_id', false);
    const operation = stringQuery(req, 'operation', false);
    sendLastOperation(res, await service.bindingLastOperation(instanceId, bindingId, operation));
  };
}
