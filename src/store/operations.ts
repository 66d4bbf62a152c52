// The operations table as the OSB layer sees it: creating an operation with
// its sealed request, and the reads requests need (get, statusOf, active,
// latest). The worker's side of the same table (claim, lease, outcome) is the
// queue (queue.ts).
import type { OperationKind, OperationRequests, OperationState, StoredRequest } from '../osb/model.ts';
import type { PlanSnapshot } from '../catalog/plan-snapshot.ts';
import { UndecryptableError, type SealedField, type SecretBox } from '../secret-box.ts';
import { opt, preparedRows, Table, type Db, type PreparedStatement } from './table.ts';

interface OperationFields {
  id: string;
  instanceId: string;
  bindingId: string | undefined;
  state: OperationState;
  description: string;
  instanceUsable: boolean | undefined;
  updateRepeatable: boolean | undefined;
  /** Why it failed, where that decides the answer: the request's own data (see PermanentError.causedByRequest), or halted by the platform's delete. */
  failureCause: FailureCause | undefined;
  leaseOwner: string | undefined;
  leaseExpiresAt: Date | undefined;
  attempts: number;
  deadlineAt: Date | undefined;
  requestIdentity: string | undefined;
  createdAt: Date;
  finishedAt: Date | undefined;
  /** Why the stored request could not be decrypted (then `request` is empty): the operation can only fail. */
  unreadableRequest?: string;
  /** The plan the operation runs with, recorded when it was accepted. */
  planSnapshot: PlanSnapshot | undefined;
  /** Unfinished and nobody is working on it: its worker handed it back or stopped renewing its lease (only from get/latest/status). */
  awaitingResumption: boolean;
}

/** An operation row; `request` is typed by its kind (osb/model.ts). */
export type OperationRecord = { [K in OperationKind]: OperationFields & { kind: K; request: StoredRequest<K> } }[OperationKind];

/** What status() reads: how an operation stands, for last_operation and for a request waiting on it. */
export type OperationStatusRecord = Pick<
  OperationRecord,
  'id' | 'instanceId' | 'bindingId' | 'kind' | 'state' | 'description' | 'instanceUsable' | 'updateRepeatable' | 'failureCause' | 'deadlineAt' | 'createdAt' | 'finishedAt' | 'awaitingResumption'
>;

export const operationCell = (id: string): SealedField => ({ table: 'operations', row: [id], column: 'request_enc' });

export interface NewOperation {
  id: string;
  instanceId: string;
  bindingId: string | undefined;
  kind: OperationKind;
  description: string;
  request: OperationRequests[OperationKind];
  deadlineAt: Date | undefined;
  requestIdentity: string | undefined;
  planSnapshot: PlanSnapshot | undefined;
}

export interface Outcome {
  state: 'succeeded' | 'failed';
  description: string;
  instanceUsable?: boolean;
  updateRepeatable?: boolean;
  failureCause?: FailureCause;
}

/** `request`: the request's own data made it fail (answered 400); `halted`: the platform's own delete halted it (answered 422). */
export type FailureCause = 'request' | 'halted';

// In the database's clock, like every lease comparison. A worker renews every quarter of the configured
// lease (BERTH_LEASE_SECONDS), also when it shortens the lease to the operation's deadline, so half a lease
// without a renewal means it stopped: it died or lost the database, and the operation waits for the lease to
// run out and another worker to take it. (Judged by the configured length, not by lease_expires_at -
// lease_renewed_at, which a lease cut short near the deadline makes smaller than the renewal interval.)
// A retry waiting out its backoff (next_attempt_at in the future) already says so in its description.
const AWAITING_RESUMPTION = `(finished_at IS NULL AND attempts > 0 AND next_attempt_at <= now()
  AND (lease_expires_at IS NULL OR lease_expires_at <= now()
       OR lease_renewed_at < now() - (? * interval '1 millisecond'))) AS awaiting_resumption`;

// What last_operation and a waiting request read (OperationStatusRecord): no request, no lease details
// beyond the verdict. Every column read and every timestamp parsed is a measurable share of a poll.
const STATUS_SELECT = `SELECT id, instance_id, binding_id, kind, state, description, instance_usable, update_repeatable, failure_cause,
  deadline_at, created_at, finished_at, ${AWAITING_RESUMPTION.replace('?', '$1')} FROM operations`;
export const STATUS_BY_ID: PreparedStatement = { name: 'berth_status_by_id', text: `${STATUS_SELECT} WHERE id = $2 LIMIT 1` };
export const STATUS_LATEST_OF_INSTANCE: PreparedStatement = {
  name: 'berth_status_latest_of_instance',
  text: `${STATUS_SELECT} WHERE instance_id = $2 AND binding_id IS NULL ORDER BY created_at DESC, id DESC LIMIT 1`,
};
const STATUS_LATEST_OF_BINDING: PreparedStatement = {
  name: 'berth_status_latest_of_binding',
  text: `${STATUS_SELECT} WHERE instance_id = $2 AND binding_id = $3 ORDER BY created_at DESC, id DESC LIMIT 1`,
};

/** Maps operation rows, decrypting the request, and says whether an operation waits for resumption. */
export class OperationRows extends Table {
  protected readonly leaseMs: number;
  /** `leaseMs`: the configured lease (BERTH_LEASE_SECONDS), by which a stopped worker is recognised. */
  constructor(db: Db, box: SecretBox, leaseMs: number) {
    super(db, box);
    this.leaseMs = leaseMs;
  }

  protected awaitingResumption() {
    return this.db.raw(AWAITING_RESUMPTION, [this.leaseMs / 2]);
  }

  protected row(r: Record<string, any>): OperationRecord {
    // An undecryptable request (e.g. sealed under a removed key) must not stop
    // the claim loop or requests: the record says why, and the engine fails it.
    let request: StoredRequest = {};
    let unreadableRequest: string | undefined;
    try {
      request = (r.request_enc == null ? undefined : this.box.open<StoredRequest>(r.request_enc, operationCell(r.id))) ?? {};
    } catch (err) {
      if (!(err instanceof UndecryptableError)) throw err;
      unreadableRequest = err.message;
    }
    return {
      ...statusOfRow(r),
      request,
      leaseOwner: opt(r.lease_owner),
      leaseExpiresAt: opt(r.lease_expires_at),
      attempts: r.attempts,
      requestIdentity: opt(r.request_identity),
      ...(unreadableRequest === undefined ? {} : { unreadableRequest }),
      planSnapshot: opt(r.plan_snapshot ?? null),
    } as OperationRecord;
  }
}

/** The fields last_operation needs, from a row of either query. */
function statusOfRow(r: Record<string, any>): OperationStatusRecord {
  return {
    id: r.id,
    instanceId: r.instance_id,
    bindingId: opt(r.binding_id),
    kind: r.kind,
    state: r.state,
    description: r.description,
    instanceUsable: opt(r.instance_usable),
    updateRepeatable: opt(r.update_repeatable),
    failureCause: opt(r.failure_cause ?? null),
    deadlineAt: opt(r.deadline_at),
    createdAt: r.created_at,
    finishedAt: opt(r.finished_at),
    awaitingResumption: r.awaiting_resumption === true,
  } as OperationStatusRecord;
}

export class OperationStore extends OperationRows {
  async create(op: NewOperation): Promise<void> {
    await this.db('operations').insert({
      id: op.id,
      instance_id: op.instanceId,
      binding_id: op.bindingId ?? null,
      kind: op.kind,
      state: 'in progress',
      description: op.description,
      request_enc: this.box.seal(op.request, operationCell(op.id)),
      deadline_at: op.deadlineAt ?? null,
      request_identity: op.requestIdentity ?? null,
      plan_snapshot: op.planSnapshot === undefined ? null : JSON.stringify(op.planSnapshot),
    });
  }

  async get(id: string): Promise<OperationRecord | undefined> {
    const r = await this.db('operations').where({ id }).first('*', this.awaitingResumption());
    return r ? this.row(r) : undefined;
  }

  /** What last_operation needs, without decrypting the request: one indexed read, a prepared statement. */
  async status(query: { id: string } | { instanceId: string; bindingId: string | undefined }): Promise<OperationStatusRecord | undefined> {
    const halfLease = this.leaseMs / 2;
    const rows =
      'id' in query
        ? await preparedRows(this.db, STATUS_BY_ID, [halfLease, query.id])
        : query.bindingId === undefined
          ? await preparedRows(this.db, STATUS_LATEST_OF_INSTANCE, [halfLease, query.instanceId])
          : await preparedRows(this.db, STATUS_LATEST_OF_BINDING, [halfLease, query.instanceId, query.bindingId]);
    const r = rows[0];
    return r ? statusOfRow(r) : undefined;
  }

  /** The unfinished operation on the instance itself (bindingId undefined) or on one binding. */
  async active(instanceId: string, bindingId: string | undefined): Promise<OperationRecord | undefined> {
    const r = await this.db('operations')
      .where({ instance_id: instanceId, binding_id: bindingId ?? null })
      .whereNull('finished_at')
      .first();
    return r ? this.row(r) : undefined;
  }

  async activeBindingOperations(instanceId: string): Promise<Array<{ id: string; bindingId: string }>> {
    const rows = await this.db('operations').where({ instance_id: instanceId }).whereNotNull('binding_id').whereNull('finished_at').select('id', 'binding_id');
    return rows.map((r: { id: string; binding_id: string }) => ({ id: r.id, bindingId: r.binding_id }));
  }

  async anyActiveBindingOperation(instanceId: string): Promise<boolean> {
    const r = await this.db('operations').where({ instance_id: instanceId }).whereNotNull('binding_id').whereNull('finished_at').first('id');
    return r !== undefined;
  }

  async latest(instanceId: string, bindingId: string | undefined): Promise<OperationRecord | undefined> {
    const r = await this.db('operations')
      .where({ instance_id: instanceId, binding_id: bindingId ?? null })
      .orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }])
      .first('*', this.awaitingResumption());
    return r ? this.row(r) : undefined;
  }

  /** The latest operation on the instance (bindingId undefined) or a binding, when it is a failed `kind`. */
  async failedLatest(instanceId: string, bindingId: string | undefined, kind: OperationKind): Promise<OperationRecord | undefined> {
    const last = await this.db('operations')
      .where({ instance_id: instanceId, binding_id: bindingId ?? null })
      .orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }])
      .first('id', 'kind', 'state', 'superseded_at');
    if (!last || last.kind !== kind || last.state !== 'failed' || last.superseded_at !== null) return undefined;
    return this.get(last.id);
  }

  /** An update of the instance: its failed operations no longer answer identical repeats (failedLatest). */
  async supersedeFailures(instanceId: string): Promise<void> {
    await this.db('operations').where({ instance_id: instanceId, binding_id: null, state: 'failed' }).whereNull('superseded_at').update({ superseded_at: this.db.fn.now() });
  }

  /** Every unfinished operation of the instance, its bindings' too (an administrator's purge ends them). */
  async unfinishedOf(instanceId: string): Promise<string[]> {
    return this.db('operations').where({ instance_id: instanceId }).whereNull('finished_at').orderBy('created_at').pluck('id');
  }

  async countByState(): Promise<Array<{ kind: string; state: string; n: number }>> {
    return (await this.db('operations').select('kind', 'state').count({ n: '*' }).groupBy('kind', 'state')) as any;
  }

  /** The instance's and its bindings' operations, newest first, without their requests (the dashboard's history). */
  async historyOf(instanceId: string, limit: number): Promise<OperationStatusRecord[]> {
    const rows = await this.db('operations')
      .where({ instance_id: instanceId })
      .orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }])
      .limit(limit)
      .select('id', 'instance_id', 'binding_id', 'kind', 'state', 'description', 'instance_usable', 'update_repeatable', 'failure_cause', 'deadline_at', 'created_at', 'finished_at', this.awaitingResumption());
    return rows.map(statusOfRow);
  }

  /** Which of `ids` have ended (one query, however many). */
  async endedAmong(ids: string[]): Promise<string[]> {
    return this.db('operations').whereRaw('id = ANY(?)', [ids]).whereNotNull('finished_at').pluck('id');
  }
}
