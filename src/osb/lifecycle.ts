// The lifecycle of an instance or a binding, in one table: for each kind of
// request, which object it works on, the state a request moves it to, the state
// success sets, the state failure leaves, and which of instance_usable and
// update_repeatable a failure reports. The broker (request time) and the
// operation kinds (completion time) both read it; nothing else decides these.
import type { BindingState, InstanceState, OperationKind, StoredRequest } from './model.ts';

type StateOf<T extends 'instance' | 'binding'> = T extends 'instance' ? InstanceState : BindingState;

interface Phase<T extends 'instance' | 'binding'> {
  target: T;
  /** The state the accepting request sets. */
  during: StateOf<T>;
  /** The state success sets. */
  succeeded: StateOf<T>;
  /** The state failure sets: a fixed one, or (deletes) the one the delete found, recorded as previousState. */
  failed: StateOf<T> | 'previous';
  /** A create the request's own data made fail, and whose work was undone, is as if it had never come. */
  refusedByData?: StateOf<T>;
  /** What a failure reports (OSB: instance_usable on update and deprovision, update_repeatable on update), default true. */
  reports: { instanceUsable: boolean; updateRepeatable: boolean };
}

export const lifecycle = {
  provision: { target: 'instance', during: 'creating', succeeded: 'ready', failed: 'create_failed', refusedByData: 'deleted', reports: { instanceUsable: false, updateRepeatable: false } },
  update: { target: 'instance', during: 'updating', succeeded: 'ready', failed: 'ready', reports: { instanceUsable: true, updateRepeatable: true } },
  deprovision: { target: 'instance', during: 'deleting', succeeded: 'deleted', failed: 'previous', reports: { instanceUsable: true, updateRepeatable: false } },
  bind: { target: 'binding', during: 'creating', succeeded: 'ready', failed: 'create_failed', refusedByData: 'deleted', reports: { instanceUsable: false, updateRepeatable: false } },
  unbind: { target: 'binding', during: 'deleting', succeeded: 'deleted', failed: 'previous', reports: { instanceUsable: false, updateRepeatable: false } },
  // An administrator's repair (src/admin/): the instance is busy while it runs, like an update, and a failed one leaves it as it found it.
  repair: { target: 'instance', during: 'updating', succeeded: 'ready', failed: 'previous', reports: { instanceUsable: true, updateRepeatable: true } },
} as const satisfies {
  provision: Phase<'instance'>;
  update: Phase<'instance'>;
  deprovision: Phase<'instance'>;
  bind: Phase<'binding'>;
  unbind: Phase<'binding'>;
  repair: Phase<'instance'>;
};

/**
 * What a delete records as the state to restore if it fails: the state it found, except that a
 * create it interrupts can only have failed.
 */
export function stateBeforeDelete<S extends InstanceState | BindingState>(current: S): S | 'create_failed' {
  return current === 'creating' ? 'create_failed' : current;
}

/** The state a failed operation leaves its instance or binding in. */
export function stateAfterFailure(kind: OperationKind, request: StoredRequest, causedByRequest: boolean): InstanceState | BindingState {
  const phase: Phase<'instance'> | Phase<'binding'> = lifecycle[kind];
  if (causedByRequest && phase.refusedByData) return phase.refusedByData;
  if (phase.failed !== 'previous') return phase.failed;
  return ('previousState' in request ? request.previousState : undefined) ?? 'ready';
}

/**
 * The instance_usable / update_repeatable a failed operation of `kind` reports: the recorded values
 * where the kind reports them (true when none was recorded), and nothing for the other kinds.
 */
export function reportedUsability(
  kind: OperationKind,
  recorded: { instanceUsable?: boolean | undefined; updateRepeatable?: boolean | undefined },
): { instanceUsable?: boolean; updateRepeatable?: boolean } {
  const { reports } = lifecycle[kind];
  return {
    ...(reports.instanceUsable ? { instanceUsable: recorded.instanceUsable ?? true } : {}),
    ...(reports.updateRepeatable ? { updateRepeatable: recorded.updateRepeatable ?? true } : {}),
  };
}
