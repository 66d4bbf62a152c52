// Facts about a provisioned instance that the controller records in its status
// for developers, who have no broker credentials: what the broker's provisioner
// made (Berth's GET /berth/v1/service_instances/:id/resources, shown by
// `berth trace`) and the maintenance version the instance is at (`berth
// upgrade`). Both are looked up after an operation ends, on a forced resync,
// and (the resources) when the instance's bindings changed. Best effort: a
// failure is recorded, never fails the reconcile.
import { OsbError, type ProvisionedResource } from '../osb-client/index.ts';
import type { Broker } from './brokers.ts';
import { nowIso, StatusDraft, type ReconcileContext } from './context.ts';
import type { ObjectRef } from './kube.ts';
import type { ProvisionedResourcesStatus, RecordedResource, ServiceInstance, ServiceInstanceStatus } from './resources.ts';

/** Entries kept per level: the status is a summary (a chart with many replicas lists the first ones). */
const MAX_CHILDREN = 20;

export function recorded(r: ProvisionedResource): RecordedResource {
  const children = r.children ?? [];
  const kept = children.slice(0, MAX_CHILDREN).map(recorded);
  if (children.length > MAX_CHILDREN) kept.push({ kind: 'More', name: `${children.length - MAX_CHILDREN}-more`, state: 'unknown', message: `${children.length - MAX_CHILDREN} more not recorded here.` });
  return {
    kind: r.kind,
    name: r.name,
    state: r.state,
    ...(r.message ? { message: r.message } : {}),
    ...(r.binding_id ? { bindingID: r.binding_id } : {}),
    ...(kept.length ? { children: kept } : {}),
  };
}

/** Asks the broker what its provisioner made for the instance and records it in the draft. */
export async function recordProvisioned(ctx: ReconcileContext, si: ServiceInstance, draft: StatusDraft<ServiceInstanceStatus>, broker: Broker): Promise<void> {
  let summary: ProvisionedResourcesStatus;
  try {
    ctx.brokerCall('provisioned_resources');
    const r = await broker.client.provisionedResources(si.metadata.uid!);
    summary = r
      ? {
          takenAt: r.taken_at,
          exposed: true,
          kind: r.kind,
          bindingIDs: [...r.binding_ids].sort(),
          resources: r.resources.slice(0, MAX_CHILDREN).map(recorded),
          ...(r.problem ? { problem: r.problem } : {}),
        }
      : { takenAt: nowIso(), exposed: false };
  } catch (err) {
    const why = err instanceof OsbError ? err.brokerMessage : (err as Error).message;
    summary = { ...draft.status.provisionedResources, takenAt: nowIso(), exposed: true, problem: `The controller could not ask broker "${broker.name}" what it provisioned: ${why}` };
  }
  draft.status.provisionedResources = summary;
}

/**
 * After the status that ends an operation is written (Ready first: a developer waits for it), asks what the
 * provisioner made and writes that as a second, quiet status change (no condition changes, so no Events).
 */
export async function recordProvisionedAfter(ctx: ReconcileContext, si: ServiceInstance, committed: ServiceInstanceStatus, broker: Broker): Promise<void> {
  const draft = new StatusDraft<ServiceInstanceStatus>({ kind: 'ServiceInstance', metadata: si.metadata as ObjectRef['metadata'] }, committed);
  await recordProvisioned(ctx, si, draft, broker);
  await draft.commit(ctx.kube, { observed: false });
}

/** The bound bindings of the instance (their OSB ids), from the informer's cache: no broker call. */
export function boundBindingIDs(ctx: ReconcileContext, si: ServiceInstance): string[] {
  return ctx.bindings
    .list(si.metadata.namespace)
    .filter((b) => b.spec.instanceRef.name === si.metadata.name && b.status?.bound && b.status.bindingID)
    .map((b) => b.status!.bindingID!)
    .sort();
}

/** Whether the recorded resources predate a bind or unbind (Berth adds or removes a login with each). */
export function bindingsChangedSince(ctx: ReconcileContext, si: ServiceInstance, status: ServiceInstanceStatus): boolean {
  const p = status.provisionedResources;
  if (!p || p.exposed === false || !p.bindingIDs) return false;
  return boundBindingIDs(ctx, si).join(',') !== p.bindingIDs.join(',');
}

/**
 * The maintenance version the instance is at: the broker's own word (GET instance) when it gives one,
 * else `sent` (what the controller last sent, or the plan's version at provision); unchanged otherwise.
 */
export async function recordMaintenance(
  ctx: ReconcileContext,
  si: ServiceInstance,
  draft: StatusDraft<ServiceInstanceStatus>,
  broker: Broker,
  ids: { service_id: string; plan_id: string },
  sent: { version: string; description?: string } | undefined,
): Promise<void> {
  const s = draft.status;
  const service = broker.catalog.services.find((x) => x.id === ids.service_id);
  if (service?.instances_retrievable) {
    try {
      ctx.brokerCall('fetch_instance');
      const fetched = await broker.client.fetchInstance(si.metadata.uid!, ids);
      if (fetched.dashboard_url) s.dashboardURL = fetched.dashboard_url;
      if (fetched.maintenance_info?.version) {
        s.maintenanceInfo = { version: fetched.maintenance_info.version, ...(fetched.maintenance_info.description ? { description: fetched.maintenance_info.description } : {}) };
        return;
      }
    } catch (err) {
      ctx.log.debug({ err, instance: si.metadata.uid }, 'reading the instance back for its maintenance version failed; using what was sent');
    }
  }
  if (sent) s.maintenanceInfo = { version: sent.version, ...(sent.description ? { description: sent.description } : {}) };
}
