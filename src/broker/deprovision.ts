// DELETE /v2/service_instances/:instance_id
import type { RequestHandler } from 'express';
import type { BrokerService } from '../service/broker-service.ts';
import { acceptsIncomplete, idParam, stringQuery } from './middleware.ts';

export function deprovision(service: BrokerService): RequestHandler {
  return async (req, res) => {
    const request = {
      instanceId: idParam(req, 'instance_id'),
      serviceId: stringQuery(req, 'service_id', true)!,
      planId: stringQuery(req, 'plan_id', true)!,
      acceptsIncomplete: acceptsIncomplete(req),
    };
    const answer = await service.deprovision(request, res.locals.meta);
    res.status(answer.status).json(answer.status === 202 ? { operation: answer.operation } : {});
  };
}
