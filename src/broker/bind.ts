// PUT /v2/service_instances/:instance_id/service_bindings/:binding_id
import type { RequestHandler } from 'express';
import type { BrokerService } from '../service/broker-service.ts';
import { acceptsIncomplete, idParam } from './middleware.ts';
import { obj, objectBody, str } from './body.ts';

export function bind(service: BrokerService): RequestHandler {
  return async (req, res) => {
    const instanceId = idParam(req, 'instance_id');
    const bindingId = idParam(req, 'binding_id');
    const body = objectBody(req.body);
    const bindResource = obj(body, 'bind_resource');
    if (bindResource) {
      str(bindResource, 'app_guid');
      str(bindResource, 'route');
    }
    const request = {
      instanceId,
      bindingId,
      serviceId: str(body, 'service_id', true),
      planId: str(body, 'plan_id', true),
      context: obj(body, 'context'),
      bindResource,
      appGuid: str(body, 'app_guid'),
      parameters: obj(body, 'parameters'),
      predecessorBindingId: str(body, 'predecessor_binding_id'),
      acceptsIncomplete: acceptsIncomplete(req),
    };
    const answer = await service.bind(request, res.locals.meta);
    res.status(answer.status).json(answer.status === 202 ? { operation: answer.operation } : answer.binding);
  };
}
