// The life of a bound ServiceBinding's credentials after the first bind (OSB 2.16/2.17):
//
// - Renewal. A broker that answers `metadata.renew_before` (Berth: plans with credential_lifetime) wants a new
//   binding before then. Once it has passed, the controller binds a successor with predecessor_binding_id (OSB
//   binding id `<metadata.uid>-r<n>`, derived, so a repeat after a crash is the identical request), writes its
//   credentials into the same Secret (apps that mount it see the new files; the Secret's name never changes), and
//   unbinds the predecessor after a grace period (BERTH_CONTROLLER_ROTATION_GRACE_SECONDS, never later than the
//   predecessor's own expires_at), so an app that has not re-read the Secret keeps working meanwhile.
// - Staleness. After an update of the instance, the serving binding is read back (GET binding); Berth says in
//   `metadata.berth_credentials_stale` when the update changed what its credentials contain. The condition
//   CredentialsCurrent turns False (reason CredentialsStale), and the controller rotates the same way, which
//   clears it; a broker that refuses the rotation leaves it False with its answer.
//
// An asynchronous successor bind (202) is followed by sending the identical PUT again: the broker answers 202 with
// the same operation while it runs and 200 with the credentials once it has finished.
import { OsbError, type BindResult, type BindingResource, type JsonObject } from '../osb-client/index.ts';
import type { Broker } from './brokers.ts';
import { RetryLater, nowIso, type ReconcileContext, type StatusDraft } from './context.ts';
import type { ServiceBinding, ServiceBindingStatus, ServiceInstance } from './resources.ts';

/** Berth's binding metadata field for credentials an instance update made out of date (src/http/presenters.ts). */
const STALE_FIELD = 'berth_credentials_stale';
/** How often an asynchronous successor bind or unbind is asked again. */
const FOLLOW_MS = 2000;
/** Timers further out than this are re-armed by the next pass (Node's timers stop at ~24.8 days). */
const MAX_TIMER_MS = 86_400_000;

/** The OSB binding id whose credentials the binding's Secret holds now. */
export const servingIdOf = (b: ServiceBinding): string => b.status?.servingBindingID ?? b.metadata.uid!;

type Ids = { service_id: string; plan_id: string };
export interface CredentialsStep {
  ctx: ReconcileContext;
  b: ServiceBinding;
  draft: StatusDraft<ServiceBindingStatus>;
  broker: Broker;
  ids: Ids;
  si: ServiceInstance | undefined;
  key: string;
  /** The bind request's context and parameters, as the first bind sent them. */
  request: { context: JsonObject; parameters: JsonObject };
  /** Writes credentials into the binding's Secret (and commits the status). */
  writeSecret(credentials: JsonObject, reason: string): Promise<void>;
}

/**
 * Records what the broker said about the serving binding's credentials (bind answer or GET binding). `si`, given
 * after a bind: credentials bound after the instance's last update are current for it, so it is not read back.
 */
export function recordMetadata(draft: StatusDraft<ServiceBindingStatus>, metadata: (BindResult | BindingResource)['metadata'] | JsonObject | undefined, si?: ServiceInstance): void {
  const s = draft.status;
  if (si) s.credentialsCheckedAt ??= completedUpdateOf(si);
  const m = (metadata ?? {}) as Record<string, unknown>;
  s.credentialsExpireAt = typeof m.expires_at === 'string' ? m.expires_at : undefined;
  s.renewBefore = typeof m.renew_before === 'string' ? m.renew_before : undefined;
  const stale = m[STALE_FIELD] as { reason?: string } | undefined;
  if (stale) draft.condition('CredentialsCurrent', 'False', 'CredentialsStale', stale.reason ?? 'An update of the instance changed what these credentials contain.');
  else draft.condition('CredentialsCurrent', 'True', 'CredentialsCurrent', currentMessage(s));
}

function currentMessage(s: ServiceBindingStatus): string {
  return s.renewBefore ? `The credentials expire at ${s.credentialsExpireAt ?? 'an unknown time'}; they are renewed after ${s.renewBefore}.` : 'The credentials are current.';
}

/**
 * Does the credential work a bound binding has due (finish a rotation, unbind a retired predecessor, look for
 * staleness, renew) and schedules the next. True when it handled the pass (the status is committed).
 */
export async function manageCredentials(step: CredentialsStep): Promise<boolean> {
  const { ctx, draft, key } = step;
  const s = draft.status;
  if (s.rotatingTo) return rotate(step, s.rotatingTo);
  if (s.retiring && Date.parse(s.retiring.after) <= Date.now()) return retire(step);

  const updated = completedUpdateOf(step.si);
  if (updated !== undefined && updated !== s.credentialsCheckedAt) {
    let fetched: BindingResource;
    try {
      ctx.brokerCall('fetch_binding');
      fetched = await step.broker.client.fetchBinding(s.instanceID!, servingIdOf(step.b), step.ids);
    } catch (err) {
      // A lost binding is the caller's to handle (it binds again): look no further now.
      if (err instanceof OsbError && (err.status === 404 || err.status === 410)) return false;
      throw err;
    }
    s.credentialsCheckedAt = updated;
    recordMetadata(draft, fetched.metadata);
  }
  const stale = draft.status.conditions?.find((c) => c.type === 'CredentialsCurrent' && c.status === 'False' && c.reason === 'CredentialsStale');
  if (stale && s.rotationRefused !== s.credentialsCheckedAt) return rotate(step, successorId(step.b), 'stale');
  if (s.renewBefore && Date.parse(s.renewBefore) <= Date.now() && s.rotationRefused !== s.renewBefore) return rotate(step, successorId(step.b), 'renew');

  for (const at of [s.renewBefore, s.retiring?.after]) {
    const ms = at === undefined ? NaN : Date.parse(at) - Date.now();
    if (ms > 0) ctx.queue.addAfter(key, Math.min(ms + 250, MAX_TIMER_MS));
  }
  return false;
}

/** The instance's last update, once it succeeded (its end time identifies it). */
export function completedUpdateOf(si: ServiceInstance | undefined): string | undefined {
  const op = si?.status?.lastOperation;
  if (op?.type !== 'update' || op.state !== 'succeeded') return undefined;
  return op.endTime ?? op.startTime;
}

function successorId(b: ServiceBinding): string {
  return `${b.metadata.uid}-r${(b.status?.rotations ?? 0) + 1}`;
}

async function rotate(step: CredentialsStep, successor: string, why?: 'stale' | 'renew'): Promise<boolean> {
  const { ctx, b, draft, broker, ids } = step;
  const s = draft.status;
  const predecessor = servingIdOf(b);
  let r: BindResult;
  try {
    ctx.brokerCall('bind');
    r = await broker.client.bind(s.instanceID!, successor, { ...ids, context: step.request.context, parameters: step.request.parameters, predecessor_binding_id: predecessor });
  } catch (err) {
    if (!(err instanceof OsbError) || err.status >= 500 || err.status === 422) throw new RetryLater(err instanceof OsbError ? err.brokerMessage : (err as Error).message);
    // Refused for good (a plan without binding_rotatable, an older API version): say so, and do not ask again for this cause.
    s.rotatingTo = undefined;
    s.rotationRefused = why === 'renew' ? s.renewBefore : s.credentialsCheckedAt;
    const current = s.conditions?.find((c) => c.type === 'CredentialsCurrent');
    draft.condition(
      'CredentialsCurrent',
      'False',
      current?.reason === 'CredentialsStale' ? 'CredentialsStale' : 'RenewalRefused',
      `${current?.status === 'False' ? `${current.message} ` : ''}The broker refused to rotate the binding (${err.brokerMessage}); delete and re-create the ServiceBinding to get new credentials.`,
    );
    await draft.commit(ctx.kube);
    return true;
  }
  if (r.outcome === 'accepted') {
    if (s.rotatingTo !== successor) draft.event('Normal', 'RotatingCredentials', `Binding ${successor} replaces ${predecessor}${why === 'stale' ? ' (the credentials are stale)' : why === 'renew' ? ' (renew_before has passed)' : ''}.`);
    s.rotatingTo = successor;
    draft.condition('Progressing', 'True', 'RotatingCredentials', `Waiting for the broker to create binding ${successor}.`);
    await draft.commit(ctx.kube);
    ctx.queue.addAfter(step.key, FOLLOW_MS);
    return true;
  }
  // The predecessor keeps working until the grace period ends, or until it expires by itself if that is sooner.
  const graceEnd = Date.now() + ctx.rotationGraceSeconds * 1000;
  const expires = s.credentialsExpireAt ? Date.parse(s.credentialsExpireAt) : NaN;
  s.retiring = { bindingID: predecessor, after: new Date(Number.isNaN(expires) ? graceEnd : Math.min(graceEnd, expires)).toISOString().replace(/\.\d+Z$/, 'Z') };
  s.servingBindingID = successor;
  s.rotations = (s.rotations ?? 0) + 1;
  s.rotatingTo = undefined;
  s.rotationRefused = undefined;
  s.lastRotationTime = nowIso();
  recordMetadata(draft, r.metadata);
  draft.condition('CredentialsCurrent', 'True', 'CredentialsRotated', `${currentMessage(s)} Binding ${successor} replaced ${predecessor}, which is unbound after ${s.retiring.after}.`);
  await step.writeSecret(r.credentials ?? {}, 'CredentialsRotated');
  ctx.queue.addAfter(step.key, Math.max(0, Date.parse(s.retiring.after) - Date.now()) + 250);
  return true;
}

async function retire(step: CredentialsStep): Promise<boolean> {
  const { ctx, draft, broker, ids } = step;
  const s = draft.status;
  const old = s.retiring!.bindingID;
  try {
    ctx.brokerCall('unbind');
    const r = await broker.client.unbind(s.instanceID!, old, ids);
    if (r.outcome === 'accepted') {
      ctx.queue.addAfter(step.key, FOLLOW_MS);
      return true;
    }
  } catch (err) {
    if (!(err instanceof OsbError && err.status === 404)) throw new RetryLater(err instanceof OsbError ? err.brokerMessage : (err as Error).message);
  }
  s.retiring = undefined;
  draft.event('Normal', 'PredecessorUnbound', `Binding ${old} was unbound after the rotation.`);
  await draft.commit(ctx.kube);
  ctx.queue.add(step.key);
  return true;
}

/** For deletion: OSB bindings besides the serving one that the ServiceBinding still has at the broker. */
export function extraBindingIdsOf(s: ServiceBindingStatus | undefined): string[] {
  return [s?.retiring?.bindingID, s?.rotatingTo].filter((id): id is string => id !== undefined);
}
