// PATCH /v2/service_instances/:instance_id
import type { Broker } from '../../broker/index.ts';
import type { Route } from '../reply.ts';
import { schemas } from '../schemas.ts';
import { instanceChange } from './instance-change.ts';

export const update = (broker: Broker): Route => instanceChange(schemas.updateBody, (request, meta) => broker.instances.update(request, meta));
