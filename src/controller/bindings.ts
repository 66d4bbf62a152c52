// Reconciles one ServiceBinding: bind (PUT with metadata.uid as the OSB binding
// id, telling Berth the controller writes the Secret), write the credentials into
// a Secret the binding owns (servicebinding.io format), rewrite it if someone
// deletes it, and on deletion unbind and remove the Secret. A Secret of the same
// name that the binding does not own is never adopted or modified.
import type { V1Secret } from '@kubernetes/client-node';
import { OsbError, OsbTransportError, type JsonObject, type LastOperation as OsbLastOperation } from '../osb-client/index.ts';
import { CONTROLLER_WRITES_SECRET, secretEntries, secretKeyProblem } from '../kubernetes/binding-secrets.ts';
import { BrokerUnavailable, type Broker } from './brokers.ts';
import { pollOptions } from './operation-watch.ts';
import { RetryLater, StatusDraft, commitAccepted, hashOf, nowIso, type ReconcileContext } from './context.ts';
import { isReady } from './conditions.ts';
import { extraBindingIdsOf, manageCredentials, recordMetadata, servingIdOf } from './credentials.ts';
import { kubernetesContext } from './instances.ts';
import type { ObjectRef } from './kube.ts';
import { failpoint } from '../failpoints.ts';
import {
  API_VERSION,
  LOCAL_BROKER,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  RECONCILE_AT_ANNOTATION,
  hasFinalizer,
  isPaused,
  type ServiceBinding,
  type ServiceBindingStatus,
  type ServiceInstance,
} from './resources.ts';

export const bindingKey = (namespace: string, name: string): string => `binding/${namespace}/${name}`;
const ref = (b: ServiceBinding): ObjectRef => ({ kind: 'ServiceBinding', metadata: b.metadata as ObjectRef['metadata'] });
export const secretNameOf = (b: ServiceBinding): string => b.spec.secretName ?? b.metadata.name!;

/** True when the Secret is the one this binding wrote (its controller owner reference). */
export const ownedBy = (secret: V1Secret, b: ServiceBinding): boolean =>
  (secret.metadata?.ownerReferences ?? []).some((o) => o.uid === b.metadata.uid && o.controller === true);

export async function reconcileBinding(ctx: ReconcileContext, namespace: string, name: string): Promise<void> {
  const b = ctx.bindings.get(name, namespace);
  if (!b) return;
  const draft = new StatusDraft<ServiceBindingStatus>(ref(b), b.status);
  if (isPaused(b.metadata)) {
    draft.condition('Synced', 'False', 'ReconcilePaused', 'Reconciliation is paused by the annotation services.berth.dev/paused.');
    return draft.commit(ctx.kube, { observed: false });
  }
  if (b.metadata.deletionTimestamp) return finalize(ctx, b, draft);

  const si = ctx.instances.get(b.spec.instanceRef.name, namespace);
  const s = draft.status;
  if (!s.bound && !(s.lastOperation?.state === 'in progress')) {
    if (!si || si.metadata.deletionTimestamp || !isReady(si.status?.conditions) || !si.status?.provisioned) {
      const why = !si ? `ServiceInstance "${b.spec.instanceRef.name}" does not exist in namespace "${namespace}".` : si.metadata.deletionTimestamp ? `ServiceInstance "${si.metadata.name}" is being deleted.` : `ServiceInstance "${si.metadata.name}" is not ready yet.`;
      draft.condition('Ready', 'False', 'InstanceNotReady', why);
      draft.condition('Synced', 'True', 'ReconcileSuccess', '');
      return draft.commit(ctx.kube); // the instance's changes bring it back
    }
  }
  if (!hasFinalizer(b.metadata)) {
    await ctx.kube.setFinalizer(ref(b), true);
    return;
  }
  const secretName = secretNameOf(b);
  const existing = ctx.secrets.get(secretName, namespace);
  if (existing && !ownedBy(existing, b)) {
    const message = `A Secret named "${secretName}" already exists in namespace "${namespace}" and is not this binding's; it is left alone. Choose another spec.secretName or delete that Secret.`;
    draft.condition('Ready', 'False', 'SecretNameTaken', message);
    draft.condition('Synced', 'False', 'SecretNameTaken', message);
    return draft.commit(ctx.kube); // the Secret's deletion brings it back
  }

  const brokerName = s.brokerName ?? si?.status?.brokerName ?? si?.spec.brokerRef?.name ?? LOCAL_BROKER;
  let broker: Broker;
  try {
    broker = await ctx.brokers.get(brokerName);
  } catch (err) {
    draft.condition('Synced', 'False', err instanceof BrokerUnavailable ? err.reason : 'BrokerUnavailable', (err as Error).message);
    await draft.commit(ctx.kube);
    throw new RetryLater((err as Error).message);
  }
  s.bindingID = b.metadata.uid;
  s.instanceID ??= si!.metadata.uid;
  s.brokerName = brokerName;
  s.serviceID ??= si!.status!.offeringID;
  s.planID ??= si!.status!.planID;
  const ids = { service_id: s.serviceID!, plan_id: s.planID! };
  const parameters = b.spec.parameters ?? {};
  const hash = hashOf(parameters);

  if (s.lastOperation?.state === 'in progress') return follow(ctx, b, draft, broker, ids);

  const forced = b.metadata.annotations?.[RECONCILE_AT_ANNOTATION];
  const resync = forced !== undefined && forced !== s.reconciledAt;
  if (s.bound) {
    const context = { ...kubernetesContext(ctx, namespace, si?.metadata.name ?? b.spec.instanceRef.name, undefined), [CONTROLLER_WRITES_SECRET]: true };
    const handled = await manageCredentials({
      ctx,
      b,
      draft,
      broker,
      ids,
      si,
      key: bindingKey(namespace, name),
      request: { context, parameters },
      writeSecret: (credentials, reason) => writeSecret(ctx, b, draft, broker, credentials, reason),
    });
    if (handled) return;
    if (!existing || resync) {
      // Someone deleted the Secret, or a resync was asked for: read the credentials back and write it again.
      s.reconciledAt = forced;
      return fetchAndWrite(ctx, b, draft, broker, ids, existing ? 'SecretRewritten' : 'SecretRecreated');
    }
    draft.condition('Ready', 'True', 'SecretWritten', `The credentials are in Secret "${secretName}".`);
    draft.condition('Synced', 'True', 'ReconcileSuccess', '');
    draft.condition('Progressing', 'False', 'Idle', '');
    return draft.commit(ctx.kube);
  }
  if (s.rejectedHash === hash) return draft.commit(ctx.kube);
  try {
    ctx.brokerCall('bind');
    const r = await broker.client.bind(s.instanceID!, b.metadata.uid!, {
      ...ids,
      context: { ...kubernetesContext(ctx, namespace, si!.metadata.name!, undefined), [CONTROLLER_WRITES_SECRET]: true },
      parameters,
    });
    failpoint('controller.bind-answered');
    if (r.outcome === 'accepted') {
      await commitAccepted(ctx.kube, draft, { type: 'bind', operation: r.operation, hash, ready: ['Binding', 'The broker is creating the binding.'], progressing: ['Binding', 'Waiting for the broker to finish the bind.'] });
      watch(ctx, b, broker, ids, r.operation);
      return;
    }
    s.lastOperation = { type: 'bind', state: 'succeeded', startTime: nowIso(), endTime: nowIso() };
    recordMetadata(draft, r.metadata, si);
    await writeSecret(ctx, b, draft, broker, r.credentials ?? {}, 'SecretWritten');
  } catch (err) {
    if (err instanceof RetryLater) throw err;
    const message = err instanceof OsbError ? err.brokerMessage : (err as Error).message;
    if (err instanceof OsbError && (err.status === 400 || err.status === 409)) {
      s.rejectedHash = hash;
      draft.condition('Ready', 'False', 'BrokerRefused', message);
      draft.condition('Synced', 'False', 'BrokerRefused', message);
      return draft.commit(ctx.kube);
    }
    draft.condition('Ready', 'False', err instanceof OsbError && err.status === 422 ? 'BrokerBusy' : 'BrokerError', message);
    draft.condition('Synced', 'False', err instanceof OsbError && err.status === 422 ? 'BrokerBusy' : 'BrokerError', message);
    await draft.commit(ctx.kube);
    if ((err instanceof OsbError && err.status >= 500) || (err instanceof OsbTransportError && err.kind === 'timeout')) {
      await ctx.kube.event(ref(b), 'Warning', 'OrphanMitigation', `Unbinding ${b.metadata.uid} after "${message}" on bind.`);
      await broker.client.unbind(s.instanceID!, b.metadata.uid!, ids).catch(() => undefined);
    }
    throw new RetryLater(message);
  }
}

function watch(ctx: ReconcileContext, b: ServiceBinding, broker: Broker, ids: { service_id: string; plan_id: string }, operation: string | undefined): void {
  const instanceId = b.status?.instanceID ?? ctx.instances.get(b.spec.instanceRef.name, b.metadata.namespace)?.metadata.uid;
  ctx.watchOperation(bindingKey(b.metadata.namespace!, b.metadata.name!), broker.client, (client, waitSeconds, onHeaders) => {
    ctx.brokerCall('binding_last_operation');
    return client.bindingLastOperation(instanceId!, servingIdOf(b), { operation, ...ids }, pollOptions(waitSeconds, onHeaders));
  });
}

async function follow(ctx: ReconcileContext, b: ServiceBinding, draft: StatusDraft<ServiceBindingStatus>, broker: Broker, ids: { service_id: string; plan_id: string }): Promise<void> {
  const s = draft.status;
  const last = s.lastOperation!;
  let op: OsbLastOperation;
  try {
    ctx.brokerCall('binding_last_operation');
    op = await broker.client.bindingLastOperation(s.instanceID!, servingIdOf(b), { operation: last.operation, ...ids });
  } catch (err) {
    if (err instanceof OsbError && (err.status === 404 || err.status === 400)) {
      s.lastOperation = undefined; // lost: a fresh PUT or DELETE under the same id converges
      await draft.commit(ctx.kube);
      throw new RetryLater(`the broker lost operation ${last.operation}`);
    }
    throw err;
  }
  if (op.state === 'in progress') return watch(ctx, b, broker, ids, last.operation);
  s.lastOperation = { ...last, state: op.state === 'gone' ? 'succeeded' : op.state, description: op.description, endTime: nowIso() };
  draft.condition('Progressing', 'False', 'Idle', '');
  if (last.type === 'unbind') {
    await draft.commit(ctx.kube, { observed: false });
    if (op.state === 'failed') throw new RetryLater(op.description ?? 'unbind failed');
    return ctx.queue.add(bindingKey(b.metadata.namespace!, b.metadata.name!));
  }
  if (op.state === 'succeeded') return fetchAndWrite(ctx, b, draft, broker, ids, 'SecretWritten');
  s.rejectedHash = s.pendingHash;
  s.pendingHash = undefined;
  draft.condition('Ready', 'False', 'BindFailed', op.description || 'The broker could not create the binding.');
  await draft.commit(ctx.kube);
}

async function fetchAndWrite(
  ctx: ReconcileContext,
  b: ServiceBinding,
  draft: StatusDraft<ServiceBindingStatus>,
  broker: Broker,
  ids: { service_id: string; plan_id: string },
  reason: string,
): Promise<void> {
  let credentials: JsonObject;
  try {
    ctx.brokerCall('fetch_binding');
    const fetched = await broker.client.fetchBinding(draft.status.instanceID!, servingIdOf(b), ids);
    credentials = fetched.credentials ?? {};
    recordMetadata(draft, fetched.metadata, ctx.instances.get(b.spec.instanceRef.name, b.metadata.namespace));
  } catch (err) {
    if (err instanceof OsbError && (err.status === 404 || err.status === 410)) {
      // The broker no longer has it: bind again under the first id.
      draft.status.bound = false;
      draft.status.lastOperation = undefined;
      draft.status.servingBindingID = undefined;
      await draft.commit(ctx.kube);
      throw new RetryLater('the broker no longer has the binding');
    }
    throw err;
  }
  await writeSecret(ctx, b, draft, broker, credentials, reason);
}

async function writeSecret(ctx: ReconcileContext, b: ServiceBinding, draft: StatusDraft<ServiceBindingStatus>, broker: Broker, credentials: JsonObject, reason: string): Promise<void> {
  const s = draft.status;
  const namespace = b.metadata.namespace!;
  const name = secretNameOf(b);
  const entries = secretEntries(credentials);
  const si: ServiceInstance | undefined = ctx.instances.get(b.spec.instanceRef.name, namespace);
  const type = entries.type ?? si?.spec.offering ?? 'service';
  const stringData: Record<string, string> = { type, provider: entries.provider ?? (broker.name === LOCAL_BROKER ? 'berth' : broker.name), ...entries };
  const bad = Object.keys(stringData).filter((k) => secretKeyProblem(k) !== undefined);
  if (bad.length > 0) {
    const message = `The broker's credentials have names that cannot be Secret keys: ${bad.map((k) => JSON.stringify(k)).join(', ')}.`;
    s.bound = true;
    draft.condition('Ready', 'False', 'InvalidCredentials', message);
    return draft.commit(ctx.kube);
  }
  const secret: V1Secret = {
    metadata: {
      name,
      namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY },
      ownerReferences: [{ apiVersion: API_VERSION, kind: 'ServiceBinding', name: b.metadata.name!, uid: b.metadata.uid!, controller: true, blockOwnerDeletion: true }],
    },
    type: `servicebinding.io/${type}`,
    stringData,
  };
  const existing = ctx.secrets.get(name, namespace);
  try {
    if (existing && ownedBy(existing, b)) {
      if (existing.type !== secret.type) await ctx.kube.deleteSecret(namespace, name, existing.metadata!.uid!).then(() => ctx.kube.createSecret(secret));
      else await ctx.kube.replaceSecret({ ...secret, metadata: { ...secret.metadata, resourceVersion: existing.metadata!.resourceVersion } });
    } else {
      await ctx.kube.createSecret(secret);
    }
  } catch (err) {
    const code = (err as { code?: number }).code;
    if (code === 409) {
      // Created meanwhile (ours from a previous pass the cache has not seen yet, or someone else's): look again.
      throw new RetryLater(`Secret ${namespace}/${name} exists`);
    }
    throw err;
  }
  s.bound = true;
  s.binding = { name };
  s.pendingHash = undefined;
  s.rejectedHash = undefined;
  draft.condition('Ready', 'True', 'SecretWritten', `The credentials are in Secret "${name}".`);
  draft.condition('Synced', 'True', 'ReconcileSuccess', '');
  draft.condition('Progressing', 'False', 'Idle', '');
  if (reason !== 'SecretWritten') draft.event('Normal', reason, `Secret "${name}" was written again with the binding's credentials.`);
  await draft.commit(ctx.kube);
}

async function finalize(ctx: ReconcileContext, b: ServiceBinding, draft: StatusDraft<ServiceBindingStatus>): Promise<void> {
  if (!hasFinalizer(b.metadata)) return;
  const s = draft.status;
  const namespace = b.metadata.namespace!;
  const si = ctx.instances.get(b.spec.instanceRef.name, namespace);
  const instanceId = s.instanceID ?? si?.metadata.uid;
  const serviceId = s.serviceID ?? si?.status?.offeringID;
  const planId = s.planID ?? si?.status?.planID;
  if (instanceId && serviceId && planId && !(s.lastOperation?.type === 'unbind' && s.lastOperation.state === 'succeeded')) {
    const ids = { service_id: serviceId, plan_id: planId };
    const brokerName = s.brokerName ?? si?.status?.brokerName ?? LOCAL_BROKER;
    let broker: Broker;
    try {
      broker = await ctx.brokers.get(brokerName);
    } catch (err) {
      draft.condition('Synced', 'False', 'BrokerUnavailable', (err as Error).message);
      await draft.commit(ctx.kube, { observed: false });
      throw new RetryLater((err as Error).message);
    }
    s.instanceID = instanceId;
    if (s.lastOperation?.state === 'in progress') return follow(ctx, b, draft, broker, ids);
    // A rotation's predecessor not yet retired, or a successor being bound: unbound first, each to its end.
    for (const extra of extraBindingIdsOf(s)) {
      try {
        ctx.brokerCall('unbind');
        const r = await broker.client.unbind(instanceId, extra, ids);
        if (r.outcome === 'accepted') throw new RetryLater(`waiting for the broker to unbind ${extra}`);
      } catch (err) {
        if (err instanceof RetryLater) throw err;
        if (!(err instanceof OsbError && err.status === 404)) throw new RetryLater(err instanceof OsbError ? err.brokerMessage : (err as Error).message);
      }
      if (s.retiring?.bindingID === extra) s.retiring = undefined;
      if (s.rotatingTo === extra) s.rotatingTo = undefined;
    }
    try {
      ctx.brokerCall('unbind');
      const r = await broker.client.unbind(instanceId, servingIdOf(b), ids);
      if (r.outcome === 'accepted') {
        await commitAccepted(ctx.kube, draft, { type: 'unbind', operation: r.operation, ready: ['Unbinding', 'The broker is deleting the binding.'], progressing: ['Unbinding', 'Waiting for the broker to finish the unbind.'] });
        watch(ctx, b, broker, ids, r.operation);
        return;
      }
    } catch (err) {
      // 404: the instance is gone at the broker, and the binding with it.
      if (!(err instanceof OsbError && err.status === 404)) {
        const message = err instanceof OsbError ? err.brokerMessage : (err as Error).message;
        draft.condition('Synced', 'False', err instanceof OsbError && err.status === 422 ? 'BrokerBusy' : 'UnbindFailed', message);
        await draft.commit(ctx.kube, { observed: false });
        throw new RetryLater(message);
      }
    }
  }
  const secret = ctx.secrets.get(secretNameOf(b), namespace);
  if (secret && ownedBy(secret, b)) {
    await ctx.kube.deleteSecret(namespace, secret.metadata!.name!, secret.metadata!.uid!).catch((err: { code?: number }) => {
      if (err.code !== 404 && err.code !== 409) throw err;
    });
  }
  await ctx.kube.setFinalizer(ref(b), false);
}
