// PUT /v2/service_instances/:instance_id
import type { RequestHandler } from 'express';
import type { BrokerService } from '../service/broker-service.ts';
import { acceptsIncomplete, idParam } from './middleware.ts';
import { maintenanceVersion, obj, objectBody, platformGuid, str } from './body.ts';
import { instanceBody } from './instance-body.ts';

export function provision(service: BrokerService): RequestHandler {
  return async (req, res) => {
    const instanceId = idParam(req, 'instance_id');
    const body = objectBody(req.body);
    const request = {
      instanceId,
      serviceId: str(body, 'service_id', true),
      planId: str(body, 'plan_id', true),
      context: obj(body, 'context'),
      organizationGuid: platformGuid(body, 'organization_guid'),
      spaceGuid: platformGuid(body, 'space_guid'),
      parameters: obj(body, 'parameters'),
      maintenanceVersion: maintenanceVersion(body),
      acceptsIncomplete: acceptsIncomplete(req),
    };
    const meta = res.locals.meta;
    const answer = await service.provision(request, meta);
    res.status(answer.status).json(instanceBody(answer, meta.apiMinor));
  };
}
