// What each kind of operation does, end to end: what it asks the provisioner
// (and the binding hooks), and what its success writes. What its failure
// writes is the lifecycle table's (osb/lifecycle.ts), applied by onFailure.
// Reading what "deprovision" does is reading one entry here.
import { snapshotOf } from '../catalog/plan-snapshot.ts';
import { PermanentError } from '../osb/errors.ts';
import { lifecycle, stateAfterFailure } from '../osb/lifecycle.ts';
import type { BindingState, InstanceState, OperationKind } from '../osb/model.ts';
import type { InstanceResult } from '../provisioners/provisioner.ts';
import type { OperationRecord } from '../store/operations.ts';
import type { TableStores } from '../store/unit-of-work.ts';
import { boundedInstanceMetadata } from './instance-metadata.ts';
import type { Run } from './run.ts';

/** The write that records a successful operation, in the transaction that ends it. */
export type Success = (tx: TableStores) => Promise<unknown>;

/** What a kind does, given the operation prepared to run (run.ts). */
type Kind = (run: Run) => Promise<Success>;

/** The past tense an operation that succeeded reports. */
export const pastTense: Record<OperationKind, string> = {
  provision: 'Provisioned',
  update: 'Updated',
  deprovision: 'Deprovisioned',
  bind: 'Bound',
  unbind: 'Unbound',
  repair: 'Repaired',
};

export const kinds: Record<OperationKind, Kind> = {
  async provision(run) {
    const op = run.instanceOperation();
    await op.progress('Provisioning');
    const result: InstanceResult | void = await run.create(
      () => run.provisioner.provision(op),
      () => run.provisioner.deprovision(op),
    );
    const metadata = boundedInstanceMetadata(result?.metadata, op.log);
    return (tx) => tx.instances.patch(run.instance.id, { state: lifecycle.provision.succeeded, dashboardUrl: result?.dashboardUrl, metadata });
  },

  async update(run) {
    const request = run.op.kind === 'update' ? run.op.request : {};
    const op = { ...run.instanceOperation(), previous: { plan: run.previousPlan(request.previousPlanId), parameters: request.previousParameters ?? run.instance.parameters } };
    await op.progress('Updating');
    const result: InstanceResult | void = await run.provisioner.update(op);
    const metadata = boundedInstanceMetadata(result?.metadata, op.log);
    return async (tx) => {
      // In the transaction that records the update: no GET between them serves the old credentials as current.
      if (result?.credentialsChanged) await tx.bindings.markStale(run.instance.id, result.credentialsChanged);
      await tx.instances.patch(run.instance.id, {
        state: lifecycle.update.succeeded,
        planId: run.plan.id,
        // An update queued before plans were recorded has none: record the plan it ran with.
        planSnapshot: run.op.planSnapshot ?? snapshotOf(run.plan),
        parameters: run.parameters,
        maintenanceVersion: request.maintenanceVersion ?? run.plan.maintenanceVersion,
        context: request.context ?? run.instance.context,
        ...(result?.dashboardUrl ? { dashboardUrl: result.dashboardUrl } : {}),
        ...(metadata ? { metadata } : {}),
      });
    };
  },

  async deprovision(run) {
    const op = run.instanceOperation();
    await op.progress('Removing bindings');
    for (const binding of await run.liveBindings()) {
      const bindingOp = run.bindingOperation(binding);
      await run.hooks.beforeUnbind?.(bindingOp);
      await run.provisioner.unbind(bindingOp);
    }
    await op.progress('Deprovisioning');
    await run.provisioner.deprovision(op);
    return async (tx) => {
      await tx.instances.patch(run.instance.id, { state: lifecycle.deprovision.succeeded });
      await tx.bindings.deleteAllOf(run.instance.id);
    };
  },

  async bind(run) {
    // A bind queued while its instance was being provisioned runs after the provision ended.
    if (run.instance.state !== 'ready') {
      throw new PermanentError(
        run.instance.state === 'create_failed'
          ? `Service instance ${run.instance.id} failed to provision, so the binding was not created; see the instance's last operation for why.`
          : `Service instance ${run.instance.id} is ${run.instance.state.replace('_', ' ')}, so the binding was not created.`,
      );
    }
    const binding = await run.binding();
    const op = run.bindingOperation(binding);
    await op.progress('Creating credentials');
    const result = await run.create(
      async () => {
        const created = await run.provisioner.bind(op);
        await run.hooks.afterBind?.(op, created.credentials);
        return created;
      },
      async () => {
        await run.hooks.beforeUnbind?.(op);
        await run.provisioner.unbind(op);
      },
    );
    return (tx) =>
      tx.bindings.patch(run.instance.id, binding.id, {
        state: lifecycle.bind.succeeded,
        bindResponse: {
          credentials: result.credentials,
          syslog_drain_url: result.syslogDrainUrl,
          route_service_url: result.routeServiceUrl,
          volume_mounts: result.volumeMounts,
        },
        endpoints: result.endpoints,
        metadata: result.metadata,
      });
  },

  async unbind(run) {
    const binding = await run.binding();
    const op = run.bindingOperation(binding);
    await op.progress('Revoking credentials');
    await run.hooks.beforeUnbind?.(op);
    await run.provisioner.unbind(op);
    return (tx) => tx.bindings.patch(run.instance.id, binding.id, { state: lifecycle.unbind.succeeded, bindResponse: undefined });
  },

  // An administrator's repair (src/admin/): the provisioner's create steps look at what exists and make only
  // what is missing (provisioner.ts), so running them again over a ready instance re-creates a dropped
  // database, role or release and changes nothing else. Its ready bindings' logins (and binding Secrets) are
  // re-made the same way, from their checkpoints; credentials that expired stay expired.
  async repair(run) {
    const op = run.instanceOperation();
    await op.progress('Repairing: re-running provisioning');
    const result: InstanceResult | void = await run.provisioner.provision(op);
    const now = Date.now();
    for (const binding of await run.liveBindings()) {
      if (binding.state !== 'ready') continue;
      const expiresAt = typeof binding.metadata?.expires_at === 'string' ? Date.parse(binding.metadata.expires_at) : NaN;
      if (expiresAt <= now) continue;
      const bindingOp = run.bindingOperation(binding);
      await op.progress(`Repairing: re-running binding ${binding.id}`);
      const created = await run.provisioner.bind(bindingOp);
      await run.hooks.afterBind?.(bindingOp, created.credentials);
    }
    return (tx) =>
      tx.instances.patch(run.instance.id, {
        state: lifecycle.repair.succeeded,
        ...(result?.dashboardUrl ? { dashboardUrl: result.dashboardUrl } : {}),
        ...(result?.metadata ? { metadata: result.metadata } : {}),
      });
  },
};

/** Records what a failed operation leaves its instance or binding in (osb/lifecycle.ts). */
export async function onFailure(tx: TableStores, op: OperationRecord, causedByRequest: boolean): Promise<void> {
  const state = stateAfterFailure(op.kind, op.request, causedByRequest);
  if (lifecycle[op.kind].target === 'instance') await tx.instances.patch(op.instanceId, { state: state as InstanceState });
  else await tx.bindings.patch(op.instanceId, op.bindingId!, { state: state as BindingState });
}
