// The administrator's escape hatches, over the same stores and operation engine the broker uses:
// retry a failed operation, force-fail a stuck one, purge an instance, repair one. Each runs in one
// transaction under the instance's row lock (the order requests and workers lock in) and writes an
// audit row with who (the admin token's name) and why (the reason the API requires).
import { randomUUID } from 'node:crypto';
import type { Catalog } from '../catalog/catalog.ts';
import { lifecycle, reportedUsability } from '../osb/lifecycle.ts';
import type { BindingState, InstanceState } from '../osb/model.ts';
import { onFailure } from '../operations/kinds.ts';
import type { OperationEngine } from '../operations/worker.ts';
import type { OperationRecord } from '../store/operations.ts';
import type { Stores, TableStores } from '../store/unit-of-work.ts';

/** An admin request that cannot be done as asked: the status, a code and a sentence saying what to do instead. */
export class AdminError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, description: string) {
    super(description);
    this.status = status;
    this.code = code;
  }
}

/** Who asks, and why: both recorded. */
export interface Actor {
  name: string;
  reason: string;
}

export interface ActionResult {
  /** The operation the action queued (retry, repair) or ended (fail). */
  operationId?: string;
  /** Operations a purge ended. */
  endedOperations?: string[];
  instanceId: string;
  bindingId?: string | undefined;
  description: string;
}

export class AdminService {
  readonly #stores: Stores;
  readonly #engine: OperationEngine;
  readonly #catalog: Catalog;

  constructor(deps: { stores: Stores; engine: OperationEngine; catalog: Catalog }) {
    this.#stores = deps.stores;
    this.#engine = deps.engine;
    this.#catalog = deps.catalog;
  }

  /** Queues a new operation doing what the failed one was asked to do (same request, same plan), as the latest of its instance or binding. */
  async retry(operationId: string, actor: Actor): Promise<ActionResult> {
    const result = await this.#stores.transaction(async (tx) => {
      const op = await this.#lockedOperation(tx, operationId);
      if (op.state !== 'failed') {
        throw new AdminError(409, 'NotFailed', `Operation ${op.id} is ${op.state}; only a failed operation can be retried${op.state === 'in progress' ? ' (force-fail it first if it is stuck)' : ''}.`);
      }
      if (op.unreadableRequest !== undefined) {
        throw new AdminError(409, 'UnreadableRequest', `Operation ${op.id}'s stored request cannot be decrypted (${op.unreadableRequest}); it cannot be retried. Configure the key it was sealed with, or repair or purge the instance.`);
      }
      const latest = await tx.operations.latest(op.instanceId, op.bindingId);
      if (latest && latest.id !== op.id) {
        throw new AdminError(409, 'Superseded', `Operation ${op.id} is not the latest of its ${op.bindingId ? 'binding' : 'instance'}: ${latest.kind} ${latest.id} (${latest.state}) came after it; retry that one if it failed.`);
      }
      await this.#refuseBusy(tx, op.instanceId, op.bindingId);
      const target = lifecycle[op.kind].target;
      if (target === 'instance') {
        if ((await tx.instances.stateOf(op.instanceId)) === 'deleted') throw deletedError(op.instanceId);
      } else if ((await tx.bindings.stateOf(op.instanceId, op.bindingId!)) === 'deleted') {
        throw new AdminError(409, 'Deleted', `Binding ${op.bindingId} is deleted; a platform creates it again with a new bind, not a retry.`);
      }
      const id = randomUUID();
      const deadlineAt = op.deadlineAt ? new Date(Date.now() + (op.deadlineAt.getTime() - op.createdAt.getTime())) : undefined;
      await tx.operations.create({
        id,
        instanceId: op.instanceId,
        bindingId: op.bindingId,
        kind: op.kind,
        description: `Retrying ${op.kind} (an administrator's retry of operation ${op.id})`,
        request: op.request as never,
        deadlineAt,
        requestIdentity: op.requestIdentity,
        planSnapshot: op.planSnapshot,
      });
      if (target === 'instance') await tx.instances.patch(op.instanceId, { state: lifecycle[op.kind].during as InstanceState });
      else await tx.bindings.patch(op.instanceId, op.bindingId!, { state: lifecycle[op.kind].during as BindingState });
      await audit(tx, actor, 'admin-retry', { operationId: id, instanceId: op.instanceId, bindingId: op.bindingId }, `retries ${op.id}`);
      return { operationId: id, instanceId: op.instanceId, bindingId: op.bindingId, description: `Queued ${op.kind} operation ${id}, retrying ${op.id}.` };
    });
    this.#engine.notify();
    return result;
  }

  /**
   * Ends an unfinished operation as failed, with a description naming the administrator and the reason, and
   * leaves its instance or binding as a failure of its kind does. A worker still running it loses it: its
   * lease renewal, checkpoints and outcome all require the operation unfinished (store/queue.ts), so it
   * stops and cannot overwrite this.
   */
  async fail(operationId: string, actor: Actor): Promise<ActionResult> {
    const result = await this.#stores.transaction(async (tx) => {
      const op = await this.#lockedOperation(tx, operationId);
      if (op.finishedAt) throw new AdminError(409, 'AlreadyEnded', `Operation ${op.id} already ended (${op.state}): ${op.description}`);
      const description = `Failed by an administrator (${actor.name}): ${actor.reason}`;
      await tx.queue.finish(op.id, { state: 'failed', description, ...reportedUsability(op.kind, {}) }, undefined);
      await onFailure(tx, op, false);
      await audit(tx, actor, 'admin-fail', { operationId: op.id, instanceId: op.instanceId, bindingId: op.bindingId }, 'failed');
      return { operationId: op.id, instanceId: op.instanceId, bindingId: op.bindingId, description };
    });
    // Stops the worker running it now (here, or on another replica through the relay), and wakes waiting requests.
    this.#engine.operationEnded(operationId);
    return result;
  }

  /**
   * Forgets an instance and its bindings without calling the provisioner (for when what it made is gone, or
   * will be removed by hand): its unfinished operations end failed, it and its bindings become deleted (their
   * secrets erased). The platform's next request about it is answered 410 Gone (delete) or 404.
   */
  async purge(instanceId: string, actor: Actor): Promise<ActionResult> {
    const ended: string[] = [];
    const result = await this.#stores.transaction(async (tx) => {
      await tx.instances.lock(instanceId);
      const state = await tx.instances.stateOf(instanceId);
      if (state === undefined) throw notFound(instanceId);
      if (state === 'deleted') throw deletedError(instanceId);
      for (const id of await tx.operations.unfinishedOf(instanceId)) {
        const op = (await tx.operations.get(id))!;
        await tx.queue.finish(id, { state: 'failed', description: `Ended: the instance was purged by an administrator (${actor.name}): ${actor.reason}`, ...reportedUsability(op.kind, {}) }, undefined);
        ended.push(id);
      }
      await tx.instances.patch(instanceId, { state: 'deleted' });
      await tx.bindings.deleteAllOf(instanceId);
      await audit(tx, actor, 'admin-purge', { operationId: undefined, instanceId, bindingId: undefined }, 'purged');
      return {
        instanceId,
        endedOperations: ended,
        description: `Instance ${instanceId} and its bindings are forgotten (nothing was removed from the backend${ended.length ? `; ended ${ended.length} unfinished operation(s)` : ''}).`,
      };
    });
    for (const id of ended) this.#engine.operationEnded(id);
    return result;
  }

  /** Queues a repair (a durable operation of its own): the provisioner's create steps run again over the instance and its ready bindings. */
  async repair(instanceId: string, actor: Actor): Promise<ActionResult> {
    const result = await this.#stores.transaction(async (tx) => {
      await tx.instances.lock(instanceId);
      const state = await tx.instances.stateOf(instanceId);
      if (state === undefined) throw notFound(instanceId);
      if (state === 'deleted') throw deletedError(instanceId);
      if (state !== 'ready') {
        throw new AdminError(409, 'NotReady', `Instance ${instanceId} is ${state.replace('_', ' ')}; only a ready instance can be repaired (retry its failed operation instead, or force-fail a stuck one first).`);
      }
      await this.#refuseBusy(tx, instanceId, undefined);
      const recorded = (await tx.instances.planOf(instanceId))!;
      const plan = this.#catalog.plan(recorded.planId);
      if (!recorded.planSnapshot && !plan) {
        throw new AdminError(409, 'UnknownPlan', `Instance ${instanceId}'s plan ${recorded.planId} is in neither its record nor this catalog; it cannot be repaired.`);
      }
      const seconds = recorded.planSnapshot?.maximumPollingDurationSeconds ?? plan?.maximumPollingDurationSeconds;
      const id = randomUUID();
      await tx.operations.create({
        id,
        instanceId,
        bindingId: undefined,
        kind: 'repair',
        description: `Repair requested by ${actor.name}`,
        request: { planId: recorded.planId, previousState: state },
        deadlineAt: seconds ? new Date(Date.now() + seconds * 1000) : undefined,
        requestIdentity: undefined,
        planSnapshot: recorded.planSnapshot,
      });
      await tx.instances.patch(instanceId, { state: lifecycle.repair.during });
      await audit(tx, actor, 'admin-repair', { operationId: id, instanceId, bindingId: undefined }, 'accepted');
      return { operationId: id, instanceId, description: `Queued repair operation ${id}.` };
    });
    this.#engine.notify();
    return result;
  }

  async #lockedOperation(tx: TableStores, operationId: string): Promise<OperationRecord> {
    const peek = await tx.operations.status({ id: operationId });
    if (!peek) throw new AdminError(404, 'NotFound', `There is no operation ${operationId}; list operations with GET /admin/v1/operations.`);
    // The instance row first, as requests and workers lock, then read the operation under it.
    await tx.instances.lock(peek.instanceId);
    return (await tx.operations.get(operationId))!;
  }

  async #refuseBusy(tx: TableStores, instanceId: string, bindingId: string | undefined): Promise<void> {
    const active = (await tx.operations.active(instanceId, undefined)) ?? (bindingId ? await tx.operations.active(instanceId, bindingId) : undefined);
    if (active) {
      throw new AdminError(409, 'Busy', `${active.kind} operation ${active.id} of instance ${instanceId} is still in progress; wait for it, or force-fail it if it is stuck.`);
    }
  }
}

const notFound = (id: string) => new AdminError(404, 'NotFound', `There is no instance ${id}; list instances with GET /admin/v1/instances.`);
const deletedError = (id: string) => new AdminError(409, 'Deleted', `Instance ${id} is deleted already; nothing to do.`);

async function audit(
  tx: TableStores,
  actor: Actor,
  action: string,
  target: { operationId: string | undefined; instanceId: string; bindingId: string | undefined },
  outcome: string,
): Promise<void> {
  await tx.audit.record({ ...target, action, platform: 'admin', originatingIdentity: undefined, requestIdentity: undefined, outcome, actor: actor.name, reason: actor.reason });
}
