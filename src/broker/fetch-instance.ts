// GET /v2/service_instances/:instance_id (OSB 2.14+)
import type { RequestHandler } from 'express';
import type { BrokerService } from '../service/broker-service.ts';
import { errors } from '../osb/errors.ts';
import { since } from '../osb/versions.ts';
import { idParam, stringQuery } from './middleware.ts';

export function fetchInstance(service: BrokerService): RequestHandler {
  return async (req, res) => {
    const meta = res.locals.meta;
    if (meta.apiMinor < since.fetch) throw errors.versionTooOld('Fetching a service instance', since.fetch);
    const instanceId = idParam(req, 'instance_id');
    stringQuery(req, 'service_id', false);
    stringQuery(req, 'plan_id', false);
    res.status(200).json(await service.fetchInstance(instanceId, meta));
  };
}
