// What the reconcilers share: the caches the informers keep, the writers, the
// brokers, the queue; and the draft of a status being reconciled, which records
// condition transitions so each becomes an Event.
import { createHash } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Brokers } from './brokers.ts';
import type { KubeWriter, ObjectRef } from './kube.ts';
import { canonical } from './kube.ts';
import { setCondition, type ConditionChange } from './conditions.ts';
import type { ClusterServiceBroker, Condition, ConditionStatus, LastOperation, ServiceBinding, ServiceInstance } from './resources.ts';
import type { WorkQueue } from './work-queue.ts';
import type { OsbClient, LastOperation as OsbLastOperation } from '../osb-client/index.ts';

export interface Cache<T> {
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): ReadonlyArray<T>;
}

export interface ReconcileContext {
  kube: KubeWriter;
  brokers: Brokers;
  log: Logger;
  queue: WorkQueue;
  clusterId: string;
  /** How long a rotated binding's predecessor keeps working before it is unbound (capped at its expires_at). */
  rotationGraceSeconds: number;
  instances: Cache<ServiceInstance>;
  bindings: Cache<ServiceBinding>;
  secrets: Cache<V1Secret>;
  clusterBrokers: Cache<ClusterServiceBroker>;
  /** Follows an operation in progress and adds `key` to the queue when it has ended (see operation-watch.ts). */
  watchOperation(key: string, client: OsbClient, poll: (client: OsbClient, waitSeconds: number, onHeaders: (h: Record<string, unknown>) => void) => Promise<OsbLastOperation>): void;
  /** Counts a broker call (metrics and the steady-state bench). */
  brokerCall(kind: string): void;
}

/** A failure worth retrying with backoff (the broker was busy or down, the API server refused a write). */
export class RetryLater extends Error {}

/** The status of one resource being reconciled, and the Events its changes make. */
export class StatusDraft<S extends { conditions?: Condition[]; observedGeneration?: number }> {
  status: S;
  readonly #old: S | undefined;
  readonly #ref: ObjectRef;
  readonly #changes: ConditionChange[] = [];
  readonly #events: { type: 'Normal' | 'Warning'; reason: string; message: string }[] = [];

  constructor(ref: ObjectRef, old: S | undefined) {
    this.#ref = ref;
    this.#old = old;
    this.status = structuredClone(old ?? ({} as S));
  }

  condition(type: string, status: ConditionStatus, reason: string, message: string): this {
    const { conditions, changed } = setCondition(this.status.conditions ?? [], { type, status, reason, message }, this.#ref.metadata.generation);
    this.status.conditions = conditions;
    if (changed && type !== 'Progressing') this.#changes.push(changed);
    return this;
  }

  event(type: 'Normal' | 'Warning', reason: string, message: string): this {
    this.#events.push({ type, reason, message });
    return this;
  }

  /** Writes the status (if changed) and an Event per transition. */
  async commit(kube: KubeWriter, opts: { observed?: boolean } = {}): Promise<void> {
    if (opts.observed !== false) this.status.observedGeneration = this.#ref.metadata.generation;
    const wrote = await kube.writeStatus(this.#ref, this.#old, this.status as Record<string, unknown>);
    if (!wrote && this.#events.length === 0) return;
    const seen = new Set<string>();
    for (const c of this.#changes) {
      const key = `${c.reason}:${c.message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      await kube.event(this.#ref, c.status === 'False' && c.type === 'Synced' ? 'Warning' : c.reason.endsWith('Failed') ? 'Warning' : 'Normal', c.reason, c.message || c.reason);
    }
    for (const e of this.#events) await kube.event(this.#ref, e.type, e.reason, e.message);
  }
}

/**
 * The broker accepted an asynchronous operation: the status says it is in
 * progress until the watch sees it end. An operation that applies the spec
 * (bind, provision, update) carries its `hash`, which becomes `pendingHash`, and
 * marks the spec synced and observed; a deletion applies no spec, so it carries
 * none and leaves both alone. `ready` is left as it is when not given (an
 * update keeps the instance usable).
 */
export async function commitAccepted<S extends { conditions?: Condition[]; observedGeneration?: number; lastOperation?: LastOperation; pendingHash?: string }>(
  kube: KubeWriter,
  draft: StatusDraft<S>,
  accepted: { type: LastOperation['type']; operation: string | undefined; hash?: string; ready?: [reason: string, message: string]; progressing: [reason: string, message: string] },
): Promise<void> {
  if (accepted.hash !== undefined) draft.status.pendingHash = accepted.hash;
  draft.status.lastOperation = { type: accepted.type, state: 'in progress', operation: accepted.operation, startTime: nowIso() };
  if (accepted.ready) draft.condition('Ready', 'False', ...accepted.ready);
  if (accepted.hash !== undefined) draft.condition('Synced', 'True', 'ReconcileSuccess', '');
  draft.condition('Progressing', 'True', ...accepted.progressing);
  await draft.commit(kube, { observed: accepted.hash !== undefined });
}

export function hashOf(value: unknown): string {
  return `sha256:${createHash('sha256').update(canonical(value)).digest('hex').slice(0, 32)}`;
}

export const nowIso = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
