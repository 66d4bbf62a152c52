// What each OSB request on a service binding means for Berth's state; the
// counterpart of instances.ts (same transaction discipline: the instance row
// is locked first).
import { isDeepStrictEqual } from 'node:util';
import { errors } from '../osb/errors.ts';
import { lifecycle, stateBeforeDelete } from '../osb/lifecycle.ts';
import { since } from '../osb/versions.ts';
import type { BindingRecord } from '../store/bindings.ts';
import type { OperationRecord } from '../store/operations.ts';
import { createOrRepeat } from './idempotency.ts';
import { BrokerPart, statusOf, type Decision } from './queueing.ts';
import type { BindAnswer, BindRequest, DeleteAnswer, FetchedBinding, OperationStatus, RequestMeta, UnbindRequest } from './types.ts';

export class Bindings extends BrokerPart {

  async bind(req: BindRequest, meta: RequestMeta): Promise<BindAnswer> {
    const rules = this.rules;
    const service = rules.service(req.serviceId);
    const plan = rules.plan(service, req.planId);
    if (!plan.bindable) throw errors.badRequest(`Plan "${plan.name}" is not bindable.`);
    const instance = await this.stores.instances.get(req.instanceId);
    if (!instance || instance.state === 'deleted') throw errors.notFound(`Service instance ${req.instanceId} does not exist.`);
    if (instance.serviceId !== service.id || instance.planId !== plan.id) {
      throw errors.badRequest(`service_id and plan_id must be those of instance ${req.instanceId} (${instance.serviceId}, ${instance.planId}).`);
    }
    if (plan.options.requiresApp && !req.appGuid && !req.bindResource?.app_guid) throw errors.requiresApp();
    const async = rules.asyncFor(plan, 'bind', req.acceptsIncomplete, meta.apiMinor);

    let parameters = req.parameters;
    if (req.predecessorBindingId !== undefined) {
      if (meta.apiMinor < since.bindingRotation) throw errors.versionTooOld('predecessor_binding_id', since.bindingRotation);
      if (!plan.bindingRotatable) throw errors.badRequest(`Plan "${plan.name}" does not support binding rotation (binding_rotatable is false).`);
      const predecessor = await this.stores.bindings.get(req.instanceId, req.predecessorBindingId);
      if (!predecessor || predecessor.state !== 'ready') {
        throw errors.badRequest(`predecessor_binding_id "${req.predecessorBindingId}" is not a binding of instance ${req.instanceId}.`);
      }
      parameters ??= predecessor.parameters;
    }
    rules.validate(plan.schemas.bindingCreate, parameters);
    const record: BindingRecord = {
      instanceId: req.instanceId,
      id: req.bindingId,
      serviceId: service.id,
      planId: plan.id,
      state: lifecycle.bind.during,
      parameters: parameters ?? {},
      context: req.context,
      bindResource: req.bindResource,
      appGuid: req.appGuid ?? (req.bindResource?.app_guid as string | undefined),
      predecessorBindingId: req.predecessorBindingId,
      bindResponse: undefined,
      endpoints: undefined,
      metadata: undefined,
      provisionerState: {},
    };

    // A bind that arrives while its instance is still being provisioned is queued behind the provision
    // (operations of an instance run in order) when the platform can poll for it: a platform that
    // binds straight after creating (`cf create-service` then `cf bind-service`) gets a binding, not a
    // 422 it takes as final. A platform that cannot poll still gets 422 ConcurrencyError.
    const canQueue = req.acceptsIncomplete && meta.apiMinor >= since.asyncBindings;
    let queuedBehindCreate = false;
    const decision: Decision<BindAnswer> = await this.stores.transaction(async (tx) => {
      const locked = await tx.instances.get(req.instanceId, { lock: true });
      if (!locked || locked.state === 'deleted') throw errors.notFound(`Service instance ${req.instanceId} does not exist.`);
      if (locked.state === 'create_failed') throw errors.unprocessable(`Service instance ${req.instanceId} failed to provision; it cannot be bound.`);
      queuedBehindCreate = locked.state === 'creating' && canQueue;
      if (locked.state !== 'ready' && !queuedBehindCreate) throw errors.concurrency();
      const repeat = await createOrRepeat({
        insert: () => tx.bindings.insertIfAbsent(record),
        existing: async () => (await tx.bindings.get(req.instanceId, req.bindingId, { lock: true }))!,
        replace: () => tx.bindings.replace(record),
        same: (existing) =>
          existing.planId === record.planId &&
          isDeepStrictEqual(existing.parameters, record.parameters) &&
          existing.appGuid === record.appGuid &&
          isDeepStrictEqual(existing.bindResource ?? {}, record.bindResource ?? {}) &&
          existing.predecessorBindingId === record.predecessorBindingId,
        conflict: `Service binding ${req.bindingId} already exists with different attributes.`,
        finished: (existing) => (existing.state === 'ready' ? ({ status: 200, binding: existing } as const) : undefined),
        active: () => tx.operations.active(req.instanceId, req.bindingId),
        acceptsIncomplete: req.acceptsIncomplete,
        failed: () => tx.operations.failedLatest(req.instanceId, req.bindingId, 'bind'),
        retry: () => tx.bindings.patch(req.instanceId, req.bindingId, { state: lifecycle.bind.during }),
      });
      if (repeat) return repeat;
      rules.checkBind(plan, locked.parameters, req.context);
      rules.checkCluster('bind', plan, req.context);
      // Validated against this replica's catalog; run with the instance's own plan settings (e.g. its server).
      const planSnapshot = rules.snapshotOfInstance(locked, plan);
      return { operation: await this.queueing.enqueue(tx, meta, { instanceId: req.instanceId, bindingId: req.bindingId, kind: 'bind', plan, planSnapshot, request: {} }) };
    });
    return this.queueing.conclude(decision, async || queuedBehindCreate, req.acceptsIncomplete, async () => ({
      status: 201,
      binding: (await this.stores.bindings.get(req.instanceId, req.bindingId))!,
    }));
  }

  async unbind(req: UnbindRequest, meta: RequestMeta): Promise<DeleteAnswer> {
    const rules = this.rules;
    const instance = await this.stores.instances.get(req.instanceId);
    rules.assertServiceOfExisting(req.serviceId, instance);
    rules.assertPlanBelongsTo(req.serviceId, req.planId);
    const binding = await this.stores.bindings.get(req.instanceId, req.bindingId);
    if (!instance || !binding || binding.state === 'deleted') throw errors.gone();
    const plan = rules.instancePlanOrRefuse(instance);
    const async = rules.asyncFor(plan, 'unbind', req.acceptsIncomplete, meta.apiMinor);

    const decision: Decision<DeleteAnswer> = await this.stores.transaction(async (tx) => {
      const lockedInstance = (await tx.instances.get(req.instanceId, { lock: true }))!;
      const locked = await tx.bindings.get(req.instanceId, req.bindingId, { lock: true });
      if (!locked || locked.state === 'deleted') throw errors.gone();
      if (await tx.operations.active(req.instanceId, undefined)) throw errors.concurrency();
      const active = await tx.operations.active(req.instanceId, req.bindingId);
      if (active?.kind === 'unbind') {
        if (req.acceptsIncomplete) return { answer: { status: 202, operation: active.id } };
        throw errors.concurrency();
      }
      const halted = active?.kind === 'bind' ? active.id : undefined;
      if (halted) {
        // OSB §Unbinding: a delete during binding halts the creation and deletes.
        await tx.queue.finish(halted, { state: 'failed', description: 'Binding was halted because an unbind was requested.', failureCause: 'halted' }, undefined);
      }
      await tx.bindings.patch(req.instanceId, req.bindingId, { state: lifecycle.unbind.during });
      const operation = await this.queueing.enqueue(tx, meta, {
        instanceId: req.instanceId,
        bindingId: req.bindingId,
        kind: 'unbind',
        plan,
        planSnapshot: rules.snapshotOfInstance(lockedInstance, plan),
        // `halted` and `synchronous` let last_operation report the halted bind (see lastOperation).
        request: { previousState: stateBeforeDelete(locked.state), ...(halted ? { halted, synchronous: !async } : {}) },
      });
      return { operation, halted };
    });
    return this.queueing.conclude(decision, async, req.acceptsIncomplete, async () => ({ status: 200 }) as const);
  }

  async fetch(instanceId: string, bindingId: string): Promise<FetchedBinding> {
    const binding = await this.stores.bindings.get(instanceId, bindingId);
    if (!binding || binding.state !== 'ready') {
      throw errors.notFound(`Service binding ${bindingId} does not exist or is still being created.`);
    }
    // Only the plan decides, so the instance's secrets are not decrypted (nor needed to be decryptable).
    const instance = await this.stores.instances.planOf(instanceId);
    return { binding, parametersShown: instance !== undefined && this.rules.parametersShown(instance) };
  }

  async lastOperation(instanceId: string, bindingId: string, operationId: string | undefined): Promise<OperationStatus | 'gone'> {
    // Only its state matters here, so nothing is decrypted (a binding sealed under a removed key still answers).
    const bindingState = await this.stores.bindings.stateOf(instanceId, bindingId);
    if (!bindingState) throw errors.notFound(`Service binding ${bindingId} does not exist.`);
    let op: OperationRecord | undefined = operationId ? await this.stores.operations.get(operationId) : await this.stores.operations.latest(instanceId, bindingId);
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
      const halted = op.request.synchronous === true && typeof op.request.halted === 'string' ? await this.stores.operations.get(op.request.halted) : undefined;
      if (!halted) return 'gone';
      op = halted;
    }
    // A binding's operations report neither instance_usable nor update_repeatable (osb/lifecycle.ts).
    return statusOf(op);
  }
}
