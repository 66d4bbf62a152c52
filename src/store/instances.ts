// The instances table: one row per service instance, its parameters and
// provisioner checkpoints sealed.
import type { JsonObject, InstanceState } from '../osb/model.ts';
import type { PlanSnapshot } from '../catalog/plan-snapshot.ts';
import type { SealedField } from '../secret-box.ts';
import { ERASED_BINDING_SECRETS } from './bindings.ts';
import { opt, Table } from './table.ts';

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

/**
 * A change to an instance. Keys left out are left as they are; for the plain columns (context,
 * maintenanceVersion, dashboardUrl, metadata) a key present with `undefined` writes NULL.
 */
export type InstancePatch = Partial<
  Pick<InstanceRecord, 'state' | 'planId' | 'parameters' | 'context' | 'maintenanceVersion' | 'dashboardUrl' | 'metadata' | 'provisionerState' | 'planSnapshot'>
>;

/** An instance whose maintenance version is behind its plan's (see behindMaintenance). */
export interface InstanceBehind {
  id: string;
  serviceId: string;
  planId: string;
  state: InstanceState;
  maintenanceVersion: string | undefined;
  /** The plan's maintenance version in the catalog asked about. */
  planVersion: string;
}

/** States of an instance that exists and works (an update may be running on it). */
const LIVE: InstanceState[] = ['ready', 'updating'];

const cell = (id: string, column: string): SealedField => ({ table: 'instances', row: [id], column });

export class InstanceStore extends Table {
  #row(r: Record<string, any>): InstanceRecord {
    return {
      id: r.id,
      serviceId: r.service_id,
      planId: r.plan_id,
      state: r.state,
      parameters: this.box.open<JsonObject>(r.parameters_enc, cell(r.id, 'parameters_enc')) ?? {},
      context: opt(r.context),
      organizationGuid: opt(r.organization_guid),
      spaceGuid: opt(r.space_guid),
      maintenanceVersion: opt(r.maintenance_version),
      dashboardUrl: opt(r.dashboard_url),
      metadata: opt(r.metadata),
      provisionerState: this.box.open<JsonObject>(r.provisioner_state_enc, cell(r.id, 'provisioner_state_enc')) ?? {},
      planSnapshot: opt(r.plan_snapshot ?? null),
    };
  }

  /** Locks the instance row until the transaction ends, without reading (or decrypting) it. */
  async lock(id: string): Promise<void> {
    await this.db('instances').where({ id }).forUpdate().first('id');
  }

  /** The instance's plan (id and recorded settings) without decrypting anything. */
  async planOf(id: string): Promise<Pick<InstanceRecord, 'planId' | 'planSnapshot'> | undefined> {
    const r = await this.db('instances').where({ id }).first('plan_id', 'plan_snapshot');
    return r ? { planId: r.plan_id, planSnapshot: opt(r.plan_snapshot ?? null) } : undefined;
  }

  async get(id: string, opts: { lock?: boolean } = {}): Promise<InstanceRecord | undefined> {
    const q = this.db('instances').where({ id }).first();
    if (opts.lock) q.forUpdate();
    const r = await q;
    return r ? this.#row(r) : undefined;
  }

  /** Inserts a new instance unless the id exists; returns whether this call created it. */
  async insertIfAbsent(rec: InstanceRecord): Promise<boolean> {
    const rows = await this.db('instances').insert(this.#columns(rec)).onConflict('id').ignore().returning('id');
    return rows.length === 1;
  }

  async replace(rec: InstanceRecord): Promise<void> {
    await this.db('instances').where({ id: rec.id }).update({ ...this.#columns(rec), updated_at: this.db.fn.now() });
  }

  async patch(id: string, patch: InstancePatch): Promise<void> {
    const cols: Record<string, unknown> = { updated_at: this.db.fn.now() };
    if (patch.state !== undefined) cols.state = patch.state;
    if (patch.planId !== undefined) cols.plan_id = patch.planId;
    if (patch.parameters !== undefined) cols.parameters_enc = this.seal(patch.parameters, cell(id, 'parameters_enc'));
    if ('context' in patch) cols.context = patch.context ?? null;
    if ('maintenanceVersion' in patch) cols.maintenance_version = patch.maintenanceVersion ?? null;
    if ('dashboardUrl' in patch) cols.dashboard_url = patch.dashboardUrl ?? null;
    if ('metadata' in patch) cols.metadata = patch.metadata ?? null;
    if (patch.provisionerState !== undefined) cols.provisioner_state_enc = this.seal(patch.provisionerState, cell(id, 'provisioner_state_enc'));
    if (patch.state === 'deleted') {
      // Nothing secret outlives the instance: its parameters and checkpoints, its bindings'
      // secrets, and what its finished operations were asked (update parameters).
      cols.parameters_enc = null;
      cols.provisioner_state_enc = null;
      await this.db('bindings').where({ instance_id: id }).update(ERASED_BINDING_SECRETS);
      await this.db('operations').where({ instance_id: id }).whereNotNull('finished_at').whereNotNull('request_enc').update({ request_enc: null });
    }
    if (patch.planSnapshot !== undefined) cols.plan_snapshot = JSON.stringify(patch.planSnapshot);
    await this.db('instances').where({ id }).update(cols);
  }

  /**
   * Instances (ready or being updated) of the plans in `targets` whose recorded maintenance version is behind
   * the plan's: what an upgrade would move (`berth upgrade --all`, the admin listing). Oldest first, so a
   * rollout goes in the order instances were made. Reads no secret column.
   */
  async behindMaintenance(targets: ReadonlyMap<string, string>): Promise<InstanceBehind[]> {
    if (targets.size === 0) return [];
    const behind = behindMaintenanceSql(targets, { plan: 'plan_id', version: 'maintenance_version' });
    const rows = await this.db('instances')
      .whereIn('state', LIVE)
      .whereRaw(behind.sql, behind.bindings)
      .orderBy([{ column: 'created_at' }, { column: 'id' }])
      .select('id', 'service_id', 'plan_id', 'state', 'maintenance_version');
    return rows.map((r) => ({ id: r.id, serviceId: r.service_id, planId: r.plan_id, state: r.state, maintenanceVersion: opt(r.maintenance_version) as string | undefined, planVersion: targets.get(r.plan_id)! }));
  }

  /** Live instances counted by plan and recorded maintenance version (for the instances-behind metric: one small query). */
  async countByMaintenance(): Promise<Array<{ planId: string; maintenanceVersion: string | undefined; n: number }>> {
    const rows = await this.db('instances').whereIn('state', LIVE).select('plan_id', 'maintenance_version').count({ n: '*' }).groupBy('plan_id', 'maintenance_version');
    return rows.map((r: any) => ({ planId: r.plan_id, maintenanceVersion: opt(r.maintenance_version), n: Number(r.n) }));
  }

  async stateOf(id: string): Promise<InstanceState | undefined> {
    const r = await this.db('instances').where({ id }).first('state');
    return r?.state;
  }

  #columns(rec: InstanceRecord) {
    return {
      id: rec.id,
      service_id: rec.serviceId,
      plan_id: rec.planId,
      state: rec.state,
      parameters_enc: this.seal(rec.parameters, cell(rec.id, 'parameters_enc')),
      context: rec.context ?? null,
      organization_guid: rec.organizationGuid ?? null,
      space_guid: rec.spaceGuid ?? null,
      maintenance_version: rec.maintenanceVersion ?? null,
      dashboard_url: rec.dashboardUrl ?? null,
      metadata: rec.metadata ?? null,
      provisioner_state_enc: this.seal(rec.provisionerState, cell(rec.id, 'provisioner_state_enc')),
      plan_snapshot: rec.planSnapshot === undefined ? null : JSON.stringify(rec.planSnapshot),
    };
  }
}

/**
 * SQL (for a WHERE clause; `?` bindings) that holds for rows whose plan is one of `targets` and whose maintenance
 * version is behind that plan's: none recorded, or lower by semver precedence, as standingOf (catalog/maintenance.ts)
 * decides. `columns` name the plan id and version columns (qualified as the query needs, e.g. `i.plan_id`), so the
 * admin listing's filter is this same condition. Versions are semver (the catalog refuses others): the core is
 * compared as numbers, a pre-release sorts below its release, and pre-release identifiers compare numerically or
 * in ASCII order (numeric ones padded and put first).
 */
export function behindMaintenanceSql(targets: ReadonlyMap<string, string>, columns: { plan: string; version: string }): { sql: string; bindings: string[] } {
  if (targets.size === 0) return { sql: 'false', bindings: [] };
  const clauses: string[] = [];
  const bindings: string[] = [];
  for (const [planId, version] of targets) {
    const lower = semverLess(columns.version, '?');
    clauses.push(`(${columns.plan} = ? AND (${columns.version} IS NULL OR ${lower.sql}))`);
    bindings.push(planId, ...lower.placeholders.map(() => version));
  }
  return { sql: `(${clauses.join(' OR ')})`, bindings };
}

/** `a < b` by semver precedence, as a row comparison of (numeric core, has no pre-release, pre-release keys). */
function semverLess(a: string, b: string): { sql: string; placeholders: string[] } {
  const placeholders: string[] = [];
  const use = (e: string) => {
    if (e === '?') placeholders.push(e);
    return e === '?' ? 'CAST(? AS text)' : e;
  };
  const key = (e: string) => {
    const plain = () => `split_part(${use(e)}, '+', 1)`;
    const core = `CAST(string_to_array(split_part(${plain()}, '-', 1), '.') AS numeric[])`;
    const hasPre = `position('-' in ${plain()}) > 0`;
    const pre =
      `CASE WHEN position('-' in ${plain()}) > 0 THEN ARRAY(SELECT CASE WHEN p ~ '^[0-9]+$' THEN '0' || lpad(p, 40, '0') ELSE '1' || p END ` +
      `FROM unnest(string_to_array(substr(${plain()}, position('-' in ${plain()}) + 1), '.')) WITH ORDINALITY AS t(p, n) ORDER BY n) ELSE CAST(ARRAY[] AS text[]) END`;
    return `(${core}, NOT (${hasPre}), (${pre}) COLLATE "C")`;
  };
  const left = key(a);
  const right = key(b);
  return { sql: `${left} < ${right}`, placeholders };
}
