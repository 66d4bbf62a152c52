// One operation prepared to run: its instance, the plan it runs with, its
// provisioner, and the contexts the provisioner is handed, whose checkpoints
// are fenced by the lease (see docs/operations.md, "Fencing").
import type { Logger } from 'pino';
import type { Catalog, CatalogPlan } from '../catalog/catalog.ts';
import { UnusableSnapshot, type PlanSnapshot, type PlanSnapshots } from '../catalog/plan-snapshot.ts';
import { causedByRequest, PermanentError } from '../osb/errors.ts';
import type { JsonObject } from '../osb/model.ts';
import type {
  BindingHooks,
  BindingOperation,
  InstanceOperation,
  InstanceView,
  OperationContext,
  Provisioner,
  ProvisionerRegistry,
} from '../provisioners/provisioner.ts';
import type { BindingRecord } from '../store/bindings.ts';
import type { InstanceRecord } from '../store/instances.ts';
import type { OperationRecord } from '../store/operations.ts';
import type { Stores, TableStores } from '../store/unit-of-work.ts';
import { untilAborted } from '../lib/abortable.ts';

/** The worker no longer holds the operation (lost lease, halted, taken over). */
export class LeaseLost extends Error {}

export interface RunDeps {
  owner: string;
  stores: Stores;
  catalog: Catalog;
  snapshots: PlanSnapshots;
  provisioners: ProvisionerRegistry;
  hooks: BindingHooks;
}

export class Run {
  readonly op: OperationRecord;
  readonly instance: InstanceRecord;
  readonly plan: CatalogPlan;
  readonly provisioner: Provisioner;
  /** The parameters the instance has while this runs: an update's merged ones, else the instance's. */
  readonly parameters: JsonObject;
  readonly hooks: BindingHooks;
  readonly #deps: RunDeps;
  readonly #signal: AbortSignal;
  readonly #log: Logger;
  readonly #view: InstanceView;

  private constructor(deps: RunDeps, op: OperationRecord, instance: InstanceRecord, signal: AbortSignal, log: Logger) {
    this.#deps = deps;
    this.op = op;
    this.instance = instance;
    this.#signal = signal;
    this.#log = log;
    this.hooks = deps.hooks;
    const request = op.kind === 'update' ? op.request : {};
    // What was recorded when the request was accepted, not this replica's catalog, which may be older or newer.
    this.plan = resolvePlan(deps, op.planSnapshot ?? (op.kind === 'update' ? undefined : instance.planSnapshot), request.planId ?? instance.planId, log);
    this.provisioner = deps.provisioners.forPlan(this.plan);
    this.parameters = request.parameters ?? instance.parameters;
    this.#view = {
      id: instance.id,
      serviceId: instance.serviceId,
      plan: this.plan,
      parameters: this.parameters,
      context: instance.context,
      organizationGuid: instance.organizationGuid,
      spaceGuid: instance.spaceGuid,
    };
  }

  static async prepare(deps: RunDeps, op: OperationRecord, signal: AbortSignal, log: Logger): Promise<Run> {
    const instance = await deps.stores.instances.get(op.instanceId);
    if (!instance) throw new PermanentError(`instance ${op.instanceId} no longer exists`);
    return new Run(deps, op, instance, signal, log);
  }

  /** The plan an update starts from: until the update succeeds the instance's record is the plan it is on. */
  previousPlan(previousPlanId = this.instance.planId): CatalogPlan {
    const recorded = this.instance.planSnapshot?.id === previousPlanId ? this.instance.planSnapshot : undefined;
    return recorded || this.#deps.catalog.plan(previousPlanId) ? resolvePlan(this.#deps, recorded, previousPlanId, this.#log) : this.plan;
  }

  instanceOperation(): InstanceOperation {
    const save = (tx: TableStores, s: JsonObject) => tx.instances.patch(this.instance.id, { provisionerState: s });
    return { ...this.#context(this.#log, { ...this.instance.provisionerState }, save), instance: this.#view };
  }

  async binding(): Promise<BindingRecord> {
    const binding = await this.#deps.stores.bindings.get(this.instance.id, this.op.bindingId!);
    if (!binding) throw new PermanentError(`binding ${this.op.bindingId} no longer exists`);
    return binding;
  }

  liveBindings(): Promise<BindingRecord[]> {
    return this.#deps.stores.bindings.listLive(this.instance.id);
  }

  bindingOperation(binding: BindingRecord): BindingOperation {
    const save = (tx: TableStores, s: JsonObject) => tx.bindings.patch(this.instance.id, binding.id, { provisionerState: s });
    return {
      ...this.#context(this.#log.child({ binding: binding.id }), { ...binding.provisionerState }, save),
      instance: { ...this.#view, state: { ...this.instance.provisionerState } },
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

  /**
   * Runs a create. When it fails because of the request's data, first undoes what it made (the platform
   * does no cleanup after the 4xx such a failure is answered with). If that undo fails, the failure is
   * reported as the broker's (500), so that the platform's orphan mitigation removes what is left.
   */
  async create<T>(create: () => Promise<T>, undo: () => Promise<void>): Promise<T> {
    try {
      return await create();
    } catch (err) {
      if (!causedByRequest(err)) throw err;
      try {
        await undo();
      } catch (undoErr) {
        this.#log.warn({ err: undoErr instanceof Error ? undoErr.message : String(undoErr) }, 'what the refused create made could not be undone; reported as a broker failure');
        throw new PermanentError(err.message, { instanceUsable: err.instanceUsable, cause: err });
      }
      throw err;
    }
  }

  #context(log: Logger, state: JsonObject, save: (tx: TableStores, s: JsonObject) => Promise<void>): OperationContext {
    const { op } = this;
    const { stores, owner } = this.#deps;
    const signal = this.#signal;
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
          stores.transaction(async (tx) => {
            // Same lock order as requests and outcomes: the instance row, then the operation row.
            await tx.instances.get(op.instanceId, { lock: true });
            if (!(await tx.queue.holds(op.id, owner))) {
              throw new LeaseLost('the operation was ended or taken over elsewhere; checkpoint refused');
            }
            await save(tx, state);
          }),
          signal,
        );
      },
      progress: async (description) => {
        // Kept for the failure description (e.g. "the last step was: ...").
        op.description = description;
        try {
          await untilAborted(stores.queue.setDescription(op.id, owner, description), signal);
        } catch (err) {
          log.debug({ err }, 'progress not recorded');
        }
      },
    };
  }
}

/**
 * A plan recorded with the operation or instance, else (rows older than that record) this process's
 * catalog. A plan this process cannot use is a transient failure, not the operation's: another
 * replica (or this one after its catalog is updated) may have it.
 */
function resolvePlan(deps: Pick<RunDeps, 'catalog' | 'snapshots'>, snapshot: PlanSnapshot | undefined, planId: string, log: Logger): CatalogPlan {
  if (snapshot) {
    try {
      return deps.snapshots.plan(snapshot);
    } catch (err) {
      // E.g. a provisioner kind this process does not load, or settings its version no longer accepts.
      if (!(err instanceof UnusableSnapshot) || !deps.catalog.plan(planId)) throw err;
      log.warn({ err: err.message }, "the plan recorded with the operation is unusable here; using this process's catalog");
    }
  }
  const plan = deps.catalog.plan(planId);
  if (!plan) throw new Error(`plan ${planId} is not in this Berth process's catalog; retrying, so that a process whose catalog has it can run the operation`);
  return plan;
}
