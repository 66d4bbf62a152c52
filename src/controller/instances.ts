// Reconciles one ServiceInstance: provision (PUT with metadata.uid as the OSB
// instance id), update (PATCH when the plan or the parameters, parametersFrom
// Secrets included, changed), follow operations, and on deletion unbind-first
// then deprovision (or orphan). Level-triggered: each pass compares the spec's
// hash with the hash the broker last accepted, so a resource that did not change
// costs no broker call.
import type { V1Secret } from '@kubernetes/client-node';
import { OsbError, OsbTransportError, type LastOperation as OsbLastOperation, type MaintenanceInfo, type OsbClient } from '../osb-client/index.ts';
import { bindingsChangedSince, recordMaintenance, recordProvisioned, recordProvisionedAfter } from './instance-facts.ts';
import { BrokerUnavailable, type Broker } from './brokers.ts';
import { pollOptions } from './operation-watch.ts';
import { RetryLater, StatusDraft, commitAccepted, hashOf, nowIso, type ReconcileContext } from './context.ts';
import type { ObjectRef } from './kube.ts';
import { failpoint } from '../failpoints.ts';
import { FINALIZER, LOCAL_BROKER, RECONCILE_AT_ANNOTATION, hasFinalizer, isPaused, type ServiceInstance, type ServiceInstanceStatus } from './resources.ts';

/** A catalog is read again for an unknown maintenance version at most this often. */
const CATALOG_REREAD_MS = 2_000;

export const instanceKey = (namespace: string, name: string): string => `instance/${namespace}/${name}`;

const ref = (si: ServiceInstance): ObjectRef => ({ kind: 'ServiceInstance', metadata: si.metadata as ObjectRef['metadata'] });
const brokerOf = (si: ServiceInstance): string => si.spec.brokerRef?.name ?? LOCAL_BROKER;

/** The Kubernetes profile of the OSB context, as Service Catalog sent it. */
export function kubernetesContext(ctx: ReconcileContext, namespace: string, name: string, annotations: Record<string, string> | undefined) {
  return { platform: 'kubernetes', namespace, clusterid: ctx.clusterId, instance_name: name, ...(annotations ? { instance_annotations: annotations } : {}) };
}

export async function reconcileInstance(ctx: ReconcileContext, namespace: string, name: string): Promise<void> {
  const si = ctx.instances.get(name, namespace);
  if (!si) return;
  const draft = new StatusDraft<ServiceInstanceStatus>(ref(si), si.status);
  if (isPaused(si.metadata)) {
    draft.condition('Synced', 'False', 'ReconcilePaused', `Reconciliation is paused by the annotation services.berth.dev/paused.`);
    return draft.commit(ctx.kube, { observed: false });
  }
  if (si.metadata.deletionTimestamp) return finalize(ctx, si, draft);
  if (!hasFinalizer(si.metadata)) {
    await ctx.kube.setFinalizer(ref(si), true);
    return; // the update event brings it back
  }

  let broker: Broker;
  try {
    broker = await ctx.brokers.get(brokerOf(si));
  } catch (err) {
    return unavailable(ctx, draft, err);
  }
  const found = await ctx.brokers.lookup(broker, si.spec.offering, si.spec.plan).catch((err: unknown) => err as Error);
  if (found instanceof Error) return unavailable(ctx, draft, found);
  if (typeof found === 'string') {
    draft.condition('Synced', 'False', 'PlanNotFound', found);
    if (!draft.status.provisioned) draft.condition('Ready', 'False', 'PlanNotFound', found);
    await draft.commit(ctx.kube);
    ctx.queue.addAfter(instanceKey(namespace, name), 60_000);
    return;
  }
  let { service, plan } = found;
  const s = draft.status;
  const forced = si.metadata.annotations?.[RECONCILE_AT_ANNOTATION];
  const forcedNow = Boolean(forced && forced !== s.reconciledAt && s.provisioned && s.lastOperation?.state !== 'in progress');
  // The version `berth upgrade` asks for must be the plan's current one; a catalog that changed since it was read is read again.
  const wantedVersion = si.spec.maintenanceInfo?.version;
  const stale = wantedVersion !== undefined && wantedVersion !== s.maintenanceInfo?.version && plan.maintenance_info?.version !== wantedVersion;
  // A forced resync (someone asked) always reads it again; an unknown version at most every CATALOG_REREAD_MS, since a new
  // catalog replaces the broker's client (the long polls in flight on it end, and their reconciles poll again).
  if (forcedNow || (stale && Date.now() - broker.fetchedAt > CATALOG_REREAD_MS)) {
    try {
      ctx.brokerCall('catalog');
      broker = await ctx.brokers.refresh(broker.name);
      const again = ctx.brokers.find(broker, si.spec.offering, si.spec.plan);
      if (typeof again !== 'string') ({ service, plan } = again);
    } catch (err) {
      ctx.log.debug({ err, broker: broker.name }, 'reading the catalog again failed; going on with the one known');
    }
  }
  s.instanceID = si.metadata.uid;
  s.brokerName = broker.name;
  s.offeringID = service.id;
  s.planUpdateable = plan.plan_updateable ?? service.plan_updateable ?? false;
  if (!s.provisioned) s.planID = plan.id;

  const parameters = parametersOf(ctx, si);
  if (typeof parameters === 'string') {
    draft.condition('Synced', 'False', 'ParametersFromNotFound', parameters);
    if (!s.provisioned) draft.condition('Ready', 'False', 'ParametersFromNotFound', parameters);
    return draft.commit(ctx.kube); // the Secret informer brings it back when the Secret appears
  }
  if (wantedVersion !== undefined && wantedVersion !== s.maintenanceInfo?.version && plan.maintenance_info?.version !== wantedVersion) {
    const offered = plan.maintenance_info?.version ? `maintenance version ${plan.maintenance_info.version}` : 'no maintenance version';
    const message = `spec.maintenanceInfo.version asks for ${wantedVersion}, but plan "${si.spec.plan}" of broker "${broker.name}" offers ${offered}; set it to the plan's version (berth upgrade does) or remove it.`;
    draft.condition('Synced', 'False', 'MaintenanceVersionUnavailable', message);
    return draft.commit(ctx.kube);
  }
  // The requested maintenance version is part of what the broker must have applied (absent: hashes as before it existed).
  const hash = hashOf({ plan: plan.id, parameters, ...(wantedVersion !== undefined ? { maintenance: wantedVersion } : {}) });
  const ids = { service_id: service.id, plan_id: s.planID ?? plan.id };

  if (s.lastOperation?.state === 'in progress') return follow(ctx, si, draft, broker, ids);

  // A forced resync: read the instance back; one the broker lost is provisioned again under the same id.
  if (forcedNow) {
    s.reconciledAt = forced;
    try {
      ctx.brokerCall('fetch_instance');
      const fetched = await broker.client.fetchInstance(si.metadata.uid!, ids);
      if (fetched.dashboard_url) s.dashboardURL = fetched.dashboard_url;
      if (fetched.maintenance_info?.version) s.maintenanceInfo = { ...fetched.maintenance_info };
      await recordProvisioned(ctx, si, draft, broker);
    } catch (err) {
      if (err instanceof OsbError && (err.status === 404 || err.status === 410)) {
        s.provisioned = false;
        s.appliedHash = undefined;
      } else if (!(err instanceof OsbError && err.status === 422)) throw err;
    }
    draft.event('Normal', 'Resynced', `Resynced at the request of ${RECONCILE_AT_ANNOTATION}=${forced}.`);
  }

  if (!s.provisioned) {
    if (s.rejectedHash === hash) return draft.commit(ctx.kube);
    // A failed create leaves a failed instance under this id at the broker: remove it before trying again.
    if (s.lastOperation?.type === 'create' && s.lastOperation.state === 'failed') await deprovisionQuietly(ctx, broker.client, si.metadata.uid!, ids);
    return provision(ctx, si, draft, broker, ids, parameters, hash, plan.maintenance_info);
  }
  if (s.appliedHash !== hash && s.rejectedHash !== hash) {
    const upgrade = wantedVersion !== undefined && wantedVersion !== s.maintenanceInfo?.version ? plan.maintenance_info : undefined;
    return update(ctx, si, draft, broker, plan.id, parameters, hash, upgrade);
  }
  // What the provisioner made is recorded once for instances from before the record, and again after a bind or unbind.
  if (!s.provisionedResources || bindingsChangedSince(ctx, si, s)) await recordProvisioned(ctx, si, draft, broker);

  // Steady state: nothing to ask the broker. A refused spec keeps Synced=False with the broker's words.
  if (s.rejectedHash !== hash) {
    if (s.lastOperation?.state !== 'failed') draft.condition('Ready', 'True', 'Available', 'The instance is ready.');
    draft.condition('Synced', 'True', 'ReconcileSuccess', '');
    draft.condition('Progressing', 'False', 'Idle', '');
  }
  await draft.commit(ctx.kube);
}

/** The parameters: spec.parameters with each parametersFrom Secret key's JSON object merged over them; or why not. */
export function parametersOf(ctx: ReconcileContext, si: ServiceInstance): Record<string, unknown> | string {
  let parameters: Record<string, unknown> = { ...(si.spec.parameters ?? {}) };
  for (const from of si.spec.parametersFrom ?? []) {
    const { name, key } = from.secretKeyRef;
    const secret: V1Secret | undefined = ctx.secrets.get(name, si.metadata.namespace);
    if (!secret) return `The Secret "${name}" named in parametersFrom does not exist in namespace "${si.metadata.namespace}".`;
    const raw = secret.data?.[key] !== undefined ? Buffer.from(secret.data[key]!, 'base64').toString('utf8') : secret.stringData?.[key];
    if (raw === undefined) return `The Secret "${name}" has no key "${key}" (named in parametersFrom).`;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      return `The value of key "${key}" in Secret "${name}" (parametersFrom) is not JSON; it must be a JSON object.`;
    }
    if (!value || typeof value !== 'object' || Array.isArray(value)) return `The value of key "${key}" in Secret "${name}" (parametersFrom) must be a JSON object.`;
    parameters = { ...parameters, ...(value as Record<string, unknown>) };
  }
  return parameters;
}

async function provision(
  ctx: ReconcileContext,
  si: ServiceInstance,
  draft: StatusDraft<ServiceInstanceStatus>,
  broker: Broker,
  ids: { service_id: string; plan_id: string },
  parameters: Record<string, unknown>,
  hash: string,
  maintenance: MaintenanceInfo | undefined,
): Promise<void> {
  const s = draft.status;
  const namespace = si.metadata.namespace!;
  const id = si.metadata.uid!;
  try {
    ctx.brokerCall('provision');
    const r = await broker.client.provision(id, {
      ...ids,
      organization_guid: ctx.clusterId,
      space_guid: namespace,
      context: kubernetesContext(ctx, namespace, si.metadata.name!, si.metadata.annotations),
      parameters,
    });
    failpoint('controller.provision-answered');
    if (r.dashboard_url) s.dashboardURL = r.dashboard_url;
    if (r.outcome === 'accepted') {
      await commitAccepted(ctx.kube, draft, { type: 'create', operation: r.operation, hash, ready: ['Creating', 'The broker is provisioning the instance.'], progressing: ['Provisioning', 'Waiting for the broker to finish provisioning.'] });
      watch(ctx, si, broker, ids, r.operation);
      return;
    }
    s.provisioned = true;
    applied(draft, 'create', hash, ids.plan_id);
    await recordMaintenance(ctx, si, draft, broker, ids, maintenance);
    await draft.commit(ctx.kube);
    await recordProvisionedAfter(ctx, si, draft.status, broker);
  } catch (err) {
    await brokerRefused(ctx, si, draft, err, hash, 'create', ids);
  }
}

/** The broker answered a provision or update synchronously: the instance has what the spec asked for. */
function applied(draft: StatusDraft<ServiceInstanceStatus>, type: 'create' | 'update', hash: string, planId: string): void {
  const s = draft.status;
  s.appliedHash = hash;
  s.rejectedHash = undefined;
  s.planID = planId;
  s.lastOperation = { type, state: 'succeeded', startTime: nowIso(), endTime: nowIso() };
  draft.condition('Ready', 'True', 'Available', 'The instance is ready.');
  draft.condition('Synced', 'True', 'ReconcileSuccess', '');
  draft.condition('Progressing', 'False', 'Idle', '');
}

async function update(
  ctx: ReconcileContext,
  si: ServiceInstance,
  draft: StatusDraft<ServiceInstanceStatus>,
  broker: Broker,
  planId: string,
  parameters: Record<string, unknown>,
  hash: string,
  upgrade: MaintenanceInfo | undefined,
): Promise<void> {
  const s = draft.status;
  const previousPlan = s.planID!;
  const ids = { service_id: s.offeringID!, plan_id: planId };
  try {
    ctx.brokerCall('update');
    const r = await broker.client.update(si.metadata.uid!, {
      service_id: s.offeringID!,
      ...(planId !== previousPlan ? { plan_id: planId } : {}),
      parameters,
      context: kubernetesContext(ctx, si.metadata.namespace!, si.metadata.name!, si.metadata.annotations),
      ...(upgrade ? { maintenance_info: upgrade } : {}),
      previous_values: { service_id: s.offeringID, plan_id: previousPlan, ...(s.maintenanceInfo?.version ? { maintenance_info: { version: s.maintenanceInfo.version } } : {}) },
    });
    if (r.dashboard_url) s.dashboardURL = r.dashboard_url;
    if (r.outcome === 'accepted') {
      s.pendingPlanID = planId;
      await commitAccepted(ctx.kube, draft, { type: 'update', operation: r.operation, hash, progressing: ['Updating', 'Waiting for the broker to finish updating.'] });
      watch(ctx, si, broker, ids, r.operation);
      return;
    }
    applied(draft, 'update', hash, planId);
    draft.event('Normal', 'Updated', upgrade ? `The broker upgraded the instance to maintenance version ${upgrade.version}.` : 'The broker updated the instance.');
    await recordMaintenance(ctx, si, draft, broker, ids, upgrade);
    await draft.commit(ctx.kube);
    await recordProvisionedAfter(ctx, si, draft.status, broker);
  } catch (err) {
    await brokerRefused(ctx, si, draft, err, hash, 'update', ids);
  }
}

/** Starts following the operation; the queue gets the key back when it ends. */
function watch(ctx: ReconcileContext, si: ServiceInstance, broker: Broker, ids: { service_id: string; plan_id: string }, operation: string | undefined): void {
  const id = si.metadata.uid!;
  ctx.watchOperation(instanceKey(si.metadata.namespace!, si.metadata.name!), broker.client, (client, waitSeconds, onHeaders) => {
    ctx.brokerCall('instance_last_operation');
    return client.instanceLastOperation(id, { operation, ...ids }, pollOptions(waitSeconds, onHeaders));
  });
}

/** One look at the operation in progress; when it ended, the status says how. */
async function follow(ctx: ReconcileContext, si: ServiceInstance, draft: StatusDraft<ServiceInstanceStatus>, broker: Broker, ids: { service_id: string; plan_id: string }): Promise<void> {
  const s = draft.status;
  const last = s.lastOperation!;
  let op: OsbLastOperation;
  try {
    ctx.brokerCall('instance_last_operation');
    op = await broker.client.instanceLastOperation(si.metadata.uid!, { operation: last.operation, ...ids });
  } catch (err) {
    if (err instanceof OsbError && (err.status === 404 || err.status === 400)) {
      // The broker does not know the operation (lost): a fresh PUT or DELETE under the same id converges.
      s.lastOperation = { ...last, state: 'failed', description: err.brokerMessage, endTime: nowIso() };
      if (last.type === 'create') s.lastOperation = undefined;
      await draft.commit(ctx.kube);
      throw new RetryLater(`the broker lost operation ${last.operation}`);
    }
    throw err;
  }
  if (op.state === 'in progress') {
    if (op.description && op.description !== last.description) {
      s.lastOperation = { ...last, description: op.description };
      draft.condition('Progressing', 'True', last.type === 'create' ? 'Provisioning' : last.type === 'delete' ? 'Deprovisioning' : 'Updating', op.description);
      await draft.commit(ctx.kube);
    }
    watch(ctx, si, broker, ids, last.operation);
    return;
  }
  failpoint('controller.operation-ended');
  const description = op.description ?? '';
  s.lastOperation = { ...last, state: op.state === 'gone' ? 'succeeded' : op.state, description: op.description, endTime: nowIso() };
  draft.condition('Progressing', 'False', 'Idle', '');
  if (last.type === 'delete') {
    if (op.state === 'failed') {
      draft.condition('Ready', 'False', 'DeleteFailed', description || 'The broker could not deprovision the instance.');
      await draft.commit(ctx.kube);
      throw new RetryLater('deprovision failed');
    }
    await draft.commit(ctx.kube);
    return ctx.queue.add(instanceKey(si.metadata.namespace!, si.metadata.name!));
  }
  if (op.state === 'succeeded') {
    if (last.type === 'create') s.provisioned = true;
    s.appliedHash = s.pendingHash;
    s.rejectedHash = undefined;
    if (s.pendingPlanID) s.planID = s.pendingPlanID;
    s.pendingHash = undefined;
    s.pendingPlanID = undefined;
    draft.condition('Ready', 'True', 'Available', 'The instance is ready.');
    draft.condition('Synced', 'True', 'ReconcileSuccess', '');
    if (last.type === 'update') draft.event('Normal', 'Updated', description || 'The broker updated the instance.');
  } else if (op.state === 'gone') {
    s.provisioned = false;
    s.lastOperation = undefined;
    s.pendingHash = undefined;
  } else {
    s.rejectedHash = s.pendingHash;
    s.pendingHash = undefined;
    s.pendingPlanID = undefined;
    const usable = last.type === 'update' && op.instance_usable !== false;
    draft.condition('Ready', usable ? 'True' : 'False', last.type === 'create' ? 'CreateFailed' : 'UpdateFailed', description || `The broker's ${last.type} operation failed.`);
  }
  if (op.state === 'succeeded') await recordMaintenance(ctx, si, draft, broker, { ...ids, plan_id: s.planID ?? ids.plan_id }, sentMaintenance(si, broker, s.planID ?? ids.plan_id, last.type));
  await draft.commit(ctx.kube);
  // After a failure most of all: what was made, and what state it is in, is what a developer needs to see.
  if (op.state !== 'gone') await recordProvisionedAfter(ctx, si, draft.status, broker);
  // Whatever changed meanwhile (a newer spec) is looked at now.
  ctx.queue.add(instanceKey(si.metadata.namespace!, si.metadata.name!));
}

/** What the controller sent (or the broker set) as the maintenance version with an operation that ended well. */
function sentMaintenance(si: ServiceInstance, broker: Broker, planId: string, type: string): MaintenanceInfo | undefined {
  const plan = broker.catalog.services.flatMap((x) => x.plans).find((p) => p.id === planId);
  if (!plan?.maintenance_info) return undefined;
  return type === 'create' || si.spec.maintenanceInfo?.version === plan.maintenance_info.version ? plan.maintenance_info : undefined;
}

/** Turns a failed broker call into conditions: 400/409 wait for a new spec; 422, 5xx and no answer retry with backoff. */
async function brokerRefused(
  ctx: ReconcileContext,
  si: ServiceInstance,
  draft: StatusDraft<ServiceInstanceStatus>,
  err: unknown,
  hash: string,
  type: 'create' | 'update',
  ids: { service_id: string; plan_id: string },
): Promise<void> {
  const s = draft.status;
  if (err instanceof OsbError && (err.status === 400 || err.status === 409)) {
    s.rejectedHash = hash;
    draft.condition('Synced', 'False', 'BrokerRefused', err.brokerMessage);
    if (type === 'create') draft.condition('Ready', 'False', 'BrokerRefused', err.brokerMessage);
    draft.condition('Progressing', 'False', 'Idle', '');
    await draft.commit(ctx.kube);
    return; // until the spec (or a parametersFrom Secret) changes
  }
  const orphaned = type === 'create' && ((err instanceof OsbError && err.status >= 500) || (err instanceof OsbTransportError && err.kind === 'timeout'));
  const message = err instanceof OsbError ? err.brokerMessage : (err as Error).message;
  const reason = err instanceof OsbError && err.status === 422 ? 'BrokerBusy' : 'BrokerError';
  draft.condition('Synced', 'False', reason, message);
  if (type === 'create') draft.condition('Ready', 'False', reason, message);
  await draft.commit(ctx.kube);
  if (orphaned) {
    // The broker may have created the instance without answering: undo it before trying again (Service Catalog's orphan mitigation).
    await ctx.kube.event(ref(si), 'Warning', 'OrphanMitigation', `Deprovisioning ${si.metadata.uid} after "${message}" on create.`);
    await deprovisionQuietly(ctx, (await ctx.brokers.get(brokerOf(si))).client, si.metadata.uid!, ids);
  }
  throw new RetryLater(message);
}

async function deprovisionQuietly(ctx: ReconcileContext, client: OsbClient, id: string, ids: { service_id: string; plan_id: string }): Promise<void> {
  try {
    ctx.brokerCall('deprovision');
    await client.deprovision(id, ids);
  } catch (err) {
    ctx.log.debug({ err, instance: id }, 'orphan mitigation: deprovision failed; retried with the next attempt');
  }
}

async function unavailable(ctx: ReconcileContext, draft: StatusDraft<ServiceInstanceStatus>, err: unknown): Promise<void> {
  const reason = err instanceof BrokerUnavailable ? err.reason : 'BrokerUnavailable';
  draft.condition('Synced', 'False', reason, (err as Error).message);
  if (!draft.status.provisioned) draft.condition('Ready', 'False', reason, (err as Error).message);
  await draft.commit(ctx.kube);
  throw new RetryLater((err as Error).message);
}

async function finalize(ctx: ReconcileContext, si: ServiceInstance, draft: StatusDraft<ServiceInstanceStatus>): Promise<void> {
  if (!hasFinalizer(si.metadata)) return;
  const s = draft.status;
  if (si.spec.deletionPolicy === 'Orphan') {
    await ctx.kube.event(ref(si), 'Normal', 'Orphaned', `deletionPolicy is Orphan: instance ${si.metadata.uid} stays at the broker.`);
    return ctx.kube.setFinalizer(ref(si), false);
  }
  const waiting = ctx.bindings.list(si.metadata.namespace).filter((b) => b.spec.instanceRef.name === si.metadata.name);
  if (waiting.length > 0) {
    draft.condition('Progressing', 'True', 'WaitingForBindings', `Waiting for ${waiting.length} ServiceBinding(s) to be deleted first: ${waiting.map((b) => b.metadata.name).join(', ')}.`);
    return draft.commit(ctx.kube, { observed: false }); // a binding's deletion brings it back
  }
  let broker: Broker;
  try {
    broker = await ctx.brokers.get(brokerOf(si));
  } catch (err) {
    return unavailable(ctx, draft, err);
  }
  let ids = s.offeringID && s.planID ? { service_id: s.offeringID, plan_id: s.planID } : undefined;
  if (!ids) {
    const found = await ctx.brokers.lookup(broker, si.spec.offering, si.spec.plan);
    if (typeof found === 'string') return ctx.kube.setFinalizer(ref(si), false); // never provisioned: nothing to undo
    ids = { service_id: found.service.id, plan_id: found.plan.id };
  }
  if (s.lastOperation?.state === 'in progress') {
    if (s.lastOperation.type === 'delete') return follow(ctx, si, draft, broker, ids);
    // A create or update still runs: the broker refuses a delete meanwhile (422), so wait for its end first.
    return follow(ctx, si, draft, broker, ids);
  }
  if (s.lastOperation?.type === 'delete' && s.lastOperation.state === 'succeeded') return ctx.kube.setFinalizer(ref(si), false);
  try {
    // A failed delete stands at the broker until the platform updates the instance (OSB repeats are
    // answered by what happened); the controller's policy is to try again, so it says so first.
    if (s.lastOperation?.type === 'delete' && s.lastOperation.state === 'failed') {
      ctx.brokerCall('update');
      // Refused when there is nothing to update (a create that failed): the delete then runs again anyway.
      await broker.client.update(si.metadata.uid!, { service_id: ids.service_id }).catch((err: unknown) => ctx.log.debug({ err }, 'update before retrying a failed delete refused'));
    }
    ctx.brokerCall('deprovision');
    const r = await broker.client.deprovision(si.metadata.uid!, ids);
    if (r.outcome === 'accepted') {
      await commitAccepted(ctx.kube, draft, { type: 'delete', operation: r.operation, ready: ['Deleting', 'The broker is deprovisioning the instance.'], progressing: ['Deprovisioning', 'Waiting for the broker to finish deprovisioning.'] });
      watch(ctx, si, broker, ids, r.operation);
      return;
    }
    await ctx.kube.event(ref(si), 'Normal', 'Deprovisioned', `Instance ${si.metadata.uid} is deprovisioned at broker "${broker.name}".`);
    await ctx.kube.setFinalizer(ref(si), false);
  } catch (err) {
    const message = err instanceof OsbError ? err.brokerMessage : (err as Error).message;
    draft.condition('Synced', 'False', err instanceof OsbError && err.status === 422 ? 'BrokerBusy' : 'DeprovisionFailed', message);
    await draft.commit(ctx.kube, { observed: false });
    throw new RetryLater(message);
  }
}

export { FINALIZER };
