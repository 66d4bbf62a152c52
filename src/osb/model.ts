// The words every layer shares: what an instance, a binding and an operation
// can be, and what an accepted request hands to the worker that runs it.
// Imports nothing from src/ (see docs/architecture.md).

export type JsonObject = Record<string, unknown>;

/** `repair` is no OSB request: an administrator's (src/admin/), re-running the provisioner's idempotent steps. */
export type OperationKind = 'provision' | 'update' | 'deprovision' | 'bind' | 'unbind' | 'repair';

export type InstanceState = 'creating' | 'ready' | 'create_failed' | 'updating' | 'deleting' | 'deleted';
export type BindingState = 'creating' | 'ready' | 'create_failed' | 'deleting' | 'deleted';
export type OperationState = 'in progress' | 'succeeded' | 'failed';

/**
 * What a request stores with its operation (`operations.request_enc`, sealed) for the worker, per kind.
 * Every request records its plan id; the rest is what the worker or a later request needs to know.
 */
export interface OperationRequests {
  provision: { planId: string };
  update: {
    planId: string;
    /** The merged parameters the instance will have. */
    parameters: JsonObject;
    previousPlanId: string;
    previousParameters: JsonObject;
    maintenanceVersion: string | undefined;
    context?: JsonObject;
  };
  deprovision: {
    planId: string;
    /** What a failed delete restores (lifecycle.ts). */
    previousState: InstanceState;
    /** The provision this delete halted. */
    halted?: string;
  };
  bind: { planId: string };
  unbind: {
    planId: string;
    previousState: BindingState;
    /** The bind this unbind halted. */
    halted?: string;
    /** Whether the halting unbind was synchronous: then last_operation reports the halted bind (nobody polls the unbind). */
    synchronous?: boolean;
  };
  repair: {
    planId: string;
    /** What the instance goes back to when the repair fails (it was usable or not before; a repair changes nothing of that). */
    previousState: InstanceState;
  };
}

/**
 * A stored request as read back: rows written by older versions, or one that could not be
 * decrypted (then empty), may lack fields, so every field is optional on the way out.
 */
export type StoredRequest<K extends OperationKind = OperationKind> = Partial<OperationRequests[K]>;
