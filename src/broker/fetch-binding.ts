// GET /v2/service_instances/:instance_id/service_bindings/:binding_id (OSB 2.14+)
import type { RequestHandler } from 'express';
import type { BrokerService } from '../service/broker-service.ts';
import { errors } from '../osb/errors.ts';
import { since } from '../osb/versions.ts';
import { idParam, stringQuery } from './middleware.ts';

export function fetchBinding(service: BrokerService): RequestHandler {
  return async (req, res) => {
    const meta = res.locals.meta;
    if (meta.apiMinor < since.fetch) throw errors.versionTooOld('Fetching a service binding', since.fetch);
    const instanceId = idParam(req, 'instance_id');
    const bindingId = idParam(req, 'binding_id');
    stringQuery(req, 'service_id', false);
    stringQuery(req, 'plan_id', false);
    res.status(200).json(await service.fetchBinding(instanceId, bindingId, meta));
  };
}
