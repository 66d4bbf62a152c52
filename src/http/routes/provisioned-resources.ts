// GET /berth/v1/service_instances/:instance_id/resources: Berth's own read-only
// endpoint (not OSB; platforms never call it) that `berth trace` and the
// controller use to show what the provisioner made. Same credentials as /v2.
import type { Broker } from '../../broker/index.ts';
import type { ProvisionedResource } from '../../broker/resources.ts';
import type { Route } from '../reply.ts';
import { parse, schemas } from '../schemas.ts';

export const provisionedResources = (broker: Broker): Route => async ({ params }) => {
  const { instance_id } = parse(schemas.instanceParams, params);
  const r = await broker.resources.describe(instance_id);
  return {
    status: 200,
    body: {
      instance_id: r.instanceId,
      kind: r.kind,
      instance_state: r.instanceState,
      taken_at: r.takenAt,
      binding_ids: r.bindingIds,
      resources: r.resources.map(resourceBody),
      ...(r.problem ? { problem: r.problem } : {}),
    },
  };
};

function resourceBody(n: ProvisionedResource): Record<string, unknown> {
  return {
    kind: n.kind,
    name: n.name,
    state: n.state,
    ...(n.message ? { message: n.message } : {}),
    ...(n.bindingId ? { binding_id: n.bindingId } : {}),
    ...(n.children?.length ? { children: n.children.map(resourceBody) } : {}),
  };
}
