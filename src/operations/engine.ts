// Runs operations: rows in the operations table, claimed by workers that hold
// a renewable lease. A process that dies simply stops renewing; its leases
// expire and any replica (or the restarted process) takes the work over and
// re-runs the provisioner, whose steps are idempotent (see provisioner.ts).
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Catalog, CatalogPlan } from '../catalog/catalog.ts';
import { PlanSnapshots, UnusableSnapshot, snapshotOf, type PlanSnapshot } from '../catalog/plan-snapshot.ts';
import type {
  BindingHooks,
  BindingOperation,
  InstanceOperation,
  OperationContext,
  ProvisionerRegistry,
  UpdateOperation,
} from '../provisioners/provisioner.ts';
import { PermanentError, causedByRequest } from '../osb/errors.ts';
import type { BindingState, InstanceState, JsonObject, StoredRequest } from '../osb/model.ts';
import { lifecycle, reportedUsability, stateAfterFailure } from '../osb/lifecycle.ts';
import type { BindingRecord, Db, InstanceRecord, OperationRecord, Outcome, Stores } from '../store/stores.ts';
import type { Metrics } from '../observability/metrics.ts';
import { isDatabaseUnavailable } from '../db/errors.ts';
import { failpoint } from '../failpoints.ts';
import { UndecryptableError } from '../secret-box.ts';
import { OperationSignals } from './signals.ts';

export interface EngineOptions {
  concurrency: number;
  leaseMs: number;
  pollIntervalMs: number;
  maxAttempts: number;
  /** Backoff before retry n (1-based): base * 2^(n-1), capped, with jitter. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** How long a synchronous request waits for its operation (runNow) before it is answered 202 or 504. */
  syncWaitMs?: number;
}

class LeaseLost extends Error {}
class ShuttingDown extends Error {}
class DeadlineExceeded extends Error {}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

/** Settles with `work`, or rejects with the abort reason as soon as `signal` aborts (the work may still settle later, unobserved). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  work.catch(() => {});
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export const pastTense: Record<OperationRecord['kind'], string> = {
  provision: 'Provisioned',
  update: 'Updated',
  deprovision: 'Deprovisioned',
  bind: 'Bound',
  unbind: 'Unbound',
};

export class OperationEngine {
  readonly owner = `${process.pid}-${randomUUID()}`;
  readonly #stores: Stores;
  readonly #catalog: Catalog;
  readonly #snapshots: PlanSnapshots;
  readonly #provisioners: ProvisionerRegistry;
  readonly #log: Logger;
  readonly #opts: Required<EngineOptions>;
  readonly #metrics: Metrics | undefined;
  readonly #hooks: BindingHooks;
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
    this.#snapshots = new PlanSnapshots(deps.provisioners.parseConfig);
    this.#provisioners = deps.provisioners;
    this.#log = deps.log.child({ component: 'engine' });
    this.#opts = { retryBaseMs: 1000, retryMaxMs: 60_000, syncWaitMs: 20_000, ...deps.options };
    this.#metrics = deps.metrics;
    this.#hooks = deps.hooks ?? {};
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

  /** A request ended (halted) an operation: wake whoever waits for it, here and on the other replicas. */
  operationEnded(operationId: string): void {
    this.#signals.ended(operationId);
  }

  get inFlight(): number {
    return this.#running.size;
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
        op = await this.#stores.operations.claim(this.owner, this.#opts.leaseMs, undefined, this.#unwinding());
      } catch (err) {
        if (!isDatabaseUnavailable(err)) this.#log.error({ err }, 'claiming an operation failed');
        await sleep(Math.max(this.#opts.pollIntervalMs, 1000), this.#stopController.signal);
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
   * most `waitMs`: unfinished if it is still running (here or elsewhere).
   */
  async runNow(operationId: string, waitMs = this.#opts.syncWaitMs): Promise<OperationRecord | undefined> {
    const until = Date.now() + waitMs;
    const stopAwaiting = this.#awaiting(operationId);
    try {
      let mayClaim = true;
      for (;;) {
        const waiting = new AbortController();
        const woken = this.#signals.next(operationId, AbortSignal.any([waiting.signal, AbortSignal.timeout(Math.max(0, until - Date.now()))]));
        try {
          // While stopping, leave it to the other replicas (or the next process).
          const claimed = this.#stopping || !mayClaim ? undefined : await this.#stores.operations.claim(this.owner, this.#opts.leaseMs, operationId, this.#unwinding());
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
      const due = this.#wakers.size === 0 ? ids : await this.#stores.knex('operations').whereRaw('id = ANY(?)', [ids]).whereNotNull('finished_at').pluck('id');
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
    // When the last successful renewal was *sent*: the lease runs from about then.
    let lastRenewal = Date.now();
    let renewing = false;
    const renewLease = async () => {
      // Never past the deadline: the lease ends with it at the latest, so a worker stuck beyond
      // it (a statement that ignores the abort) cannot keep the operation from being failed.
      const leaseMs = op.deadlineAt ? Math.min(this.#opts.leaseMs, op.deadlineAt.getTime() - Date.now()) : this.#opts.leaseMs;
      if (leaseMs <= 0 || controller.signal.reason instanceof DeadlineExceeded) return;
      // Database unreachable (or too slow to answer): keep working only while our lease
      // is surely still valid, and stop before it can expire and be taken over elsewhere.
      if (Date.now() - lastRenewal > this.#opts.leaseMs * 0.8) {
        controller.abort(new LeaseLost('the lease could not be renewed in time (database unreachable)'));
        return;
      }
      if (renewing) return;
      renewing = true;
      const sent = Date.now();
      try {
        if (await this.#stores.operations.renew(op.id, this.owner, leaseMs)) lastRenewal = sent;
        else controller.abort(new LeaseLost('the operation was ended or taken over elsewhere'));
      } catch {
        // Checked on the next tick.
      } finally {
        renewing = false;
      }
    };
    const renew = setInterval(renewLease, Math.max(50, Math.floor(this.#opts.leaseMs / 4)));
    this.#running.get(op.id)!.recheck = () => void renewLease();
    let deadlineTimer: NodeJS.Timeout | undefined;
    if (op.deadlineAt) {
      const left = op.deadlineAt.getTime() - Date.now();
      deadlineTimer = setTimeout(() => controller.abort(new DeadlineExceeded()), Math.max(0, left));
    }
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
      clearInterval(renew);
      if (deadlineTimer) clearTimeout(deadlineTimer);
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
      await this.#persist(() => this.#stores.operations.release(op.id, this.owner), log);
      return;
    }
    if (reason instanceof ShuttingDown) {
      log.info('operation handed back at shutdown');
      await this.#persist(() => this.#stores.operations.release(op.id, this.owner), log);
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
    const delay = Math.min(this.#opts.retryMaxMs, this.#opts.retryBaseMs * 2 ** (op.attempts - 1)) * (0.75 + Math.random() * 0.5);
    log.warn({ err: message, retryInMs: Math.round(delay) }, 'operation step failed; will retry');
    await this.#persist(
      () => this.#stores.operations.scheduleRetry(op.id, this.owner, Math.round(delay), `Retrying (attempt ${op.attempts + 1}) after a transient error: ${message}`),
      log,
    );
  }

  /** Retries a bookkeeping write through database outages, as long as our lease could still be valid. */
  async #persist(write: () => Promise<unknown>, log: Logger): Promise<void> {
    const until = Date.now() + Math.max(this.#opts.leaseMs, 5000) * 4;
    for (let delay = 200; ; delay = Math.min(delay * 2, 5000)) {
      try {
        await write();
        return;
      } catch (err) {
        if (Date.now() > until) {
          log.error({ err }, 'could not record the operation outcome; the lease will expire and another worker will redo it');
          return;
        }
        await sleep(delay);
      }
    }
  }

  /**
   * A plan recorded with the operation or instance, else (rows older than that record) this process's
   * catalog. A plan this process cannot use is a transient failure, not the operation's: another
   * replica (or this one after its catalog is updated) may have it.
   */
  #resolvePlan(snapshot: PlanSnapshot | undefined, planId: string, log: Logger): CatalogPlan {
    if (snapshot) {
      try {
        return this.#snapshots.plan(snapshot);
      } catch (err) {
        // E.g. a provisioner kind this process does not load, or settings its version no longer accepts.
        if (!(err instanceof UnusableSnapshot) || !this.#catalog.plan(planId)) throw err;
        log.warn({ err: err.message }, "the plan recorded with the operation is unusable here; using this process's catalog");
      }
    }
    const plan = this.#catalog.plan(planId);
    if (!plan) throw new Error(`plan ${planId} is not in this Berth process's catalog; retrying, so that a process whose catalog has it can run the operation`);
    return plan;
  }

  async #fail(op: OperationRecord, outcome: Omit<Outcome, 'state'>, log: Logger, started: number): Promise<void> {
    log.warn({ description: outcome.description }, 'operation failed');
    this.#metrics?.operationDuration.observe({ kind: op.kind, state: 'failed' }, (Date.now() - started) / 1000);
    await this.#persist(
      () =>
        this.#stores.knex.transaction(async (trx) => {
          // Locked without decrypting: an instance whose secrets cannot be opened still gets its operation ended.
          await this.#stores.instances.lock(op.instanceId, trx);
          const { instanceUsable: _u, updateRepeatable: _r, ...rest } = outcome;
          const full: Outcome = { state: 'failed', ...rest, ...reportedUsability(op.kind, outcome) };
          if (!(await this.#stores.operations.finish(op.id, full, this.owner, trx))) return;
          await this.#afterFailure(op, full, trx);
          await this.#audit(op, 'failed', trx);
        }),
      log,
    );
  }

  async #afterFailure(op: OperationRecord, outcome: Outcome, trx: Db): Promise<void> {
    // Refused because of the request, with what it made undone (#create): as if it had never come.
    const state = stateAfterFailure(op.kind, op.request, outcome.failureCause === 'request');
    if (lifecycle[op.kind].target === 'instance') return this.#stores.instances.patch(op.instanceId, { state: state as InstanceState }, trx);
    return this.#stores.bindings.patch(op.instanceId, op.bindingId!, { state: state as BindingState }, trx);
  }

  async #audit(op: OperationRecord, outcome: string, trx: Db): Promise<void> {
    await this.#stores.audit.record(
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
      trx,
    );
  }

  #context(op: OperationRecord, signal: AbortSignal, log: Logger, state: JsonObject, save: (s: JsonObject, trx: Db) => Promise<void>): OperationContext {
    return {
      operationId: op.id,
      attempt: op.attempts,
      signal,
      log,
      state,
      checkpoint: async (patch) => {
        Object.assign(state, patch);
        // Fenced: only while this worker still holds the operation, so a worker
        // that lost its lease (or whose operation was halted) cannot overwrite
        // what the new owner checkpoints. The row lock orders us before a takeover.
        // Returns (throwing) as soon as the operation is aborted, so a provisioner
        // never hangs in here on an unreachable database after its lease is gone.
        await untilAborted(
          this.#stores.knex.transaction(async (trx) => {
            // Same lock order as requests and #succeed: the instance row, then the operation row.
            await this.#stores.instances.get(op.instanceId, trx, { lock: true });
            if (!(await this.#stores.operations.holds(op.id, this.owner, trx))) {
              throw new LeaseLost('the operation was ended or taken over elsewhere; checkpoint refused');
            }
            await save(state, trx);
          }),
          signal,
        );
      },
      progress: async (description) => {
        // Kept for the failure description (e.g. "the last step was: ...").
        op.description = description;
        try {
          await untilAborted(this.#stores.operations.setDescription(op.id, this.owner, description), signal);
        } catch (err) {
          log.debug({ err }, 'progress not recorded');
        }
      },
    };
  }

  async #run(op: OperationRecord, signal: AbortSignal, log: Logger): Promise<void> {
    const instance = await this.#stores.instances.get(op.instanceId);
    if (!instance) throw new PermanentError(`instance ${op.instanceId} no longer exists`);
    const request: StoredRequest<'update'> = op.kind === 'update' ? op.request : {};
    const planId = request.planId ?? instance.planId;
    // What was recorded when the request was accepted, not this replica's catalog, which may be older or newer.
    const plan = this.#resolvePlan(op.planSnapshot ?? (op.kind === 'update' ? undefined : instance.planSnapshot), planId, log);
    const provisioner = this.#provisioners.forPlan(plan);
    const view = {
      id: instance.id,
      serviceId: instance.serviceId,
      plan,
      parameters: request.parameters ?? instance.parameters,
      context: instance.context,
      organizationGuid: instance.organizationGuid,
      spaceGuid: instance.spaceGuid,
    };
    const saveInstanceState = (s: JsonObject, trx: Db) => this.#stores.instances.patch(instance.id, { provisionerState: s }, trx);

    if (op.kind === 'provision' || op.kind === 'update' || op.kind === 'deprovision') {
      const base = this.#context(op, signal, log, { ...instance.provisionerState }, saveInstanceState);
      const instanceOp: InstanceOperation = { ...base, instance: view };
      let result: { dashboardUrl?: string; metadata?: JsonObject } | void = undefined;
      if (op.kind === 'provision') {
        await base.progress('Provisioning');
        result = (await this.#create(() => provisioner.provision(instanceOp), () => provisioner.deprovision(instanceOp), log)) ?? undefined;
      } else if (op.kind === 'update') {
        // Until the update succeeds the instance's record is the plan it is on.
        const previousPlanId = request.previousPlanId ?? instance.planId;
        const recorded = instance.planSnapshot?.id === previousPlanId ? instance.planSnapshot : undefined;
        const previousPlan = recorded || this.#catalog.plan(previousPlanId) ? this.#resolvePlan(recorded, previousPlanId, log) : plan;
        const updateOp: UpdateOperation = { ...instanceOp, previous: { plan: previousPlan, parameters: request.previousParameters ?? instance.parameters } };
        await base.progress('Updating');
        result = (await provisioner.update(updateOp)) ?? undefined;
      } else {
        await base.progress('Removing bindings');
        for (const binding of await this.#stores.bindings.listLive(instance.id)) {
          const bindingOp = this.#bindingOp(op, signal, log, instance, view, binding);
          await this.#hooks.beforeUnbind?.(bindingOp);
          await provisioner.unbind(bindingOp);
        }
        await base.progress('Deprovisioning');
        await provisioner.deprovision(instanceOp);
      }
      await this.#succeed(op, log, async (trx) => {
        if (op.kind === 'provision') {
          await this.#stores.instances.patch(instance.id, { state: 'ready', dashboardUrl: result?.dashboardUrl, metadata: result?.metadata }, trx);
        } else if (op.kind === 'update') {
          await this.#stores.instances.patch(
            instance.id,
            {
              state: 'ready',
              planId,
              // An update queued before plans were recorded has none: record the plan it ran with.
              planSnapshot: op.planSnapshot ?? snapshotOf(plan),
              parameters: view.parameters,
              maintenanceVersion: request.maintenanceVersion ?? plan.maintenanceVersion,
              context: request.context ?? instance.context,
              ...(result?.dashboardUrl ? { dashboardUrl: result.dashboardUrl } : {}),
              ...(result?.metadata ? { metadata: result.metadata } : {}),
            },
            trx,
          );
        } else {
          await this.#stores.instances.patch(instance.id, { state: 'deleted' }, trx);
          await trx('bindings').where({ instance_id: instance.id }).update({ state: 'deleted', credentials_enc: null, updated_at: trx.fn.now() });
        }
      });
      return;
    }

    const binding = await this.#stores.bindings.get(instance.id, op.bindingId!);
    if (!binding) throw new PermanentError(`binding ${op.bindingId} no longer exists`);
    const bindingOp = this.#bindingOp(op, signal, log, instance, view, binding);
    if (op.kind === 'bind') {
      await bindingOp.progress('Creating credentials');
      const result = await this.#create(
        async () => {
          const created = await provisioner.bind(bindingOp);
          await this.#hooks.afterBind?.(bindingOp, created.credentials);
          return created;
        },
        async () => {
          await this.#hooks.beforeUnbind?.(bindingOp);
          await provisioner.unbind(bindingOp);
        },
        log,
      );
      await this.#succeed(op, log, (trx) =>
        this.#stores.bindings.patch(
          instance.id,
          binding.id,
          {
            state: 'ready',
            credentials: {
              credentials: result.credentials,
              syslog_drain_url: result.syslogDrainUrl,
              route_service_url: result.routeServiceUrl,
              volume_mounts: result.volumeMounts,
            },
            endpoints: result.endpoints,
            metadata: result.metadata,
          },
          trx,
        ),
      );
    } else {
      await bindingOp.progress('Revoking credentials');
      await this.#hooks.beforeUnbind?.(bindingOp);
      await provisioner.unbind(bindingOp);
      await this.#succeed(op, log, (trx) =>
        this.#stores.bindings.patch(instance.id, binding.id, { state: 'deleted', credentials: undefined }, trx),
      );
    }
  }

  /**
   * Runs a create. When it fails because of the request's data, first undoes what it made (the platform
   * does no cleanup after the 4xx such a failure is answered with). If that undo fails, the failure is
   * reported as the broker's (500), so that the platform's orphan mitigation removes what is left.
   */
  async #create<T>(create: () => Promise<T>, undo: () => Promise<void>, log: Logger): Promise<T> {
    try {
      return await create();
    } catch (err) {
      if (!causedByRequest(err)) throw err;
      try {
        await undo();
      } catch (undoErr) {
        log.warn({ err: undoErr instanceof Error ? undoErr.message : String(undoErr) }, 'what the refused create made could not be undone; reported as a broker failure');
        throw new PermanentError(err.message, { instanceUsable: err.instanceUsable, cause: err });
      }
      throw err;
    }
  }

  #bindingOp(
    op: OperationRecord,
    signal: AbortSignal,
    log: Logger,
    instance: InstanceRecord,
    view: BindingOperation['instance'] extends infer T ? Omit<T, 'state'> : never,
    binding: BindingRecord,
  ): BindingOperation {
    const base = this.#context(op, signal, log.child({ binding: binding.id }), { ...binding.provisionerState }, (s, trx) =>
      this.#stores.bindings.patch(instance.id, binding.id, { provisionerState: s }, trx),
    );
    return {
      ...base,
      instance: { ...view, state: { ...instance.provisionerState } },
      binding: {
        id: binding.id,
        parameters: binding.parameters,
        context: binding.context,
        bindResource: binding.bindResource,
        appGuid: binding.appGuid,
        predecessorBindingId: binding.predecessorBindingId,
      },
    };
  }

  async #succeed(op: OperationRecord, log: Logger, apply: (trx: Db) => Promise<unknown>): Promise<void> {
    failpoint('engine.before-outcome');
    let finished = false;
    await this.#persist(
      () =>
        this.#stores.knex.transaction(async (trx) => {
          await this.#stores.instances.get(op.instanceId, trx, { lock: true });
          finished = await this.#stores.operations.finish(op.id, { state: 'succeeded', description: pastTense[op.kind] }, this.owner, trx);
          if (!finished) return;
          await apply(trx);
          await this.#audit(op, 'succeeded', trx);
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
