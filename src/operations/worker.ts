// Runs operations: rows in the operations table (the queue, store/queue.ts),
// claimed by workers that hold a renewable lease. A process that dies simply
// stops renewing; its leases expire and any replica (or the restarted process)
// takes the work over and re-runs the provisioner, whose steps are idempotent
// (see provisioner.ts). This file is the generic part (loop, leases, deadline,
// retries, outcomes); what each kind does is operations/kinds.ts.
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Catalog } from '../catalog/catalog.ts';
import { PlanSnapshots } from '../catalog/plan-snapshot.ts';
import type { BindingHooks, ProvisionerRegistry } from '../provisioners/provisioner.ts';
import { PermanentError } from '../osb/errors.ts';
import { reportedUsability } from '../osb/lifecycle.ts';
import type { OperationRecord, OperationStatusRecord, Outcome } from '../store/operations.ts';
import type { Stores, TableStores } from '../store/unit-of-work.ts';
import type { Metrics } from '../observability/metrics.ts';
import { isDatabaseUnavailable } from '../db/errors.ts';
import { failpoint } from '../failpoints.ts';
import { UndecryptableError } from '../secret-box.ts';
import { pause } from '../lib/abortable.ts';
import { retry } from '../lib/retry.ts';
import { kinds, onFailure, pastTense, type Success } from './kinds.ts';
import { DeadlineExceeded, Lease } from './lease.ts';
import { LeaseLost, Run, type RunDeps } from './run.ts';
import { OperationSignals } from './signals.ts';

export interface EngineOptions {
  concurrency: number;
  leaseMs: number;
  pollIntervalMs: number;
  maxAttempts: number;
  /** How long a synchronous request waits for its operation (runNow) before it is answered 202 or 504. */
  syncWaitMs?: number;
}

/** Backoff before retry n (1-based): RETRY_BASE_MS * 2^(n-1), capped at RETRY_MAX_MS, with ±25 % jitter. */
const RETRY_BASE_MS = 1000;
const RETRY_MAX_MS = 60_000;

class ShuttingDown extends Error {}

export class OperationEngine {
  readonly owner = `${process.pid}-${randomUUID()}`;
  readonly #stores: Stores;
  readonly #catalog: Catalog;
  readonly #log: Logger;
  readonly #opts: Required<EngineOptions>;
  readonly #metrics: Metrics | undefined;
  /** What a Run needs to prepare an operation. */
  readonly #runDeps: RunDeps;
  /** `recheck` renews the lease now, so an execution whose operation was halted stops at once. */
  readonly #running = new Map<string, { controller: AbortController; done: Promise<void>; recheck: () => void }>();
  readonly #signals: OperationSignals;
  /** Operations synchronous requests here wait for, and how many requests wait for each. */
  readonly #awaited = new Map<string, number>();
  #sweeper: NodeJS.Timeout | undefined;
  #sweeping = false;
  #stopping = false;
  /** One waker per idle loop: notify() wakes one, stop() wakes all. */
  readonly #wakers = new Set<() => void>();
  #loops: Promise<void>[] = [];
  readonly #stopController = new AbortController();

  constructor(deps: {
    stores: Stores;
    catalog: Catalog;
    provisioners: ProvisionerRegistry;
    log: Logger;
    options: EngineOptions;
    metrics?: Metrics;
    hooks?: BindingHooks;
    signals?: OperationSignals;
  }) {
    this.#stores = deps.stores;
    this.#catalog = deps.catalog;
    this.#log = deps.log.child({ component: 'engine' });
    this.#opts = { syncWaitMs: 20_000, ...deps.options };
    this.#metrics = deps.metrics;
    this.#runDeps = {
      owner: this.owner,
      stores: deps.stores,
      catalog: deps.catalog,
      snapshots: new PlanSnapshots(deps.provisioners.parseConfig),
      provisioners: deps.provisioners,
      hooks: deps.hooks ?? {},
    };
    this.#signals = deps.signals ?? new OperationSignals();
    // An operation ended here or on another replica: the next operation of its
    // instance may be claimable now, and if we are still running the ended one,
    // it was halted (or taken over) and must stop.
    this.#signals.onEnded((id) => {
      this.#running.get(id)?.recheck();
      if (!this.#stopping) this.notify();
    });
  }

  start(): void {
    for (let i = 0; i < this.#opts.concurrency; i++) this.#loops.push(this.#loop());
  }

  /** Nudges idle workers: a new operation was just queued. */
  notify(): void {
    const [first] = this.#wakers;
    first?.();
  }

  /** Resolves true at the next end signal of `operationId`, false when `signal` aborts (a long-polled last_operation). */
  nextEnd(operationId: string, signal: AbortSignal): Promise<boolean> {
    return this.#signals.next(operationId, signal);
  }

  /** A request ended (halted) an operation: wake whoever waits for it, here and on the other replicas. */
  operationEnded(operationId: string): void {
    this.#signals.ended(operationId);
  }

  /**
   * Stops claiming, lets in-flight operations finish for up to `graceMs`,
   * then aborts the rest and hands their leases back so another process
   * resumes them at once.
   */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    this.#stopController.abort();
    for (const wake of [...this.#wakers]) wake();
    const all = Promise.all([...this.#running.values()].map((r) => r.done));
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
    if ((await Promise.race([all.then(() => 'done' as const), timer])) === 'timeout') {
      for (const r of this.#running.values()) r.controller.abort(new ShuttingDown('Berth is shutting down; another worker will resume this operation'));
      await Promise.race([all, new Promise((r) => setTimeout(r, 5000).unref())]);
    }
    await Promise.all(this.#loops);
  }

  async #loop(): Promise<void> {
    while (!this.#stopping) {
      let op: OperationRecord | undefined;
      try {
        op = await this.#stores.queue.claim(this.owner, this.#opts.leaseMs, undefined, this.#unwinding());
      } catch (err) {
        if (!isDatabaseUnavailable(err)) this.#log.error({ err }, 'claiming an operation failed');
        await pause(Math.max(this.#opts.pollIntervalMs, 1000), this.#stopController.signal);
        continue;
      }
      if (!op) {
        await new Promise<void>((resolve) => {
          const wake = () => {
            clearTimeout(t);
            this.#wakers.delete(wake);
            resolve();
          };
          const t = setTimeout(wake, this.#opts.pollIntervalMs);
          this.#wakers.add(wake);
        });
        continue;
      }
      await this.#execute(op);
    }
  }

  /**
   * Runs one operation now, in the caller (synchronous plans). If it cannot be
   * claimed (another worker holds it, or an older operation of the instance
   * goes first), waits for its end signal; a worker woken by the previous
   * operation's end runs it meanwhile. Returns the operation as it is after at
   * most BERTH_SYNC_WAIT_SECONDS: unfinished if it is still running (here or elsewhere).
   */
  async runNow(operationId: string): Promise<OperationStatusRecord | undefined> {
    const until = Date.now() + this.#opts.syncWaitMs;
    const stopAwaiting = this.#awaiting(operationId);
    try {
      let mayClaim = true;
      for (;;) {
        const waiting = new AbortController();
        const woken = this.#signals.next(operationId, AbortSignal.any([waiting.signal, AbortSignal.timeout(Math.max(0, until - Date.now()))]));
        try {
          // While stopping, leave it to the other replicas (or the next process).
          const claimed = this.#stopping || !mayClaim ? undefined : await this.#stores.queue.claim(this.owner, this.#opts.leaseMs, operationId, this.#unwinding());
          if (claimed) {
            // Run here, but answer by the deadline even if it is still running: it then goes on like a worker's.
            await Promise.race([this.#execute(claimed), delay(Math.max(0, until - Date.now()), undefined, { signal: waiting.signal })]);
          }
          const op = await this.#stores.operations.status({ id: operationId });
          if (!op || op.finishedAt || Date.now() >= until) return op;
          // Signalled: it ended, was handed back, or its turn may have come; claim again. Otherwise the wait is over.
          mayClaim = await woken;
        } finally {
          waiting.abort();
        }
      }
    } finally {
      stopAwaiting();
    }
  }

  /** Registers a request waiting for `operationId`; returns its deregistration. */
  #awaiting(operationId: string): () => void {
    this.#awaited.set(operationId, (this.#awaited.get(operationId) ?? 0) + 1);
    this.#sweeper ??= setInterval(() => void this.#sweep(), Math.max(this.#opts.pollIntervalMs, 1000));
    return () => {
      const n = this.#awaited.get(operationId)! - 1;
      if (n > 0) this.#awaited.set(operationId, n);
      else this.#awaited.delete(operationId);
      if (this.#awaited.size === 0) {
        clearInterval(this.#sweeper);
        this.#sweeper = undefined;
      }
    };
  }

  /**
   * The safety net under the signals (one lost while the relay reconnected, a
   * replica killed between its commit and its NOTIFY): one query for all the
   * operations requests here wait for, however many, and a signal for each
   * that ended. With no idle worker here to claim what became runnable, every
   * waiter is signalled to try itself.
   */
  async #sweep(): Promise<void> {
    if (this.#sweeping) return;
    this.#sweeping = true;
    try {
      const ids = [...this.#awaited.keys()];
      const due = this.#wakers.size === 0 ? ids : await this.#stores.operations.endedAmong(ids);
      for (const id of due) this.#signals.received(id);
    } catch {
      // The next sweep tries again.
    } finally {
      this.#sweeping = false;
    }
  }

  /**
   * Operations this process is still running. Normally none of them is
   * claimable (we hold their leases), but an execution that lost its lease
   * (e.g. the database was unreachable) may still be unwinding: never start a
   * second execution of it beside the first.
   */
  #unwinding(): string[] {
    return [...this.#running.keys()];
  }

  async #execute(op: OperationRecord): Promise<void> {
    const controller = new AbortController();
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    this.#running.set(op.id, { controller, done, recheck: () => {} });
    this.#metrics?.operationsInFlight.inc();
    const started = Date.now();
    const log = this.#log.child({ operation: op.id, kind: op.kind, instance: op.instanceId, binding: op.bindingId, attempt: op.attempts });
    const lease = new Lease(this.#stores.queue, op, this.owner, this.#opts.leaseMs, controller);
    this.#running.get(op.id)!.recheck = () => lease.recheck();
    try {
      // Sealed under a key no longer configured (or altered): no attempt can succeed, so it ends now, naming the key.
      if (op.unreadableRequest !== undefined) throw new PermanentError(op.unreadableRequest);
      if (op.deadlineAt && op.deadlineAt.getTime() <= Date.now()) throw new DeadlineExceeded();
      log.info('operation started');
      failpoint('engine.after-claim');
      await this.#run(op, controller.signal, log);
      this.#metrics?.operationDuration.observe({ kind: op.kind, state: 'succeeded' }, (Date.now() - started) / 1000);
      log.info({ ms: Date.now() - started }, 'operation succeeded');
    } catch (err) {
      await this.#handleFailure(op, err, controller.signal, log, started);
    } finally {
      lease.release();
      this.#running.delete(op.id);
      this.#metrics?.operationsInFlight.dec();
      resolveDone();
      // Ended, or handed back for a retry or another worker: either way its waiters look again.
      this.#signals.ended(op.id);
    }
  }

  async #handleFailure(op: OperationRecord, err: unknown, signal: AbortSignal, log: Logger, started: number): Promise<void> {
    const reason = signal.aborted ? signal.reason : undefined;
    if (reason instanceof LeaseLost || err instanceof LeaseLost) {
      log.warn({ reason: (reason ?? err).message }, 'operation abandoned');
      await this.#persist(() => this.#stores.queue.release(op.id, this.owner), log);
      return;
    }
    if (reason instanceof ShuttingDown) {
      log.info('operation handed back at shutdown');
      await this.#persist(() => this.#stores.queue.release(op.id, this.owner), log);
      return;
    }
    const message = err instanceof Error ? err.message : String(err);
    if (reason instanceof DeadlineExceeded || err instanceof DeadlineExceeded) {
      const seconds = op.planSnapshot ? op.planSnapshot.maximumPollingDurationSeconds : this.#catalog.plan(op.request.planId as string)?.maximumPollingDurationSeconds;
      await this.#fail(op, {
        description: `${op.kind} did not finish within the plan's maximum_polling_duration${seconds ? ` of ${seconds} s` : ''}; the last step was: ${op.description}`,
      }, log, started);
      return;
    }
    if (err instanceof PermanentError) {
      await this.#fail(
        op,
        { description: message, instanceUsable: err.instanceUsable, updateRepeatable: err.updateRepeatable, ...(err.causedByRequest ? { failureCause: 'request' as const } : {}) },
        log,
        started,
      );
      return;
    }
    if (err instanceof UndecryptableError) {
      await this.#fail(op, { description: message }, log, started);
      return;
    }
    if (op.attempts >= this.#opts.maxAttempts) {
      await this.#fail(op, { description: `${op.kind} failed after ${op.attempts} attempts: ${message}` }, log, started);
      return;
    }
    const backoff = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (op.attempts - 1)) * (0.75 + Math.random() * 0.5);
    log.warn({ err: message, retryInMs: Math.round(backoff) }, 'operation step failed; will retry');
    await this.#persist(
      () => this.#stores.queue.scheduleRetry(op.id, this.owner, Math.round(backoff), `Retrying (attempt ${op.attempts + 1}) after a transient error: ${message}`),
      log,
    );
  }

  /** Retries a bookkeeping write through database outages, as long as our lease could still be valid. */
  async #persist(write: () => Promise<unknown>, log: Logger): Promise<void> {
    try {
      await retry(write, { delayMs: (attempt) => Math.min(200 * 2 ** (attempt - 1), 5000), until: Date.now() + Math.max(this.#opts.leaseMs, 5000) * 4 });
    } catch (err) {
      log.error({ err }, 'could not record the operation outcome; the lease will expire and another worker will redo it');
    }
  }

  /** Prepares the operation, lets its kind do the work, and records the success. */
  async #run(op: OperationRecord, signal: AbortSignal, log: Logger): Promise<void> {
    const run = await Run.prepare(this.#runDeps, op, signal, log);
    const success = await kinds[op.kind](run);
    await this.#succeed(op, log, success);
  }

  async #fail(op: OperationRecord, outcome: Omit<Outcome, 'state'>, log: Logger, started: number): Promise<void> {
    log.warn({ description: outcome.description }, 'operation failed');
    this.#metrics?.operationDuration.observe({ kind: op.kind, state: 'failed' }, (Date.now() - started) / 1000);
    await this.#persist(
      () =>
        this.#stores.transaction(async (tx) => {
          // Locked without decrypting: an instance whose secrets cannot be opened still gets its operation ended.
          await tx.instances.lock(op.instanceId);
          const { instanceUsable: _u, updateRepeatable: _r, ...rest } = outcome;
          const full: Outcome = { state: 'failed', ...rest, ...reportedUsability(op.kind, outcome) };
          if (!(await tx.queue.finish(op.id, full, this.owner))) return;
          await onFailure(tx, op, full.failureCause === 'request');
          await this.#audit(tx, op, 'failed');
        }),
      log,
    );
  }

  async #audit(tx: TableStores, op: OperationRecord, outcome: string): Promise<void> {
    await tx.audit.record(
      {
        operationId: op.id,
        instanceId: op.instanceId,
        bindingId: op.bindingId,
        action: op.kind,
        platform: undefined,
        originatingIdentity: undefined,
        requestIdentity: op.requestIdentity,
        outcome,
      },
    );
  }

  async #succeed(op: OperationRecord, log: Logger, apply: Success): Promise<void> {
    failpoint('engine.before-outcome');
    let finished = false;
    await this.#persist(
      () =>
        this.#stores.transaction(async (tx) => {
          await tx.instances.get(op.instanceId, { lock: true });
          finished = await tx.queue.finish(op.id, { state: 'succeeded', description: pastTense[op.kind] }, this.owner);
          if (!finished) return;
          await apply(tx);
          await this.#audit(tx, op, 'succeeded');
        }),
      log,
    );
    if (!finished) throw new LeaseLostAfterWork();
  }
}

/** The work completed but the operation had been halted or taken over meanwhile; its new owner decides. */
class LeaseLostAfterWork extends LeaseLost {
  constructor() {
    super('the operation was ended elsewhere before its result could be recorded');
  }
}
