// The broker's domain: what each OSB request means for Berth's state. It
// decides idempotency, conflicts and concurrency inside one transaction per
// request (instance row locked), queues operations and, for synchronous plans,
// runs them before answering. It knows nothing of HTTP beyond OSB error values.
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Knex } from 'knex';
import type { Catalog, CatalogPlan, CatalogService } from '../catalog/catalog.ts';
import { PlanSnapshots, snapshotOf, UnusableSnapshot, type PlanSnapshot } from '../catalog/plan-snapshot.ts';
import { describeErrors } from '../catalog/schemas.ts';
import { errors, OsbError } from '../osb/errors.ts';
import type { ProvisionerRegistry } from '../provisioners/provisioner.ts';
import type { JsonObject, OperationKind, OperationRequests } from '../osb/model.ts';
import type { BindingRecord, Db, InstanceRecord, OperationRecord, Stores } from '../store/stores.ts';
import type { OperationEngine } from '../operations/engine.ts';
import { failpoint } from '../failpoints.ts';
import { reportedUsability } from '../osb/lifecycle.ts';
import { since } from '../osb/versions.ts';

export interface RequestMeta {
  apiMinor: number;
  requestIdentity: string | undefined;
  originatingIdentity: { platform: string; value: JsonObject } | undefined;
}

export interface ProvisionRequest {
  instanceId: string;
  serviceId: string;
  planId: string;
  context: JsonObject | undefined;
  organizationGuid: string | undefined;
  spaceGuid: string | undefined;
  parameters: JsonObject | undefined;
  maintenanceVersion: string | undefined;
  acceptsIncomplete: boolean;
}

export interface UpdateRequest {
  instanceId: string;
  serviceId: string;
  planId: string | undefined;
  context: JsonObject | undefined;
  parameters: JsonObject | undefined;
  maintenanceVersion: string | undefined;
  acceptsIncomplete: boolean;
}

export interface DeleteInstanceRequest {
  instanceId: string;
  serviceId: string;
  planId: string;
  acceptsIncomplete: boolean;
}

export interface BindRequest {
  instanceId: string;
  bindingId: string;
  serviceId: string;
  planId: string;
  context: JsonObject | undefined;
  bindResource: JsonObject | undefined;
  appGuid: string | undefined;
  parameters: JsonObject | undefined;
  predecessorBindingId: string | undefined;
  acceptsIncomplete: boolean;
}

export interface UnbindRequest {
  instanceId: string;
  bindingId: string;
  serviceId: string;
  planId: string;
  acceptsIncomplete: boolean;
}

export type InstanceAnswer =
  | { status: 200 | 201; dashboardUrl?: string; metadata?: JsonObject }
  | { status: 202; operation: string; dashboardUrl?: string };

export type BindAnswer = { status: 200 | 201; binding: BindingView } | { status: 202; operation: string };

export type DeleteAnswer = { status: 200 } | { status: 202; operation: string };

export interface BindingView {
  credentials?: JsonObject;
  syslog_drain_url?: string;
  route_service_url?: string;
  volume_mounts?: unknown[];
  endpoints?: unknown[];
  metadata?: JsonObject;
  parameters?: JsonObject;
}

export interface LastOperationView {
  state: 'in progress' | 'succeeded' | 'failed';
  description: string;
  instance_usable?: boolean;
  update_repeatable?: boolean;
}

/** A last_operation body plus what the HTTP layer needs to say when to poll again (Retry-After). */
export interface LastOperationReport {
  view: LastOperationView;
  startedAt: Date;
  deadlineAt: Date | undefined;
}

export class BrokerService {
  readonly catalog: Catalog;
  readonly #stores: Stores;
  readonly #knex: Knex;
  readonly #provisioners: ProvisionerRegistry;
  readonly #engine: OperationEngine;
  readonly #snapshots: PlanSnapshots;

  constructor(deps: { catalog: Catalog; stores: Stores; provisioners: ProvisionerRegistry; engine: OperationEngine }) {
    this.catalog = deps.catalog;
    this.#stores = deps.stores;
    this.#knex = deps.stores.knex;
    this.#provisioners = deps.provisioners;
    this.#engine = deps.engine;
    this.#snapshots = new PlanSnapshots(deps.provisioners.parseConfig);
  }

  // ---- lookups shared by the endpoints -------------------------------------------------

  #service(serviceId: string): CatalogService {
    const service = this.catalog.service(serviceId);
    if (!service) throw errors.badRequest(`service_id "${serviceId}" is not in this broker's catalog.`);
    return service;
  }

  #plan(service: CatalogService, planId: string): CatalogPlan {
    const plan = this.catalog.plan(planId);
    if (!plan) throw errors.badRequest(`plan_id "${planId}" is not in this broker's catalog.`);
    if (plan.service !== service) throw errors.badRequest(`plan_id "${planId}" does not belong to service_id "${service.id}".`);
    return plan;
  }

  /** Deletes accept a plan_id the catalog no longer has (the platform may have older instances), not one of another service. */
  #knownPlanOf(serviceId: string, planId: string): void {
    const plan = this.catalog.plan(planId);
    if (plan && plan.service.id !== serviceId) throw errors.badRequest(`plan_id "${planId}" does not belong to service_id "${serviceId}".`);
  }

  /**
   * Deletes and fetches of existing objects accept a service the catalog no longer has, when it is the
   * object's own: a retired service's instances must still be removable.
   */
  #serviceOfExisting(serviceId: string, instance: InstanceRecord | undefined): void {
    if (this.catalog.service(serviceId) || instance?.serviceId === serviceId) return;
    this.#service(serviceId);
  }

  /**
   * The plan an existing instance runs on, as recorded when it was provisioned or last updated, so that
   * what happens to it does not depend on this replica's catalog. Rows from before that record fall back
   * to the catalog.
   */
  #instancePlan(instance: Pick<InstanceRecord, 'planId' | 'planSnapshot'>): CatalogPlan | undefined {
    if (instance.planSnapshot) {
      try {
        return this.#snapshots.plan(instance.planSnapshot);
      } catch (err) {
        // A kind this process does not load: answer from the catalog if it can; the recorded plan still goes
        // with the operation, for a replica that can run it.
        if (!(err instanceof UnusableSnapshot)) throw err;
      }
    }
    return this.catalog.plan(instance.planId);
  }

  #instancePlanOrRefuse(instance: InstanceRecord): CatalogPlan {
    const plan = this.#instancePlan(instance);
    if (plan) return plan;
    throw errors.unprocessable(
      `The plan ${instance.planId} of service instance ${instance.id} is not in this broker's catalog, and Berth has no record of its settings from before it was retired; put the plan back in the catalog to change or remove the instance.`,
    );
  }

  /** What an operation on an existing instance records as its plan: the instance's own. */
  #snapshotOfInstance(instance: InstanceRecord, plan: CatalogPlan): PlanSnapshot {
    return instance.planSnapshot ?? snapshotOf(plan);
  }

  /** Whether GET may echo the parameters: not when the plan's provisioner treats them as secret, nor when the plan is unknown. */
  #parametersShown(instance: Pick<InstanceRecord, 'planId' | 'planSnapshot'>): boolean {
    const plan = this.#instancePlan(instance);
    return plan !== undefined && !this.#provisioners.forPlan(plan).parametersAreSecret;
  }

  #requireAsyncAllowed(plan: CatalogPlan, kind: OperationKind, acceptsIncomplete: boolean, apiMinor: number): boolean {
    const async = this.#provisioners.forPlan(plan).isAsync(kind, plan);
    if (async && !acceptsIncomplete) throw errors.asyncRequired();
    // Older platforms cannot poll asynchronous bindings.
    if (async && (kind === 'bind' || kind === 'unbind') && apiMinor < since.asyncBindings) {
      throw errors.versionTooOld('This plan binds asynchronously, which', since.asyncBindings);
    }
    return async;
  }

  #validate(validate: CatalogPlan['schemas']['instanceCreate'], parameters: JsonObject | undefined): void {
    if (!validate) return;
    if (!validate(parameters ?? {})) throw errors.badRequest(`Invalid parameters: ${describeErrors(validate.errors)}`);
  }

  /** What the plan's provisioner can never use, refused before anything is stored (a failed operation would be the broker's 500). */
  #checkParameters(plan: CatalogPlan, parameters: JsonObject): void {
    const refusal = this.#provisioners.forPlan(plan).checkParameters?.(plan, parameters);
    if (refusal) throw errors.badRequest(refusal);
  }

  #deadline(plan: CatalogPlan): Date | undefined {
    const s = plan.maximumPollingDurationSeconds;
    return s ? new Date(Date.now() + s * 1000) : undefined;
  }

  async #queue(
    trx: Db,
    meta: RequestMeta,
    op: { [K in OperationKind]: { instanceId: string; bindingId?: string; kind: K; plan: CatalogPlan; planSnapshot: PlanSnapshot; request: Omit<OperationRequests[K], 'planId'> } }[OperationKind],
  ): Promise<string> {
    const id = randomUUID();
    await this.#stores.operations.create(
      {
        id,
        instanceId: op.instanceId,
        bindingId: op.bindingId,
        kind: op.kind,
        description: 'Queued',
        request: { planId: op.plan.id, ...op.request } as OperationRequests[OperationKind],
        deadlineAt: this.#deadline(op.plan),
        requestIdentity: meta.requestIdentity,
        planSnapshot: op.planSnapshot,
      },
      trx,
    );
    await this.#stores.audit.record(
      {
        operationId: id,
        instanceId: op.instanceId,
        bindingId: op.bindingId,
        action: op.kind,
        platform: meta.originatingIdentity?.platform,
        originatingIdentity: meta.originatingIdentity?.value,
        requestIdentity: meta.requestIdentity,
        outcome: 'accepted',
      },
      trx,
    );
    return id;
  }

  /** Runs a synchronous operation to its end; undefined when it is still running after the wait. */
  async #runSync(operationId: string): Promise<OperationRecord | undefined> {
    const op = await this.#engine.runNow(operationId);
    if (!op || !op.finishedAt) return undefined;
    if (op.state === 'failed') throw await this.#failure(op);
    return op;
  }

  /** The answer to a synchronous operation that ended `failed`. */
  async #failure(op: OperationRecord): Promise<OsbError> {
    // Halted by the platform's own delete (OSB §Blocking Operations): the request lost to a
    // concurrent one, which is a 4xx (no orphan mitigation: the delete already cleans up).
    const next = await this.#stores.operations.latest(op.instanceId, op.bindingId);
    if (next && next.id !== op.id && 'halted' in next.request && next.request.halted === op.id) return errors.halted(op.description);
    const usability = reportedUsability(op.kind, op);
    // The request's own data made it fail (e.g. a namespace that does not exist), and what it made was undone:
    // the client has to change the request (OSB: 400 for invalid data).
    if (op.failureCause === 'request') return new OsbError(400, op.description, { error: 'BadRequest', ...usability });
    // The provisioner failed: a broker-side error, after which the platform should clean up.
    return new OsbError(500, op.description, { error: 'OperationFailed', ...usability });
  }

  /**
   * After the request's transaction: the stored answer of an idempotent repeat,
   * 202 for a queued asynchronous operation, or the synchronous operation run
   * to its end and `done` describing the result.
   */
  async #conclude<T>(
    outcome: { answer?: T; operation?: string; halted?: string },
    async: boolean,
    acceptsIncomplete: boolean,
    done: () => Promise<T>,
  ): Promise<T | { status: 202; operation: string }> {
    if (outcome.answer) return outcome.answer;
    // Stops the halted create's execution now and answers the request waiting for it.
    if (outcome.halted) this.#engine.operationEnded(outcome.halted);
    failpoint('service.after-commit');
    if (async) {
      this.#engine.notify();
      return { status: 202, operation: outcome.operation! };
    }
    if (await this.#runSync(outcome.operation!)) return done();
    // Still running (retrying a transient failure, or queued behind another operation).
    if (acceptsIncomplete) return { status: 202, operation: outcome.operation! };
    throw new OsbError(504, 'The operation is taking longer than this broker waits before answering; it continues in the background. Send the request again later to learn its outcome, or send accepts_incomplete=true to be given an operation to poll.', { error: 'Timeout' });
  }

  // ---- instances -------------------------------------------------------------------------

  async provision(req: ProvisionRequest, meta: RequestMeta): Promise<InstanceAnswer> {
    const service = this.#service(req.serviceId);
    const plan = this.#plan(service, req.planId);
    const async = this.#requireAsyncAllowed(plan, 'provision', req.acceptsIncomplete, meta.apiMinor);
    this.#validate(plan.schemas.instanceCreate, req.parameters);
    this.#checkParameters(plan, req.parameters ?? {});
    if (req.maintenanceVersion !== undefined && req.maintenanceVersion !== plan.maintenanceVersion) {
      throw errors.maintenanceInfoConflict(plan.maintenanceVersion, req.maintenanceVersion);
    }
    const parameters = req.parameters ?? {};
    const record: InstanceRecord = {
      id: req.instanceId,
      serviceId: service.id,
      planId: plan.id,
      state: 'creating',
      parameters,
      context: req.context,
      organizationGuid: req.organizationGuid,
      spaceGuid: req.spaceGuid,
      maintenanceVersion: plan.maintenanceVersion,
      dashboardUrl: undefined,
      metadata: undefined,
      provisionerState: {},
      planSnapshot: snapshotOf(plan),
    };
    const outcome = await this.#knex.transaction(async (trx) => {
      let fresh = await this.#stores.instances.insertIfAbsent(record, trx);
      if (!fresh) {
        const existing = (await this.#stores.instances.get(req.instanceId, trx, { lock: true }))!;
        if (existing.state === 'deleted') {
          await this.#stores.instances.replace(record, trx);
          fresh = true;
        } else {
          const same =
            existing.serviceId === record.serviceId &&
            existing.planId === record.planId &&
            isDeepStrictEqual(existing.parameters, parameters) &&
            existing.organizationGuid === record.organizationGuid &&
            existing.spaceGuid === record.spaceGuid;
          if (!same) throw errors.conflict(`Service instance ${req.instanceId} already exists with different attributes.`);
          if (existing.state === 'ready' || existing.state === 'updating') {
            return { answer: { status: 200, dashboardUrl: existing.dashboardUrl, metadata: existing.metadata } as InstanceAnswer };
          }
          if (existing.state === 'creating') {
            const active = await this.#stores.operations.active(req.instanceId, undefined, trx);
            if (active && req.acceptsIncomplete) return { answer: { status: 202, operation: active.id } as InstanceAnswer };
            throw errors.concurrency();
          }
          if (existing.state === 'deleting') throw errors.concurrency();
          // create_failed: an identical retry tries again (the provisioner converges on what exists).
          await this.#stores.instances.patch(req.instanceId, { state: 'creating', context: req.context, planSnapshot: record.planSnapshot }, trx);
        }
      }
      const operation = await this.#queue(trx, meta, { instanceId: req.instanceId, kind: 'provision', plan, planSnapshot: record.planSnapshot!, request: {} });
      return { operation };
    });
    return this.#conclude(outcome, async, req.acceptsIncomplete, async () => {
      const done = await this.#stores.instances.get(req.instanceId);
      return { status: 201, dashboardUrl: done?.dashboardUrl, metadata: done?.metadata };
    });
  }

  async update(req: UpdateRequest, meta: RequestMeta): Promise<InstanceAnswer> {
    const service = this.#service(req.serviceId);
    const current = await this.#stores.instances.get(req.instanceId);
    if (!current || current.state === 'deleted') throw errors.notFound(`Service instance ${req.instanceId} does not exist.`);
    if (current.serviceId !== service.id) throw errors.badRequest(`service_id "${req.serviceId}" is not the service of instance ${req.instanceId}.`);
    // The instance's plan as recorded (it may have been retired from the catalog since); the target must be in the catalog.
    const currentPlan = this.#instancePlanOrRefuse(current);
    const targetPlan = req.planId !== undefined ? this.#plan(service, req.planId) : this.catalog.plan(current.planId);
    if (!targetPlan) {
      throw errors.unprocessable(`The instance's plan ${current.planId} is no longer in the catalog; change it to a plan of the catalog, or delete the instance.`);
    }
    const planChange = targetPlan.id !== currentPlan.id;
    const async = this.#requireAsyncAllowed(targetPlan, 'update', req.acceptsIncomplete, meta.apiMinor);
    if (req.parameters !== undefined) {
      this.#validate(targetPlan.schemas.instanceUpdate ?? targetPlan.schemas.instanceCreate, req.parameters);
    }
    const parameters = req.parameters !== undefined ? { ...current.parameters, ...req.parameters } : current.parameters;
    if (req.parameters !== undefined && targetPlan.schemas.instanceUpdate && targetPlan.schemas.instanceCreate) {
      this.#validate(targetPlan.schemas.instanceCreate, parameters);
    }
    if (req.parameters !== undefined) this.#checkParameters(targetPlan, parameters);
    if (planChange && !currentPlan.planUpdateable) {
      throw errors.unprocessable(`Plan "${currentPlan.name}" cannot be changed to another plan (plan_updateable is false).`, { updateRepeatable: false });
    }
    // Also without a plan change: the catalog's version of the plan may differ from the one the instance was made with.
    const refusal = this.#provisioners.forPlan(currentPlan).checkUpdate?.(currentPlan, targetPlan);
    if (refusal) throw errors.unprocessable(refusal, { updateRepeatable: false });
    if (req.maintenanceVersion !== undefined && req.maintenanceVersion !== targetPlan.maintenanceVersion) {
      throw errors.maintenanceInfoConflict(targetPlan.maintenanceVersion, req.maintenanceVersion);
    }
    const maintenanceChange = req.maintenanceVersion !== undefined && req.maintenanceVersion !== current.maintenanceVersion;
    const parameterChange = !isDeepStrictEqual(parameters, current.parameters);
    const contextChange = req.context !== undefined && !isDeepStrictEqual(req.context, current.context);

    const outcome = await this.#knex.transaction(async (trx) => {
      const locked = (await this.#stores.instances.get(req.instanceId, trx, { lock: true }))!;
      const active = await this.#stores.operations.active(req.instanceId, undefined, trx);
      if (active) {
        const same =
          active.kind === 'update' &&
          active.request.planId === targetPlan.id &&
          isDeepStrictEqual(active.request.parameters, parameters);
        if (same && req.acceptsIncomplete) return { answer: { status: 202, operation: active.id } as InstanceAnswer };
        throw errors.concurrency();
      }
      if (locked.state !== 'ready') {
        if (locked.state === 'creating' || locked.state === 'deleting' || locked.state === 'updating') throw errors.concurrency();
        throw errors.unprocessable(`Service instance ${req.instanceId} was not provisioned successfully; delete it and provision again.`);
      }
      if (!planChange && !parameterChange && !maintenanceChange) {
        if (contextChange) await this.#stores.instances.patch(req.instanceId, { context: req.context }, trx);
        return { answer: { status: 200, dashboardUrl: locked.dashboardUrl } as InstanceAnswer };
      }
      await this.#stores.instances.patch(req.instanceId, { state: 'updating' }, trx);
      const operation = await this.#queue(trx, meta, {
        instanceId: req.instanceId,
        kind: 'update',
        plan: targetPlan,
        planSnapshot: snapshotOf(targetPlan),
        request: {
          parameters,
          previousPlanId: currentPlan.id,
          previousParameters: current.parameters,
          maintenanceVersion: targetPlan.maintenanceVersion,
          ...(req.context !== undefined ? { context: req.context } : {}),
        },
      });
      return { operation };
    });
    return this.#conclude(outcome, async, req.acceptsIncomplete, async () => {
      const done = await this.#stores.instances.get(req.instanceId);
      return { status: 200, dashboardUrl: done?.dashboardUrl, metadata: done?.metadata };
    });
  }

  async deprovision(req: DeleteInstanceRequest, meta: RequestMeta): Promise<DeleteAnswer> {
    const current = await this.#stores.instances.get(req.instanceId);
    this.#serviceOfExisting(req.serviceId, current);
    this.#knownPlanOf(req.serviceId, req.planId);
    if (!current || current.state === 'deleted') throw errors.gone();
    if (current.serviceId !== req.serviceId) throw errors.badRequest(`service_id "${req.serviceId}" is not the service of instance ${req.instanceId}.`);
    const plan = this.#instancePlanOrRefuse(current);
    const async = this.#requireAsyncAllowed(plan, 'deprovision', req.acceptsIncomplete, meta.apiMinor);

    const outcome = await this.#knex.transaction(async (trx) => {
      const locked = await this.#stores.instances.get(req.instanceId, trx, { lock: true });
      if (!locked || locked.state === 'deleted') throw errors.gone();
      const active = await this.#stores.operations.active(req.instanceId, undefined, trx);
      if (active?.kind === 'deprovision') {
        if (req.acceptsIncomplete) return { answer: { status: 202, operation: active.id } as DeleteAnswer };
        throw errors.concurrency();
      }
      if (active?.kind === 'update') throw errors.concurrency();
      if (await this.#stores.operations.anyActiveBindingOperation(req.instanceId, trx)) throw errors.concurrency();
      const halted = active?.kind === 'provision' ? active.id : undefined;
      if (halted) {
        // OSB §Deprovisioning: a delete during provisioning halts the creation and deletes.
        await this.#stores.operations.finish(
          halted,
          { state: 'failed', description: 'Provisioning was halted because a deprovision was requested.' },
          undefined,
          trx,
        );
      }
      const previousState = locked.state === 'creating' ? 'create_failed' : locked.state;
      await this.#stores.instances.patch(req.instanceId, { state: 'deleting' }, trx);
      const operation = await this.#queue(trx, meta, {
        instanceId: req.instanceId,
        kind: 'deprovision',
        plan,
        planSnapshot: this.#snapshotOfInstance(locked, plan),
        request: { previousState, ...(halted ? { halted } : {}) },
      });
      return { operation, halted };
    });
    return this.#conclude(outcome, async, req.acceptsIncomplete, async () => ({ status: 200 }) as const);
  }

  async fetchInstance(instanceId: string, meta: RequestMeta): Promise<JsonObject> {
    const instance = await this.#stores.instances.get(instanceId);
    if (!instance || instance.state === 'deleted' || instance.state === 'creating' || instance.state === 'create_failed') {
      throw errors.notFound(`Service instance ${instanceId} does not exist or is still being provisioned.`);
    }
    if (instance.state === 'updating') throw errors.concurrency();
    const body: JsonObject = { service_id: instance.serviceId, plan_id: instance.planId };
    if (instance.dashboardUrl) body.dashboard_url = instance.dashboardUrl;
    if (this.#parametersShown(instance)) body.parameters = instance.parameters;
    if (instance.maintenanceVersion && meta.apiMinor >= since.fetchedMaintenanceInfo) body.maintenance_info = { version: instance.maintenanceVersion };
    if (meta.apiMinor >= since.fetchedInstanceMetadata && instance.metadata) body.metadata = instance.metadata;
    return body;
  }

  async lastOperation(instanceId: string, operationId: string | undefined): Promise<LastOperationReport | 'gone'> {
    const op = await this.#stores.operations.status(operationId ? { id: operationId } : { instanceId, bindingId: undefined });
    if (op && op.instanceId === instanceId && op.bindingId === undefined) {
      if (!operationId && op.kind === 'deprovision' && op.state === 'succeeded' && (await this.#stores.instances.stateOf(instanceId)) === 'deleted') {
        return 'gone';
      }
      return report(op);
    }
    const state = await this.#stores.instances.stateOf(instanceId);
    if (state === undefined) throw errors.notFound(`Service instance ${instanceId} does not exist.`);
    if (operationId) throw errors.badRequest(`Operation ${operationId} is not an operation of service instance ${instanceId}.`);
    if (state === 'deleted') return 'gone';
    throw errors.notFound(`Service instance ${instanceId} has no operations.`);
  }

  // ---- bindings --------------------------------------------------------------------------

  async bind(req: BindRequest, meta: RequestMeta): Promise<BindAnswer> {
    const service = this.#service(req.serviceId);
    const plan = this.#plan(service, req.planId);
    if (!plan.bindable) throw errors.badRequest(`Plan "${plan.name}" is not bindable.`);
    const instance = await this.#stores.instances.get(req.instanceId);
    if (!instance || instance.state === 'deleted') throw errors.notFound(`Service instance ${req.instanceId} does not exist.`);
    if (instance.serviceId !== service.id || instance.planId !== plan.id) {
      throw errors.badRequest(`service_id and plan_id must be those of instance ${req.instanceId} (${instance.serviceId}, ${instance.planId}).`);
    }
    if (plan.options.requiresApp && !req.appGuid && !req.bindResource?.app_guid) throw errors.requiresApp();
    const async = this.#requireAsyncAllowed(plan, 'bind', req.acceptsIncomplete, meta.apiMinor);

    let parameters = req.parameters;
    if (req.predecessorBindingId !== undefined) {
      if (meta.apiMinor < since.bindingRotation) throw errors.versionTooOld('predecessor_binding_id', since.bindingRotation);
      if (!plan.bindingRotatable) throw errors.badRequest(`Plan "${plan.name}" does not support binding rotation (binding_rotatable is false).`);
      const predecessor = await this.#stores.bindings.get(req.instanceId, req.predecessorBindingId);
      if (!predecessor || predecessor.state !== 'ready') {
        throw errors.badRequest(`predecessor_binding_id "${req.predecessorBindingId}" is not a binding of instance ${req.instanceId}.`);
      }
      parameters ??= predecessor.parameters;
    }
    this.#validate(plan.schemas.bindingCreate, parameters);
    const record: BindingRecord = {
      instanceId: req.instanceId,
      id: req.bindingId,
      serviceId: service.id,
      planId: plan.id,
      state: 'creating',
      parameters: parameters ?? {},
      context: req.context,
      bindResource: req.bindResource,
      appGuid: req.appGuid ?? (req.bindResource?.app_guid as string | undefined),
      predecessorBindingId: req.predecessorBindingId,
      credentials: undefined,
      endpoints: undefined,
      metadata: undefined,
      provisionerState: {},
    };

    const outcome = await this.#knex.transaction(async (trx) => {
      const locked = await this.#stores.instances.get(req.instanceId, trx, { lock: true });
      if (!locked || locked.state === 'deleted') throw errors.notFound(`Service instance ${req.instanceId} does not exist.`);
      if (locked.state === 'create_failed') throw errors.unprocessable(`Service instance ${req.instanceId} failed to provision; it cannot be bound.`);
      if (locked.state !== 'ready') throw errors.concurrency();
      let fresh = await this.#stores.bindings.insertIfAbsent(record, trx);
      if (!fresh) {
        const existing = (await this.#stores.bindings.get(req.instanceId, req.bindingId, trx, { lock: true }))!;
        if (existing.state === 'deleted') {
          await this.#stores.bindings.replace(record, trx);
          fresh = true;
        } else {
          const same =
            existing.planId === record.planId &&
            isDeepStrictEqual(existing.parameters, record.parameters) &&
            existing.appGuid === record.appGuid &&
            isDeepStrictEqual(existing.bindResource ?? {}, record.bindResource ?? {}) &&
            existing.predecessorBindingId === record.predecessorBindingId;
          if (!same) throw errors.conflict(`Service binding ${req.bindingId} already exists with different attributes.`);
          if (existing.state === 'ready') return { answer: { status: 200, binding: bindingView(existing, meta) } as BindAnswer };
          if (existing.state === 'creating') {
            const active = await this.#stores.operations.active(req.instanceId, req.bindingId, trx);
            if (active && req.acceptsIncomplete) return { answer: { status: 202, operation: active.id } as BindAnswer };
            throw errors.concurrency();
          }
          if (existing.state === 'deleting') throw errors.concurrency();
          await this.#stores.bindings.patch(req.instanceId, req.bindingId, { state: 'creating' }, trx);
        }
      }
      const refusal = this.#provisioners.forPlan(plan).checkBind?.(plan, locked.parameters, req.context);
      if (refusal) throw errors.badRequest(refusal);
      // Validated against this replica's catalog; run with the instance's own plan settings (e.g. its server).
      const planSnapshot = this.#snapshotOfInstance(locked, plan);
      const operation = await this.#queue(trx, meta, { instanceId: req.instanceId, bindingId: req.bindingId, kind: 'bind', plan, planSnapshot, request: {} });
      return { operation };
    });
    return this.#conclude(outcome, async, req.acceptsIncomplete, async () => {
      const done = (await this.#stores.bindings.get(req.instanceId, req.bindingId))!;
      return { status: 201, binding: bindingView(done, meta) };
    });
  }

  async unbind(req: UnbindRequest, meta: RequestMeta): Promise<DeleteAnswer> {
    const instance = await this.#stores.instances.get(req.instanceId);
    this.#serviceOfExisting(req.serviceId, instance);
    this.#knownPlanOf(req.serviceId, req.planId);
    const binding = await this.#stores.bindings.get(req.instanceId, req.bindingId);
    if (!instance || !binding || binding.state === 'deleted') throw errors.gone();
    const plan = this.#instancePlanOrRefuse(instance);
    const async = this.#requireAsyncAllowed(plan, 'unbind', req.acceptsIncomplete, meta.apiMinor);

    const outcome = await this.#knex.transaction(async (trx) => {
      const lockedInstance = (await this.#stores.instances.get(req.instanceId, trx, { lock: true }))!;
      const locked = await this.#stores.bindings.get(req.instanceId, req.bindingId, trx, { lock: true });
      if (!locked || locked.state === 'deleted') throw errors.gone();
      const instanceOp = await this.#stores.operations.active(req.instanceId, undefined, trx);
      if (instanceOp) throw errors.concurrency();
      const active = await this.#stores.operations.active(req.instanceId, req.bindingId, trx);
      if (active?.kind === 'unbind') {
        if (req.acceptsIncomplete) return { answer: { status: 202, operation: active.id } as DeleteAnswer };
        throw errors.concurrency();
      }
      const halted = active?.kind === 'bind' ? active.id : undefined;
      if (halted) {
        // OSB §Unbinding: a delete during binding halts the creation and deletes.
        await this.#stores.operations.finish(
          halted,
          { state: 'failed', description: 'Binding was halted because an unbind was requested.' },
          undefined,
          trx,
        );
      }
      const previousState = locked.state === 'creating' ? 'create_failed' : locked.state;
      await this.#stores.bindings.patch(req.instanceId, req.bindingId, { state: 'deleting' }, trx);
      const operation = await this.#queue(trx, meta, {
        instanceId: req.instanceId,
        bindingId: req.bindingId,
        kind: 'unbind',
        plan,
        planSnapshot: this.#snapshotOfInstance(lockedInstance, plan),
        // `halted` and `synchronous` let last_operation report the halted bind (see bindingLastOperation).
        request: { previousState, ...(halted ? { halted, synchronous: !async } : {}) },
      });
      return { operation, halted };
    });
    return this.#conclude(outcome, async, req.acceptsIncomplete, async () => ({ status: 200 }) as const);
  }

  async fetchBinding(instanceId: string, bindingId: string, meta: RequestMeta): Promise<BindingView> {
    const binding = await this.#stores.bindings.get(instanceId, bindingId);
    if (!binding || binding.state !== 'ready') {
      throw errors.notFound(`Service binding ${bindingId} does not exist or is still being created.`);
    }
    const view = bindingView(binding, meta);
    // Only the plan decides, so the instance's secrets are not decrypted (nor needed to be decryptable).
    const instance = await this.#stores.instances.planOf(instanceId);
    if (instance && this.#parametersShown(instance)) view.parameters = binding.parameters;
    return view;
  }

  async bindingLastOperation(instanceId: string, bindingId: string, operationId: string | undefined): Promise<LastOperationReport | 'gone'> {
    // Only its state matters here, so nothing is decrypted (a binding sealed under a removed key still answers).
    const bindingState = await this.#stores.bindings.stateOf(instanceId, bindingId);
    if (!bindingState) throw errors.notFound(`Service binding ${bindingId} does not exist.`);
    let op = operationId ? await this.#stores.operations.get(operationId) : await this.#stores.operations.latest(instanceId, bindingId);
    if (operationId && (!op || op.instanceId !== instanceId || op.bindingId !== bindingId)) {
      throw errors.badRequest(`Operation ${operationId} is not an operation of service binding ${bindingId}.`);
    }
    if (!op) {
      if (bindingState === 'deleted') return 'gone';
      throw errors.notFound(`Service binding ${bindingId} has no operations.`);
    }
    if (!operationId && bindingState === 'deleted' && op.kind === 'unbind' && op.state === 'succeeded') {
      // 410 is the answer to a platform polling an asynchronous unbind. Nobody polls a synchronous
      // unbind, so after one that halted the bind, the poll is about the bind: report how it ended.
      const halted = op.request.synchronous === true && typeof op.request.halted === 'string' ? await this.#stores.operations.get(op.request.halted) : undefined;
      if (!halted) return 'gone';
      op = halted;
    }
    // A binding's operations report neither instance_usable nor update_repeatable (lifecycle.ts).
    return report(op);
  }
}

function view(op: OperationRecord): LastOperationView {
  // Its last progress is no longer current once its worker stopped: say what is happening now.
  const description = op.awaitingResumption
    ? `Waiting to be resumed (its worker stopped); the last step was: ${op.description}`
    : op.description || op.state;
  const v: LastOperationView = { state: op.state, description };
  if (op.state === 'failed') {
    const usability = reportedUsability(op.kind, op);
    if (usability.instanceUsable !== undefined) v.instance_usable = usability.instanceUsable;
    if (usability.updateRepeatable !== undefined) v.update_repeatable = usability.updateRepeatable;
  }
  return v;
}

function report(op: OperationRecord): LastOperationReport {
  return { view: view(op), startedAt: op.createdAt, deadlineAt: op.deadlineAt };
}

function bindingView(b: BindingRecord, meta: RequestMeta): BindingView {
  const stored = (b.credentials ?? {}) as {
    credentials?: JsonObject;
    syslog_drain_url?: string;
    route_service_url?: string;
    volume_mounts?: unknown[];
  };
  const out: BindingView = {};
  if (stored.credentials) out.credentials = stored.credentials;
  if (stored.syslog_drain_url) out.syslog_drain_url = stored.syslog_drain_url;
  if (stored.route_service_url) out.route_service_url = stored.route_service_url;
  if (stored.volume_mounts) out.volume_mounts = stored.volume_mounts;
  if (b.endpoints && meta.apiMinor >= since.bindingEndpoints) out.endpoints = b.endpoints;
  if (b.metadata && meta.apiMinor >= since.metadata) out.metadata = b.metadata;
  return out;
}
