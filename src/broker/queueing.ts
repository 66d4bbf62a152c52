// Queueing an accepted request's operation (in the request's transaction,
// with its audit event) and answering for it after the commit: 202 for an
// asynchronous one, or, for a synchronous plan, the operation run to its end.
import { randomUUID } from 'node:crypto';
import type { CatalogPlan } from '../catalog/catalog.ts';
import type { PlanSnapshot } from '../catalog/plan-snapshot.ts';
import { failpoint } from '../failpoints.ts';
import { errors, OsbError } from '../osb/errors.ts';
import { reportedUsability } from '../osb/lifecycle.ts';
import type { OperationKind, OperationRequests } from '../osb/model.ts';
import type { OperationEngine } from '../operations/worker.ts';
import type { OperationStatusRecord } from '../store/operations.ts';
import type { Stores, TableStores } from '../store/unit-of-work.ts';
import { deadlineFor, type Rules } from './rules.ts';
import type { Accepted, RequestMeta } from './types.ts';

export type NewOperation = {
  [K in OperationKind]: { instanceId: string; bindingId?: string; kind: K; plan: CatalogPlan; planSnapshot: PlanSnapshot; request: Omit<OperationRequests[K], 'planId'> };
}[OperationKind];

/** What a request's transaction decided: an answer already (a repeat), or the operation it queued (and the one it halted). */
export type Decision<T> = { answer: T | Accepted; operation?: undefined; halted?: undefined } | { answer?: undefined; operation: string; halted?: string };

export class Queueing {
  readonly #engine: OperationEngine;

  constructor(engine: OperationEngine) {
    this.#engine = engine;
  }

  /** Queues the operation and records who asked, in the request's transaction. */
  async enqueue(tx: TableStores, meta: RequestMeta, op: NewOperation): Promise<string> {
    const id = randomUUID();
    await tx.operations.create({
      id,
      instanceId: op.instanceId,
      bindingId: op.bindingId,
      kind: op.kind,
      description: 'Queued',
      request: { planId: op.plan.id, ...op.request } as OperationRequests[OperationKind],
      deadlineAt: deadlineFor(op.plan),
      requestIdentity: meta.requestIdentity,
      planSnapshot: op.planSnapshot,
    });
    await tx.audit.record({
      operationId: id,
      instanceId: op.instanceId,
      bindingId: op.bindingId,
      action: op.kind,
      platform: meta.originatingIdentity?.platform,
      originatingIdentity: meta.originatingIdentity?.value,
      requestIdentity: meta.requestIdentity,
      outcome: 'accepted',
    });
    return id;
  }

  /**
   * After the request's transaction: the stored answer of an idempotent repeat,
   * 202 for a queued asynchronous operation, or the synchronous operation run
   * to its end and `done` describing the result.
   */
  async conclude<T>(decision: Decision<T>, async: boolean, acceptsIncomplete: boolean, done: () => Promise<T>): Promise<T | Accepted> {
    if (decision.operation === undefined) return decision.answer;
    // Stops the halted create's execution now and answers the request waiting for it.
    if (decision.halted) this.#engine.operationEnded(decision.halted);
    failpoint('service.after-commit');
    if (async) {
      this.#engine.notify();
      return { status: 202, operation: decision.operation };
    }
    if (await this.#runSync(decision.operation)) return done();
    // Still running (retrying a transient failure, or queued behind another operation).
    if (acceptsIncomplete) return { status: 202, operation: decision.operation };
    throw new OsbError(
      504,
      'The operation is taking longer than this broker waits before answering; it continues in the background. Send the request again later to learn its outcome, or send accepts_incomplete=true to be given an operation to poll.',
      { error: 'Timeout' },
    );
  }

  /** Runs a synchronous operation to its end; undefined when it is still running after the wait. */
  async #runSync(operationId: string): Promise<OperationStatusRecord | undefined> {
    const op = await this.#engine.runNow(operationId);
    if (!op || !op.finishedAt) return undefined;
    if (op.state === 'failed') throw failureOf(op);
    return op;
  }
}

/** The answer to a synchronous request whose operation ended `failed` (and to its identical repeats). */
export function failureOf(op: OperationStatusRecord): OsbError {
  // Halted by the platform's own delete (OSB §Blocking Operations): the request lost to a
  // concurrent one, which is a 4xx (no orphan mitigation: the delete already cleans up).
  if (op.failureCause === 'halted') return errors.halted(op.description);
  const usability = reportedUsability(op.kind, op);
  // The request's own data made it fail (e.g. a namespace that does not exist), and what it made was undone:
  // the client has to change the request (OSB: 400 for invalid data).
  if (op.failureCause === 'request') return new OsbError(400, op.description, { error: 'BadRequest', ...usability });
  // The provisioner failed: a broker-side error, after which the platform should clean up.
  return new OsbError(500, op.description, { error: 'OperationFailed', ...usability });
}

/** What instances.ts and bindings.ts are built on: the stores, the OSB rules and the queue. */
export abstract class BrokerPart {
  protected readonly stores: Stores;
  protected readonly rules: Rules;
  protected readonly queueing: Queueing;

  constructor(stores: Stores, rules: Rules, queueing: Queueing) {
    this.stores = stores;
    this.rules = rules;
    this.queueing = queueing;
  }
}

/** What last_operation reports about an operation (osb/lifecycle.ts decides instance_usable / update_repeatable). */
export function statusOf(op: OperationStatusRecord) {
  // Its last progress is no longer current once its worker stopped: say what is happening now.
  const description = op.awaitingResumption ? `Waiting to be resumed (its worker stopped); the last step was: ${op.description}` : op.description || op.state;
  return {
    kind: op.kind,
    state: op.state,
    description,
    ...(op.state === 'failed' ? reportedUsability(op.kind, op) : {}),
    startedAt: op.createdAt,
    deadlineAt: op.deadlineAt,
  };
}
