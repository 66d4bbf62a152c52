// Persistence for instances, bindings, operations and the audit trail. Every
// method takes an optional transaction so callers can group changes
// atomically; secrets are sealed by the SecretBox before they reach a column.
import type { Knex } from 'knex';
import { UndecryptableError, type SealedField, type SecretBox } from '../secret-box.ts';
import type { BindingState, InstanceState, JsonObject, OperationKind, OperationRequests, OperationState, StoredRequest } from '../osb/model.ts';
import type { PlanSnapshot } from '../catalog/plan-snapshot.ts';

export type Db = Knex | Knex.Transaction;


export interface InstanceRecord {
  id: string;
  serviceId: string;
  planId: string;
  state: InstanceState;
  parameters: JsonObject;
  context: JsonObject | undefined;
  organizationGuid: string | undefined;
  spaceGuid: string | undefined;
  maintenanceVersion: string | undefined;
  dashboardUrl: string | undefined;
  metadata: JsonObject | undefined;
  provisionerState: JsonObject;
  /** The plan the instance was provisioned with or last updated to; undefined for rows older than the record. */
  planSnapshot: PlanSnapshot | undefined;
}

export interface BindingRecord {
  instanceId: string;
  id: string;
  serviceId: string;
  planId: string;
  state: BindingState;
  parameters: JsonObject;
  context: JsonObject | undefined;
  bindResource: JsonObject | undefined;
  appGuid: string | undefined;
  predecessorBindingId: string | undefined;
  credentials: JsonObject | undefined;
  endpoints: unknown[] | undefined;
  metadata: JsonObject | undefined;
  provisionerState: JsonObject;
}

interface OperationFields {
  id: string;
  instanceId: string;
  bindingId: string | undefined;
  state: OperationState;
  description: string;
  instanceUsable: boolean | undefined;
  updateRepeatable: boolean | undefined;
  /** Set on a failure the request's own data caused (see PermanentError.causedByRequest). */
  failureCause: 'request' | undefined;
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

const opt = <T>(v: T | null): T | undefined => (v === null ? undefined : v);

// Every ciphertext is sealed for its cell (see secret-box.ts): these name the cells.
const instanceField = (id: string, column: string): SealedField => ({ table: 'instances', row: [id], column });
const bindingField = (instanceId: string, id: string, column: string): SealedField => ({ table: 'bindings', row: [instanceId, id], column });
const operationField = (id: string): SealedField => ({ table: 'operations', row: [id], column: 'request_enc' });

/** Secret columns of a binding, erased when it is deleted. */
const ERASED_BINDING_SECRETS = { parameters_enc: null, credentials_enc: null, provisioner_state_enc: null };

export class InstanceStore {
  readonly #knex: Knex;
  readonly #box: SecretBox;
  constructor(knex: Knex, box: SecretBox) {
    this.#knex = knex;
    this.#box = box;
  }

  #row(r: Record<string, any>): InstanceRecord {
    return {
      id: r.id,
      serviceId: r.service_id,
      planId: r.plan_id,
      state: r.state,
      parameters: this.#box.open<JsonObject>(r.parameters_enc, instanceField(r.id, 'parameters_enc')) ?? {},
      context: opt(r.context),
      organizationGuid: opt(r.organization_guid),
      spaceGuid: opt(r.space_guid),
      maintenanceVersion: opt(r.maintenance_version),
      dashboardUrl: opt(r.dashboard_url),
      metadata: opt(r.metadata),
      provisionerState: this.#box.open<JsonObject>(r.provisioner_state_enc, instanceField(r.id, 'provisioner_state_enc')) ?? {},
      planSnapshot: opt(r.plan_snapshot ?? null),
    };
  }

  /** Locks the instance row until `trx` ends, without reading (or decrypting) it. */
  async lock(id: string, trx: Db): Promise<void> {
    await trx('instances').where({ id }).forUpdate().first('id');
  }

  /** The instance's plan (id and recorded settings) without decrypting anything. */
  async planOf(id: string, trx: Db = this.#knex): Promise<Pick<InstanceRecord, 'planId' | 'planSnapshot'> | undefined> {
    const r = await trx('instances').where({ id }).first('plan_id', 'plan_snapshot');
    return r ? { planId: r.plan_id, planSnapshot: opt(r.plan_snapshot ?? null) } : undefined;
  }

  async get(id: string, trx: Db = this.#knex, opts: { lock?: boolean } = {}): Promise<InstanceRecord | undefined> {
    const q = trx('instances').where({ id }).first();
    if (opts.lock) q.forUpdate();
    const r = await q;
    return r ? this.#row(r) : undefined;
  }

  /** Inserts a new instance unless the id exists; returns whether this call created it. */
  async insertIfAbsent(rec: InstanceRecord, trx: Db = this.#knex): Promise<boolean> {
    const rows = await trx('instances')
      .insert(this.#columns(rec))
      .onConflict('id')
      .ignore()
      .returning('id');
    return rows.length === 1;
  }

  async replace(rec: InstanceRecord, trx: Db = this.#knex): Promise<void> {
    await trx('instances').where({ id: rec.id }).update({ ...this.#columns(rec), updated_at: trx.fn.now() });
  }

  async patch(
    id: string,
    patch: Partial<Pick<InstanceRecord, 'state' | 'planId' | 'parameters' | 'context' | 'maintenanceVersion' | 'dashboardUrl' | 'metadata' | 'provisionerState' | 'planSnapshot'>>,
    trx: Db = this.#knex,
  ): Promise<void> {
    const cols: Record<string, unknown> = { updated_at: trx.fn.now() };
    if (patch.state !== undefined) cols.state = patch.state;
    if (patch.planId !== undefined) cols.plan_id = patch.planId;
    if (patch.parameters !== undefined) cols.parameters_enc = this.#box.seal(patch.parameters, instanceField(id, 'parameters_enc'));
    if ('context' in patch) cols.context = patch.context ?? null;
    if ('maintenanceVersion' in patch) cols.maintenance_version = patch.maintenanceVersion ?? null;
    if ('dashboardUrl' in patch) cols.dashboard_url = patch.dashboardUrl ?? null;
    if ('metadata' in patch) cols.metadata = patch.metadata ?? null;
    if (patch.provisionerState !== undefined) cols.provisioner_state_enc = this.#box.seal(patch.provisionerState, instanceField(id, 'provisioner_state_enc'));
    if (patch.state === 'deleted') {
      // Nothing secret outlives the instance: its parameters and checkpoints, its bindings'
      // secrets, and what its finished operations were asked (update parameters).
      cols.parameters_enc = null;
      cols.provisioner_state_enc = null;
      await trx('bindings').where({ instance_id: id }).update(ERASED_BINDING_SECRETS);
      await trx('operations').where({ instance_id: id }).whereNotNull('finished_at').whereNotNull('request_enc').update({ request_enc: null });
    }
    if (patch.planSnapshot !== undefined) cols.plan_snapshot = JSON.stringify(patch.planSnapshot);
    await trx('instances').where({ id }).update(cols);
  }

  async stateOf(id: string, trx: Db = this.#knex): Promise<InstanceRecord['state'] | undefined> {
    const r = await trx('instances').where({ id }).first('state');
    return r?.state;
  }

  async count(trx: Db = this.#knex): Promise<number> {
    const [{ n }] = (await trx('instances').whereNot({ state: 'deleted' }).count({ n: '*' })) as [{ n: number }];
    return Number(n);
  }

  #columns(rec: InstanceRecord) {
    return {
      id: rec.id,
      service_id: rec.serviceId,
      plan_id: rec.planId,
      state: rec.state,
      parameters_enc: this.#box.seal(rec.parameters, instanceField(rec.id, 'parameters_enc')),
      context: rec.context ?? null,
      organization_guid: rec.organizationGuid ?? null,
      space_guid: rec.spaceGuid ?? null,
      maintenance_version: rec.maintenanceVersion ?? null,
      dashboard_url: rec.dashboardUrl ?? null,
      metadata: rec.metadata ?? null,
      provisioner_state_enc: this.#box.seal(rec.provisionerState, instanceField(rec.id, 'provisioner_state_enc')),
      plan_snapshot: rec.planSnapshot === undefined ? null : JSON.stringify(rec.planSnapshot),
    };
  }
}

export class BindingStore {
  readonly #knex: Knex;
  readonly #box: SecretBox;
  constructor(knex: Knex, box: SecretBox) {
    this.#knex = knex;
    this.#box = box;
  }

  #row(r: Record<string, any>): BindingRecord {
    return {
      instanceId: r.instance_id,
      id: r.id,
      serviceId: r.service_id,
      planId: r.plan_id,
      state: r.state,
      parameters: this.#box.open<JsonObject>(r.parameters_enc, bindingField(r.instance_id, r.id, 'parameters_enc')) ?? {},
      context: opt(r.context),
      bindResource: opt(r.bind_resource),
      appGuid: opt(r.app_guid),
      predecessorBindingId: opt(r.predecessor_binding_id),
      credentials: this.#box.open<JsonObject>(r.credentials_enc, bindingField(r.instance_id, r.id, 'credentials_enc')),
      endpoints: opt(r.endpoints),
      metadata: opt(r.metadata),
      provisionerState: this.#box.open<JsonObject>(r.provisioner_state_enc, bindingField(r.instance_id, r.id, 'provisioner_state_enc')) ?? {},
    };
  }

  /** The binding's state without decrypting anything (last_operation needs no secret). */
  async stateOf(instanceId: string, id: string, trx: Db = this.#knex): Promise<BindingRecord['state'] | undefined> {
    const r = await trx('bindings').where({ instance_id: instanceId, id }).first('state');
    return r?.state;
  }

  async get(instanceId: string, id: string, trx: Db = this.#knex, opts: { lock?: boolean } = {}): Promise<BindingRecord | undefined> {
    const q = trx('bindings').where({ instance_id: instanceId, id }).first();
    if (opts.lock) q.forUpdate();
    const r = await q;
    return r ? this.#row(r) : undefined;
  }

  async listLive(instanceId: string, trx: Db = this.#knex): Promise<BindingRecord[]> {
    const rows = await trx('bindings').where({ instance_id: instanceId }).whereNot({ state: 'deleted' }).orderBy('created_at');
    return rows.map((r) => this.#row(r));
  }

  async insertIfAbsent(rec: BindingRecord, trx: Db = this.#knex): Promise<boolean> {
    const rows = await trx('bindings').insert(this.#columns(rec)).onConflict(['instance_id', 'id']).ignore().returning('id');
    return rows.length === 1;
  }

  async replace(rec: BindingRecord, trx: Db = this.#knex): Promise<void> {
    await trx('bindings')
      .where({ instance_id: rec.instanceId, id: rec.id })
      .update({ ...this.#columns(rec), updated_at: trx.fn.now() });
  }

  async patch(
    instanceId: string,
    id: string,
    patch: Partial<Pick<BindingRecord, 'state' | 'credentials' | 'endpoints' | 'metadata' | 'provisionerState'>>,
    trx: Db = this.#knex,
  ): Promise<void> {
    const cols: Record<string, unknown> = { updated_at: trx.fn.now() };
    if (patch.state !== undefined) cols.state = patch.state;
    if ('credentials' in patch) {
      cols.credentials_enc = patch.credentials === undefined ? null : this.#box.seal(patch.credentials, bindingField(instanceId, id, 'credentials_enc'));
    }
    if ('endpoints' in patch) cols.endpoints = patch.endpoints === undefined ? null : JSON.stringify(patch.endpoints);
    if ('metadata' in patch) cols.metadata = patch.metadata ?? null;
    if (patch.provisionerState !== undefined) {
      cols.provisioner_state_enc = this.#box.seal(patch.provisionerState, bindingField(instanceId, id, 'provisioner_state_enc'));
    }
    // A deleted binding keeps no password, parameters or checkpoints.
    if (patch.state === 'deleted') Object.assign(cols, ERASED_BINDING_SECRETS);
    await trx('bindings').where({ instance_id: instanceId, id }).update(cols);
  }

  #columns(rec: BindingRecord) {
    return {
      instance_id: rec.instanceId,
      id: rec.id,
      service_id: rec.serviceId,
      plan_id: rec.planId,
      state: rec.state,
      parameters_enc: this.#box.seal(rec.parameters, bindingField(rec.instanceId, rec.id, 'parameters_enc')),
      context: rec.context ?? null,
      bind_resource: rec.bindResource ?? null,
      app_guid: rec.appGuid ?? null,
      predecessor_binding_id: rec.predecessorBindingId ?? null,
      credentials_enc: rec.credentials === undefined ? null : this.#box.seal(rec.credentials, bindingField(rec.instanceId, rec.id, 'credentials_enc')),
      endpoints: rec.endpoints === undefined ? null : JSON.stringify(rec.endpoints),
      metadata: rec.metadata ?? null,
      provisioner_state_enc: this.#box.seal(rec.provisionerState, bindingField(rec.instanceId, rec.id, 'provisioner_state_enc')),
    };
  }
}

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
  failureCause?: 'request';
}

const STATUS_COLUMNS = [
  'id', 'instance_id', 'binding_id', 'kind', 'state', 'description', 'instance_usable', 'update_repeatable', 'failure_cause',
  'lease_owner', 'lease_expires_at', 'attempts', 'deadline_at', 'request_identity', 'created_at', 'finished_at',
];

// In the database's clock, like every lease comparison. A worker renews every quarter of the configured
// lease (BERTH_LEASE_SECONDS), also when it shortens the lease to the operation's deadline, so half a lease
// without a renewal means it stopped: it died or lost the database, and the operation waits for the lease to
// run out and another worker to take it. (Judged by the configured length, not by lease_expires_at -
// lease_renewed_at, which a lease cut short near the deadline makes smaller than the renewal interval.)
// A retry waiting out its backoff (next_attempt_at in the future) already says so in its description.
const AWAITING_RESUMPTION = `(finished_at IS NULL AND attempts > 0 AND next_attempt_at <= now()
  AND (lease_expires_at IS NULL OR lease_expires_at <= now()
       OR lease_renewed_at < now() - (? * interval '1 millisecond'))) AS awaiting_resumption`;

export class OperationStore {
  readonly #knex: Knex;
  readonly #box: SecretBox;
  readonly #leaseMs: number;
  constructor(knex: Knex, box: SecretBox, leaseMs: number) {
    this.#knex = knex;
    this.#box = box;
    this.#leaseMs = leaseMs;
  }

  #awaitingResumption(trx: Db) {
    return trx.raw(AWAITING_RESUMPTION, [this.#leaseMs / 2]);
  }

  #row(r: Record<string, any>): OperationRecord {
    // An undecryptable request (e.g. sealed under a removed key) must not stop
    // the claim loop or requests: the record says why, and the engine fails it.
    let request: StoredRequest = {};
    let unreadableRequest: string | undefined;
    try {
      request = (r.request_enc == null ? undefined : this.#box.open<StoredRequest>(r.request_enc, operationField(r.id))) ?? {};
    } catch (err) {
      if (!(err instanceof UndecryptableError)) throw err;
      unreadableRequest = err.message;
    }
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
      request,
      leaseOwner: opt(r.lease_owner),
      leaseExpiresAt: opt(r.lease_expires_at),
      attempts: r.attempts,
      deadlineAt: opt(r.deadline_at),
      requestIdentity: opt(r.request_identity),
      createdAt: r.created_at,
      finishedAt: opt(r.finished_at),
      ...(unreadableRequest === undefined ? {} : { unreadableRequest }),
      planSnapshot: opt(r.plan_snapshot ?? null),
      awaitingResumption: r.awaiting_resumption === true,
    };
  }

  async create(op: NewOperation, trx: Db = this.#knex): Promise<void> {
    await trx('operations').insert({
      id: op.id,
      instance_id: op.instanceId,
      binding_id: op.bindingId ?? null,
      kind: op.kind,
      state: 'in progress',
      description: op.description,
      request_enc: this.#box.seal(op.request, operationField(op.id)),
      deadline_at: op.deadlineAt ?? null,
      request_identity: op.requestIdentity ?? null,
      plan_snapshot: op.planSnapshot === undefined ? null : JSON.stringify(op.planSnapshot),
    });
  }

  async get(id: string, trx: Db = this.#knex): Promise<OperationRecord | undefined> {
    const r = await trx('operations').where({ id }).first('*', this.#awaitingResumption(trx));
    return r ? this.#row(r) : undefined;
  }

  /** What last_operation needs, without decrypting the request: one indexed read. */
  async status(query: { id: string } | { instanceId: string; bindingId: string | undefined }, trx: Db = this.#knex): Promise<OperationRecord | undefined> {
    const q = trx('operations').select([...STATUS_COLUMNS, this.#awaitingResumption(trx)]).first();
    if ('id' in query) q.where({ id: query.id });
    else {
      q.where({ instance_id: query.instanceId, binding_id: query.bindingId ?? null }).orderBy([
        { column: 'created_at', order: 'desc' },
        { column: 'id', order: 'desc' },
      ]);
    }
    const r = await q;
    return r ? this.#row(r) : undefined;
  }

  /** The unfinished operation on the instance itself (bindingId undefined) or on one binding. */
  async active(instanceId: string, bindingId: string | undefined, trx: Db = this.#knex): Promise<OperationRecord | undefined> {
    const r = await trx('operations')
      .where({ instance_id: instanceId, binding_id: bindingId ?? null })
      .whereNull('finished_at')
      .first();
    return r ? this.#row(r) : undefined;
  }

  async anyActiveBindingOperation(instanceId: string, trx: Db = this.#knex): Promise<boolean> {
    const r = await trx('operations').where({ instance_id: instanceId }).whereNotNull('binding_id').whereNull('finished_at').first('id');
    return r !== undefined;
  }

  async latest(instanceId: string, bindingId: string | undefined, trx: Db = this.#knex): Promise<OperationRecord | undefined> {
    const r = await trx('operations')
      .where({ instance_id: instanceId, binding_id: bindingId ?? null })
      .orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }])
      .first('*', this.#awaitingResumption(trx));
    return r ? this.#row(r) : undefined;
  }

  /**
   * Claims the next runnable operation for `owner`: unfinished, due, with no
   * live lease, and with no live lease on any other operation of the same
   * instance (at most one operation per instance runs anywhere). Pass `onlyId`
   * to claim one particular operation; `exclude` lists operations the caller
   * must not claim (its own executions still unwinding).
   */
  async claim(owner: string, leaseMs: number, onlyId?: string, exclude: string[] = []): Promise<OperationRecord | undefined> {
    return this.#knex.transaction(async (trx) => {
      const q = trx('operations as o')
        .select('o.id', 'o.instance_id')
        .whereNull('o.finished_at')
        .where('o.next_attempt_at', '<=', trx.fn.now())
        .where((w) => w.whereNull('o.lease_expires_at').orWhere('o.lease_expires_at', '<', trx.fn.now()))
        .orderBy('o.created_at')
        .limit(8)
        .forUpdate()
        .skipLocked();
      if (onlyId) q.where('o.id', onlyId);
      if (exclude.length > 0) q.whereNotIn('o.id', exclude);
      // Skip, without locking, operations whose instance is busy or has older work queued.
      q.whereNotExists((sub) =>
        sub
          .from('operations as p')
          .whereRaw('p.instance_id = o.instance_id')
          .whereRaw('p.id <> o.id')
          .where((w) => w.where('p.lease_expires_at', '>', trx.fn.now()).orWhere((x) => x.whereNull('p.finished_at').whereRaw('p.created_at < o.created_at'))),
      );
      const candidates = (await q) as Array<{ id: string; instance_id: string }>;
      for (const c of candidates) {
        const { rows } = await trx.raw(`SELECT pg_try_advisory_xact_lock(hashtext('berth:instance:' || ?)) AS ok`, [c.instance_id]);
        if (!rows[0].ok) continue;
        // Checked again under the instance lock, in the UPDATE's own snapshot (taken after the lock):
        // no live lease on another operation of the instance, and no older unfinished one, which goes first.
        const { rows: claimed } = await trx.raw(
          `UPDATE operations o
              SET lease_owner = ?,
                  -- never past a deadline still ahead (one already passed: the worker fails it at once)
                  lease_expires_at = CASE WHEN deadline_at > now() THEN LEAST(now() + (? * interval '1 millisecond'), deadline_at)
                                          ELSE now() + (? * interval '1 millisecond') END,
                  lease_renewed_at = now(), attempts = attempts + 1, updated_at = now()
            WHERE o.id = ?
              AND NOT EXISTS (
                SELECT 1 FROM operations p
                 WHERE p.instance_id = o.instance_id AND p.id <> o.id
                   AND (p.lease_expires_at > now() OR (p.finished_at IS NULL AND p.created_at < o.created_at)))
            RETURNING *`,
          [owner, leaseMs, leaseMs, c.id],
        );
        if (claimed.length === 1) return this.#row(claimed[0]);
      }
      return undefined;
    });
  }

  /** Extends the lease; false when the lease was lost or the operation was ended by someone else. */
  async renew(id: string, owner: string, leaseMs: number): Promise<boolean> {
    const n = await this.#knex('operations')
      .where({ id, lease_owner: owner })
      .whereNull('finished_at')
      .update({
        // Never renewed past the operation's deadline, in the database's clock.
        lease_expires_at: this.#knex.raw(`LEAST(now() + (? * interval '1 millisecond'), COALESCE(deadline_at, 'infinity'::timestamptz))`, [leaseMs]),
        lease_renewed_at: this.#knex.fn.now(),
      });
    return n === 1;
  }

  /**
   * Whether `owner` still holds the unfinished operation. Locks the row (shared)
   * until `trx` ends, so a takeover or a halt waits for the caller's write.
   */
  async holds(id: string, owner: string, trx: Db): Promise<boolean> {
    const r = await trx('operations').where({ id, lease_owner: owner }).whereNull('finished_at').forShare().first('id');
    return r !== undefined;
  }

  async release(id: string, owner: string, trx: Db = this.#knex): Promise<void> {
    await trx('operations').where({ id, lease_owner: owner }).update({ lease_owner: null, lease_expires_at: null });
  }

  async setDescription(id: string, owner: string, description: string): Promise<void> {
    await this.#knex('operations').where({ id, lease_owner: owner }).whereNull('finished_at').update({ description, updated_at: this.#knex.fn.now() });
  }

  async scheduleRetry(id: string, owner: string, delayMs: number, description: string, trx: Db = this.#knex): Promise<boolean> {
    const n = await trx('operations')
      .where({ id, lease_owner: owner })
      .whereNull('finished_at')
      .update({
        description,
        lease_owner: null,
        lease_expires_at: null,
        next_attempt_at: trx.raw(`now() + (? * interval '1 millisecond')`, [delayMs]),
        updated_at: trx.fn.now(),
      });
    return n === 1;
  }

  /**
   * Ends an operation. With `owner`, only while that owner holds it (a worker
   * finishing its own work); without, unconditionally (a request halting it).
   * Returns false when it had already ended or the lease was lost.
   */
  async finish(id: string, outcome: Outcome, owner: string | undefined, trx: Db = this.#knex): Promise<boolean> {
    const q = trx('operations').where({ id }).whereNull('finished_at');
    if (owner !== undefined) q.where({ lease_owner: owner });
    const cols: Record<string, unknown> = {
      state: outcome.state,
      description: outcome.description,
      instance_usable: outcome.instanceUsable ?? null,
      update_repeatable: outcome.updateRepeatable ?? null,
      failure_cause: outcome.failureCause ?? null,
      finished_at: trx.fn.now(),
      updated_at: trx.fn.now(),
    };
    if (owner !== undefined) {
      cols.lease_owner = null;
      cols.lease_expires_at = null;
    }
    const n = await q.update(cols);
    return n === 1;
  }

  async countByState(trx: Db = this.#knex): Promise<Array<{ kind: string; state: string; n: number }>> {
    return (await trx('operations').select('kind', 'state').count({ n: '*' }).groupBy('kind', 'state')) as any;
  }
}

export interface AuditEvent {
  operationId: string | undefined;
  instanceId: string;
  bindingId: string | undefined;
  action: string;
  platform: string | undefined;
  originatingIdentity: JsonObject | undefined;
  requestIdentity: string | undefined;
  outcome: string | undefined;
}

export class AuditStore {
  readonly #knex: Knex;
  constructor(knex: Knex) {
    this.#knex = knex;
  }

  async record(e: AuditEvent, trx: Db = this.#knex): Promise<void> {
    await trx('audit_events').insert({
      operation_id: e.operationId ?? null,
      instance_id: e.instanceId,
      binding_id: e.bindingId ?? null,
      action: e.action,
      platform: e.platform ?? null,
      originating_identity: e.originatingIdentity ?? null,
      request_identity: e.requestIdentity ?? null,
      outcome: e.outcome ?? null,
    });
  }

  async forInstance(instanceId: string, trx: Db = this.#knex): Promise<AuditEvent[]> {
    const rows = await trx('audit_events').where({ instance_id: instanceId }).orderBy('id');
    return rows.map((r: any) => ({
      operationId: opt(r.operation_id),
      instanceId: r.instance_id,
      bindingId: opt(r.binding_id),
      action: r.action,
      platform: opt(r.platform),
      originatingIdentity: opt(r.originating_identity),
      requestIdentity: opt(r.request_identity),
      outcome: opt(r.outcome),
    }));
  }
}

export interface Stores {
  knex: Knex;
  instances: InstanceStore;
  bindings: BindingStore;
  operations: OperationStore;
  audit: AuditStore;
}

/** `leaseMs`: the configured lease (BERTH_LEASE_SECONDS), by which a stopped worker is recognised. */
export function createStores(knex: Knex, box: SecretBox, leaseMs: number): Stores {
  return {
    knex,
    instances: new InstanceStore(knex, box),
    bindings: new BindingStore(knex, box),
    operations: new OperationStore(knex, box, leaseMs),
    audit: new AuditStore(knex),
  };
}
