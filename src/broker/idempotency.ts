// The skeleton provision and bind share (OSB: a repeated create is answered by
// what exists): insert if absent; a deleted row is replaced; a row with other
// attributes is 409; a finished identical create answers 200; one still in
// progress answers 202 with its operation (or 422 to a platform that cannot
// poll); a failed identical create answers with its failed operation until the
// platform deletes it.
import { errors } from '../osb/errors.ts';
import type { BindingState, InstanceState } from '../osb/model.ts';
import type { OperationRecord } from '../store/operations.ts';
import { failureOf } from './queueing.ts';
import type { Accepted } from './types.ts';

export interface CreateOrRepeat<T, A> {
  /** Inserts the new row unless one exists; true when it was inserted. */
  insert(): Promise<boolean>;
  /** The existing row, locked. */
  existing(): Promise<T>;
  /** Overwrites a deleted row with the new one. */
  replace(): Promise<void>;
  /** Whether the existing row has the request's attributes. */
  same(existing: T): boolean;
  /** The 409's description. */
  conflict: string;
  /** The answer of a finished identical create, if it finished. */
  finished(existing: T): A | undefined;
  /** The create's unfinished operation. */
  active(): Promise<OperationRecord | undefined>;
  acceptsIncomplete: boolean;
  /** The create's operation, when it is the latest one and it failed. */
  failed(): Promise<OperationRecord | undefined>;
  /** Arms a failed create for another try. */
  retry(): Promise<void>;
}

/** `{ answer }` for a repeat answered by what exists; undefined when the create goes ahead (queue it). */
export async function createOrRepeat<T extends { state: InstanceState | BindingState }, A>(c: CreateOrRepeat<T, A>): Promise<{ answer: A | Accepted } | undefined> {
  if (await c.insert()) return undefined;
  const existing = await c.existing();
  if (existing.state === 'deleted') {
    await c.replace();
    return undefined;
  }
  if (!c.same(existing)) throw errors.conflict(c.conflict);
  const done = c.finished(existing);
  if (done !== undefined) return { answer: done };
  if (existing.state === 'creating') {
    const active = await c.active();
    if (active && c.acceptsIncomplete) return { answer: { status: 202, operation: active.id } };
    throw errors.concurrency();
  }
  if (existing.state === 'deleting') throw errors.concurrency();
  // create_failed: the failure stands until the platform deletes what failed (OSB: a platform
  // cleans up a failed create). Trying again on an identical repeat hid it from platforms that
  // re-send the PUT on every reconcile and poll once after each (Korifi never saw `failed`).
  const failed = await c.failed();
  if (failed) {
    if (c.acceptsIncomplete) return { answer: { status: 202, operation: failed.id } };
    throw failureOf(failed);
  }
  // A failed create whose operation is no longer recorded: try again (the provisioner converges on what exists).
  await c.retry();
  return undefined;
}
