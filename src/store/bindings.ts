// The bindings table: one row per service binding, keyed by instance and
// binding id; parameters, the bind response and checkpoints sealed.
import type { BindingState, JsonObject } from '../osb/model.ts';
import type { SealedField } from '../secret-box.ts';
import { opt, Table } from './table.ts';

/** What a bind answered, kept (sealed) for fetches and idempotent repeats. */
export interface BindResponse {
  credentials?: JsonObject;
  syslog_drain_url?: string;
  route_service_url?: string;
  volume_mounts?: unknown[];
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
  /** Sealed in the `credentials_enc` column. */
  bindResponse: BindResponse | undefined;
  endpoints: unknown[] | undefined;
  metadata: JsonObject | undefined;
  provisionerState: JsonObject;
  /** Set when an instance update changed what this binding's credentials contain (see markStale). */
  credentialsStale?: StaleCredentials | undefined;
}

/** Why a binding's credentials are out of date, and since when (RFC 3339). */
export interface StaleCredentials {
  since: string;
  reason: string;
}

/** A change to a binding; for bindResponse, endpoints and metadata a key present with `undefined` writes NULL. */
export type BindingPatch = Partial<Pick<BindingRecord, 'state' | 'bindResponse' | 'endpoints' | 'metadata' | 'provisionerState'>>;

/** Secret columns of a binding, erased when it (or its instance) is deleted. */
export const ERASED_BINDING_SECRETS = { parameters_enc: null, credentials_enc: null, provisioner_state_enc: null };

const cell = (instanceId: string, id: string, column: string): SealedField => ({ table: 'bindings', row: [instanceId, id], column });

export class BindingStore extends Table {
  #row(r: Record<string, any>): BindingRecord {
    return {
      instanceId: r.instance_id,
      id: r.id,
      serviceId: r.service_id,
      planId: r.plan_id,
      state: r.state,
      parameters: this.box.open<JsonObject>(r.parameters_enc, cell(r.instance_id, r.id, 'parameters_enc')) ?? {},
      context: opt(r.context),
      bindResource: opt(r.bind_resource),
      appGuid: opt(r.app_guid),
      predecessorBindingId: opt(r.predecessor_binding_id),
      bindResponse: this.box.open<BindResponse>(r.credentials_enc, cell(r.instance_id, r.id, 'credentials_enc')),
      endpoints: opt(r.endpoints),
      metadata: opt(r.metadata),
      provisionerState: this.box.open<JsonObject>(r.provisioner_state_enc, cell(r.instance_id, r.id, 'provisioner_state_enc')) ?? {},
      credentialsStale: r.credentials_stale_since ? { since: new Date(r.credentials_stale_since).toISOString(), reason: r.credentials_stale_reason ?? '' } : undefined,
    };
  }

  /** The binding's state without decrypting anything (last_operation needs no secret). */
  async stateOf(instanceId: string, id: string): Promise<BindingState | undefined> {
    const r = await this.db('bindings').where({ instance_id: instanceId, id }).first('state');
    return r?.state;
  }

  async get(instanceId: string, id: string, opts: { lock?: boolean } = {}): Promise<BindingRecord | undefined> {
    const q = this.db('bindings').where({ instance_id: instanceId, id }).first();
    if (opts.lock) q.forUpdate();
    const r = await q;
    return r ? this.#row(r) : undefined;
  }

  async listLive(instanceId: string): Promise<BindingRecord[]> {
    const rows = await this.db('bindings').where({ instance_id: instanceId }).whereNot({ state: 'deleted' }).orderBy('created_at');
    return rows.map((r) => this.#row(r));
  }

  async insertIfAbsent(rec: BindingRecord): Promise<boolean> {
    const rows = await this.db('bindings').insert(this.#columns(rec)).onConflict(['instance_id', 'id']).ignore().returning('id');
    return rows.length === 1;
  }

  async replace(rec: BindingRecord): Promise<void> {
    await this.db('bindings')
      .where({ instance_id: rec.instanceId, id: rec.id })
      .update({ ...this.#columns(rec), updated_at: this.db.fn.now() });
  }

  async patch(instanceId: string, id: string, patch: BindingPatch): Promise<void> {
    const cols: Record<string, unknown> = { updated_at: this.db.fn.now() };
    if (patch.state !== undefined) cols.state = patch.state;
    if ('bindResponse' in patch) cols.credentials_enc = this.seal(patch.bindResponse, cell(instanceId, id, 'credentials_enc'));
    if ('endpoints' in patch) cols.endpoints = patch.endpoints === undefined ? null : JSON.stringify(patch.endpoints);
    if ('metadata' in patch) cols.metadata = patch.metadata ?? null;
    if (patch.provisionerState !== undefined) cols.provisioner_state_enc = this.seal(patch.provisionerState, cell(instanceId, id, 'provisioner_state_enc'));
    // A deleted binding keeps no password, parameters or checkpoints.
    if (patch.state === 'deleted') Object.assign(cols, ERASED_BINDING_SECRETS);
    await this.db('bindings').where({ instance_id: instanceId, id }).update(cols);
  }

  /**
   * Live bindings whose credentials passed their `expires_at` and were not yet ended (the expiry
   * sweep's work list; the partial index bindings_expiring holds only candidates).
   */
  async dueToExpire(limit: number): Promise<Array<{ instanceId: string; id: string }>> {
    const rows = await this.db('bindings')
      .where({ state: 'ready' })
      .whereNull('credentials_expired_at')
      .whereRaw(`metadata \\? 'expires_at'`)
      .whereRaw(`(metadata->>'expires_at')::timestamptz <= now()`)
      .orderByRaw(`metadata->>'expires_at'`)
      .limit(limit)
      .select('instance_id', 'id');
    return rows.map((r) => ({ instanceId: r.instance_id, id: r.id }));
  }

  /** Records that the binding's credentials were ended (the sweep leaves it alone from then on). */
  async markExpired(instanceId: string, id: string): Promise<void> {
    await this.db('bindings').where({ instance_id: instanceId, id }).whereNull('credentials_expired_at').update({ credentials_expired_at: this.db.fn.now() });
  }

  /**
   * Marks the instance's ready bindings stale: an update changed what their credentials contain (`reason` says
   * what, never a value). Bindings already stale keep their first `since`, with the latest reason.
   */
  async markStale(instanceId: string, reason: string): Promise<number> {
    return await this.db('bindings')
      .where({ instance_id: instanceId, state: 'ready' })
      .update({ credentials_stale_since: this.db.raw('coalesce(credentials_stale_since, now())'), credentials_stale_reason: reason, updated_at: this.db.fn.now() });
  }

  /** Every binding of a deprovisioned instance is deleted with it (their secrets were erased with the instance's). */
  async deleteAllOf(instanceId: string): Promise<void> {
    await this.db('bindings').where({ instance_id: instanceId }).update({ state: 'deleted', credentials_enc: null, updated_at: this.db.fn.now() });
  }

  #columns(rec: BindingRecord) {
    return {
      instance_id: rec.instanceId,
      id: rec.id,
      service_id: rec.serviceId,
      plan_id: rec.planId,
      state: rec.state,
      parameters_enc: this.seal(rec.parameters, cell(rec.instanceId, rec.id, 'parameters_enc')),
      context: rec.context ?? null,
      bind_resource: rec.bindResource ?? null,
      app_guid: rec.appGuid ?? null,
      predecessor_binding_id: rec.predecessorBindingId ?? null,
      credentials_enc: this.seal(rec.bindResponse, cell(rec.instanceId, rec.id, 'credentials_enc')),
      endpoints: rec.endpoints === undefined ? null : JSON.stringify(rec.endpoints),
      metadata: rec.metadata ?? null,
      provisioner_state_enc: this.seal(rec.provisionerState, cell(rec.instanceId, rec.id, 'provisioner_state_enc')),
      credentials_stale_since: rec.credentialsStale?.since ?? null,
      credentials_stale_reason: rec.credentialsStale?.reason ?? null,
    };
  }
}
