// What each OSB request on a service instance means for Berth's state. Each
// mutating request decides idempotency, conflicts and concurrency inside one
// transaction (instance row locked), then queues its operation (queueing.ts).
// It knows nothing of HTTP beyond OSB error values (osb/errors.ts).
import { isDeepStrictEqual } from 'node:util';
import { standingOf } from '../catalog/maintenance.ts';
import { snapshotOf } from '../catalog/plan-snapshot.ts';
import { errors } from '../osb/errors.ts';
import { lifecycle, stateBeforeDelete } from '../osb/lifecycle.ts';
import type { InstanceRecord } from '../store/instances.ts';
import { since } from '../osb/versions.ts';
import type { Stores } from '../store/unit-of-work.ts';
import { createOrRepeat } from './idempotency.ts';
import { BrokerPart, failureOf, statusOf, type Decision, type Queueing } from './queueing.ts';
import type { Rules } from './rules.ts';
import type { DeleteAnswer, DeleteInstanceRequest, FetchedInstance, InstanceAnswer, OperationStatus, ProvisionRequest, RequestMeta, UpdateRequest } from './types.ts';

export class Instances extends BrokerPart {
  readonly #dashboardUrl: ((instanceId: string) => string) | undefined;

  /** `dashboardUrl`: Berth's own dashboard link, which then replaces any a provisioner returned (src/dashboard). */
  constructor(stores: Stores, rules: Rules, queueing: Queueing, dashboardUrl?: (instanceId: string) => string) {
    super(stores, rules, queueing);
    this.#dashboardUrl = dashboardUrl;
  }

  /** The answer with Berth's dashboard link, where OSB defines dashboard_url (provision; update from 2.14). */
  #linked(instanceId: string, answer: InstanceAnswer): InstanceAnswer {
    return this.#dashboardUrl ? { ...answer, dashboardUrl: this.#dashboardUrl(instanceId) } : answer;
  }

  async provision(req: ProvisionRequest, meta: RequestMeta): Promise<InstanceAnswer> {
    const rules = this.rules;
    const service = rules.service(req.serviceId);
    const plan = rules.plan(service, req.planId);
    const async = rules.asyncFor(plan, 'provision', req.acceptsIncomplete, meta.apiMinor);
    rules.validate(plan.schemas.instanceCreate, req.parameters);
    rules.checkParameters(plan, req.parameters ?? {});
    rules.checkCluster('provision', plan, req.context);
    rules.maintenanceVersion(plan, req.maintenanceVersion);
    const parameters = req.parameters ?? {};
    const planSnapshot = snapshotOf(plan);
    const record: InstanceRecord = {
      id: req.instanceId,
      serviceId: service.id,
      planId: plan.id,
      state: lifecycle.provision.during,
      parameters,
      context: req.context,
      organizationGuid: req.organizationGuid,
      spaceGuid: req.spaceGuid,
      maintenanceVersion: plan.maintenanceVersion,
      dashboardUrl: undefined,
      metadata: undefined,
      provisionerState: {},
      planSnapshot,
    };
    const decision: Decision<InstanceAnswer> = await this.stores.transaction(async (tx) => {
      const repeat = await createOrRepeat({
        insert: () => tx.instances.insertIfAbsent(record),
        existing: async () => (await tx.instances.get(req.instanceId, { lock: true }))!,
        replace: () => tx.instances.replace(record),
        same: (existing) =>
          existing.serviceId === record.serviceId &&
          existing.planId === record.planId &&
          isDeepStrictEqual(existing.parameters, parameters) &&
          existing.organizationGuid === record.organizationGuid &&
          existing.spaceGuid === record.spaceGuid,
        conflict: `Service instance ${req.instanceId} already exists with different attributes.`,
        finished: (existing) =>
          existing.state === 'ready' || existing.state === 'updating'
            ? ({ status: 200, dashboardUrl: existing.dashboardUrl, metadata: existing.metadata } as const)
            : undefined,
        active: () => tx.operations.active(req.instanceId, undefined),
        acceptsIncomplete: req.acceptsIncomplete,
        failed: () => tx.operations.failedLatest(req.instanceId, undefined, 'provision'),
        retry: () => tx.instances.patch(req.instanceId, { state: lifecycle.provision.during, context: req.context, planSnapshot }),
      });
      if (repeat) return repeat;
      return { operation: await this.queueing.enqueue(tx, meta, { instanceId: req.instanceId, kind: 'provision', plan, planSnapshot, request: {} }) };
    });
    const answer: InstanceAnswer = await this.queueing.conclude(decision, async, req.acceptsIncomplete, async () => {
      const done = await this.stores.instances.get(req.instanceId);
      return { status: 201 as const, dashboardUrl: done?.dashboardUrl, metadata: done?.metadata };
    });
    return this.#linked(req.instanceId, answer);
  }

  async update(req: UpdateRequest, meta: RequestMeta): Promise<InstanceAnswer> {
    const rules = this.rules;
    const service = rules.service(req.serviceId);
    const current = await this.stores.instances.get(req.instanceId);
    if (!current || current.state === 'deleted') throw errors.notFound(`Service instance ${req.instanceId} does not exist.`);
    if (current.serviceId !== service.id) throw errors.badRequest(`service_id "${req.serviceId}" is not the service of instance ${req.instanceId}.`);
    // The instance's plan as recorded (it may have been retired from the catalog since); the target must be in the catalog.
    const currentPlan = rules.instancePlanOrRefuse(current);
    const targetPlan = req.planId !== undefined ? rules.plan(service, req.planId) : rules.catalog.plan(current.planId);
    if (!targetPlan) {
      throw errors.unprocessable(`The instance's plan ${current.planId} is no longer in the catalog; change it to a plan of the catalog, or delete the instance.`);
    }
    const planChange = targetPlan.id !== currentPlan.id;
    const async = rules.asyncFor(targetPlan, 'update', req.acceptsIncomplete, meta.apiMinor);
    if (req.parameters !== undefined) rules.validate(targetPlan.schemas.instanceUpdate ?? targetPlan.schemas.instanceCreate, req.parameters);
    const parameters = req.parameters !== undefined ? { ...current.parameters, ...req.parameters } : current.parameters;
    if (req.parameters !== undefined && targetPlan.schemas.instanceUpdate && targetPlan.schemas.instanceCreate) {
      rules.validate(targetPlan.schemas.instanceCreate, parameters);
    }
    if (req.parameters !== undefined) rules.checkParameters(targetPlan, parameters);
    if (planChange && !currentPlan.planUpdateable) {
      throw errors.unprocessable(`Plan "${currentPlan.name}" cannot be changed to another plan (plan_updateable is false).`, { updateRepeatable: false });
    }
    rules.checkUpdate(currentPlan, targetPlan);
    rules.checkCluster('update', targetPlan, req.context);
    rules.maintenanceVersion(targetPlan, req.maintenanceVersion);
    if (!planChange) rules.noDowngrade(current, targetPlan, req.maintenanceVersion);
    // Maintenance moves only when the platform sends maintenance_info (OSB: that is how it asks for an upgrade):
    // any other update of an instance whose plan has another maintenance version since runs with the plan as
    // the instance has it (chart, values, server settings), and leaves its version where it is.
    const standing = standingOf(current.maintenanceVersion, targetPlan.maintenanceVersion);
    const stays = !planChange && req.maintenanceVersion === undefined && current.planSnapshot !== undefined && (standing === 'behind' || standing === 'ahead');
    const runPlan = stays ? currentPlan : targetPlan;
    const runSnapshot = stays ? current.planSnapshot! : snapshotOf(targetPlan);
    const maintenanceChange = req.maintenanceVersion !== undefined && req.maintenanceVersion !== current.maintenanceVersion;
    const parameterChange = !isDeepStrictEqual(parameters, current.parameters);
    const contextChange = req.context !== undefined && !isDeepStrictEqual(req.context, current.context);

    const decision: Decision<InstanceAnswer> = await this.stores.transaction(async (tx) => {
      const locked = (await tx.instances.get(req.instanceId, { lock: true }))!;
      const active = await tx.operations.active(req.instanceId, undefined);
      if (active) {
        const same = active.kind === 'update' && active.request.planId === targetPlan.id && isDeepStrictEqual(active.request.parameters, parameters);
        if (same && req.acceptsIncomplete) return { answer: { status: 202, operation: active.id } };
        throw errors.concurrency();
      }
      if (locked.state !== 'ready') {
        if (locked.state === 'creating' || locked.state === 'deleting' || locked.state === 'updating') throw errors.concurrency();
        throw errors.unprocessable(`Service instance ${req.instanceId} was not provisioned successfully; delete it and provision again.`);
      }
      // An update is how a platform moves on from a failed delete: the next DELETE runs again.
      await tx.operations.supersedeFailures(req.instanceId);
      if (!planChange && !parameterChange && !maintenanceChange) {
        if (contextChange) await tx.instances.patch(req.instanceId, { context: req.context });
        return { answer: { status: 200, dashboardUrl: locked.dashboardUrl } };
      }
      await tx.instances.patch(req.instanceId, { state: lifecycle.update.during });
      const operation = await this.queueing.enqueue(tx, meta, {
        instanceId: req.instanceId,
        kind: 'update',
        plan: runPlan,
        planSnapshot: runSnapshot,
        request: {
          parameters,
          previousPlanId: currentPlan.id,
          previousParameters: current.parameters,
          maintenanceVersion: stays ? current.maintenanceVersion : targetPlan.maintenanceVersion,
          ...(req.context !== undefined ? { context: req.context } : {}),
        },
      });
      return { operation };
    });
    const answer: InstanceAnswer = await this.queueing.conclude(decision, async, req.acceptsIncomplete, async () => {
      const done = await this.stores.instances.get(req.instanceId);
      return { status: 200 as const, dashboardUrl: done?.dashboardUrl, metadata: done?.metadata };
    });
    // OSB 2.14 added dashboard_url to the update answer; an older caller gets none of Berth's.
    if (this.#dashboardUrl && meta.apiMinor < since.updatedDashboardUrl) return { ...answer, dashboardUrl: undefined };
    return this.#linked(req.instanceId, answer);
  }

  async deprovision(req: DeleteInstanceRequest, meta: RequestMeta): Promise<DeleteAnswer> {
    const rules = this.rules;
    const current = await this.stores.instances.get(req.instanceId);
    rules.assertServiceOfExisting(req.serviceId, current);
    rules.assertPlanBelongsTo(req.serviceId, req.planId);
    if (!current || current.state === 'deleted') throw errors.gone();
    if (current.serviceId !== req.serviceId) throw errors.badRequest(`service_id "${req.serviceId}" is not the service of instance ${req.instanceId}.`);
    const plan = rules.instancePlanOrRefuse(current);
    const async = rules.asyncFor(plan, 'deprovision', req.acceptsIncomplete, meta.apiMinor);

    const decision: Decision<DeleteAnswer> = await this.stores.transaction(async (tx) => {
      const locked = await tx.instances.get(req.instanceId, { lock: true });
      if (!locked || locked.state === 'deleted') throw errors.gone();
      const active = await tx.operations.active(req.instanceId, undefined);
      if (active?.kind === 'deprovision') {
        if (req.acceptsIncomplete) return { answer: { status: 202, operation: active.id } };
        throw errors.concurrency();
      }
      if (active?.kind === 'update') throw errors.concurrency();
      const halted = active?.kind === 'provision' ? active.id : undefined;
      if (!halted && (await tx.operations.anyActiveBindingOperation(req.instanceId))) throw errors.concurrency();
      // A failed delete stands until the platform updates the instance (see failedLatest): deleting
      // again at once would hide the failure from platforms that repeat the DELETE on every reconcile.
      // (Only for an instance that works: the delete of a failed create is the platform's cleanup, retried freely.)
      const standing = active || locked.state !== 'ready' ? undefined : await tx.operations.failedLatest(req.instanceId, undefined, 'deprovision');
      if (standing) {
        if (req.acceptsIncomplete) return { answer: { status: 202, operation: standing.id } };
        throw failureOf(standing);
      }
      if (halted) {
        // OSB §Deprovisioning: a delete during provisioning halts the creation and deletes.
        await tx.queue.finish(halted, { state: 'failed', description: 'Provisioning was halted because a deprovision was requested.', failureCause: 'halted' }, undefined);
        // Binds queued behind the provision (none can have started) end with it.
        for (const bind of await tx.operations.activeBindingOperations(req.instanceId)) {
          await tx.queue.finish(bind.id, { state: 'failed', description: 'Binding was halted because the instance\'s deprovision was requested.', failureCause: 'halted' }, undefined);
          await tx.bindings.patch(req.instanceId, bind.bindingId!, { state: lifecycle.bind.failed });
        }
      }
      await tx.instances.patch(req.instanceId, { state: lifecycle.deprovision.during });
      const operation = await this.queueing.enqueue(tx, meta, {
        instanceId: req.instanceId,
        kind: 'deprovision',
        plan,
        planSnapshot: rules.snapshotOfInstance(locked, plan),
        request: { previousState: stateBeforeDelete(locked.state), ...(halted ? { halted } : {}) },
      });
      return { operation, halted };
    });
    return this.queueing.conclude(decision, async, req.acceptsIncomplete, async () => ({ status: 200 }) as const);
  }

  async fetch(instanceId: string): Promise<FetchedInstance> {
    const instance = await this.stores.instances.get(instanceId);
    if (!instance || instance.state === 'deleted' || instance.state === 'creating' || instance.state === 'create_failed') {
      throw errors.notFound(`Service instance ${instanceId} does not exist or is still being provisioned.`);
    }
    if (instance.state === 'updating') throw errors.concurrency();
    const shown = this.#dashboardUrl ? { ...instance, dashboardUrl: this.#dashboardUrl(instanceId) } : instance;
    return { instance: shown, parametersShown: this.rules.parametersShown(instance) };
  }

  async lastOperation(instanceId: string, operationId: string | undefined): Promise<OperationStatus | 'gone'> {
    const op = await this.stores.operations.status(operationId ? { id: operationId } : { instanceId, bindingId: undefined });
    if (op && op.instanceId === instanceId && op.bindingId === undefined) {
      if (!operationId && op.kind === 'deprovision' && op.state === 'succeeded' && (await this.stores.instances.stateOf(instanceId)) === 'deleted') {
        return 'gone';
      }
      return statusOf(op);
    }
    const state = await this.stores.instances.stateOf(instanceId);
    if (state === undefined) throw errors.notFound(`Service instance ${instanceId} does not exist.`);
    if (operationId) throw errors.badRequest(`Operation ${operationId} is not an operation of service instance ${instanceId}.`);
    if (state === 'deleted') return 'gone';
    throw errors.notFound(`Service instance ${instanceId} has no operations.`);
  }
}
