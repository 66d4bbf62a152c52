// What the admin API lists: instances, bindings and operations with filters, in pages, without
// decrypting anything (no parameters, credentials or requests leave the database through here).
import type { Db } from '../store/table.ts';
import { opt } from '../store/table.ts';

export interface Page<T> {
  items: T[];
  /** Pass as `continue` for the next page; absent on the last page. */
  continue?: string;
}

export interface AdminInstance {
  id: string;
  serviceId: string;
  planId: string;
  state: string;
  /** The maintenance_info.version the instance runs (null: none recorded). */
  maintenanceVersion: string | null;
  createdAt: string;
  updatedAt: string;
  bindings: number;
  lastOperation: { id: string; kind: string; state: string; description: string; createdAt: string; finishedAt: string | null } | null;
}

export interface AdminBinding {
  instanceId: string;
  id: string;
  serviceId: string;
  planId: string;
  state: string;
  createdAt: string;
  updatedAt: string;
  expiresAt: string | null;
}

export interface AdminOperation {
  id: string;
  instanceId: string;
  bindingId: string | null;
  kind: string;
  state: string;
  description: string;
  attempts: number;
  /** Who holds it now (a worker), if anyone. */
  leaseOwner: string | null;
  createdAt: string;
  finishedAt: string | null;
  deadlineAt: string | null;
}

/** Common filters; each list applies those that make sense for it. */
export interface ListFilter {
  state?: string | undefined;
  planId?: string | undefined;
  serviceId?: string | undefined;
  instanceId?: string | undefined;
  kind?: string | undefined;
  /** Only those failed (an operation that failed; an instance or binding whose state is create_failed or whose latest operation failed). */
  failed?: boolean | undefined;
  /** Only those with an unfinished operation older than this many ms. */
  stuckForMs?: number | undefined;
  /** Instances only: whose maintenance version differs from this one (see `behind`). */
  maintenanceVersionNot?: string | undefined;
  limit: number;
  continue?: string | undefined;
}

/**
 * An extra condition on the instances query (`i` is the instances table): another feature's filter (e.g.
 * "behind the catalog's maintenance version") plugs in here without changing the API's shape.
 */
export type InstanceCondition = (q: any, db: Db) => void;

const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null);

function cursorOf(values: unknown[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

/** Throws RangeError on a cursor this API did not make. */
export function parseCursor(text: string, length: number): string[] {
  try {
    const v = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === length && v.every((x) => typeof x === 'string')) return v;
  } catch {
    // falls through
  }
  throw new RangeError('continue is not a token from a previous page of this list; start again without it');
}

export class AdminQueries {
  readonly #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async instances(f: ListFilter, extra: InstanceCondition[] = []): Promise<Page<AdminInstance>> {
    const db = this.#db;
    const q = db('instances as i').select('i.*').orderBy('i.id').limit(f.limit + 1);
    if (f.state) q.where('i.state', f.state);
    else q.whereNot('i.state', 'deleted');
    if (f.planId) q.where('i.plan_id', f.planId);
    if (f.serviceId) q.where('i.service_id', f.serviceId);
    if (f.instanceId) q.where('i.id', f.instanceId);
    if (f.maintenanceVersionNot !== undefined) q.whereRaw('i.maintenance_version IS DISTINCT FROM ?', [f.maintenanceVersionNot]);
    if (f.failed) {
      q.where((w: any) =>
        w.where('i.state', 'create_failed').orWhereRaw(
          `(SELECT o.state FROM operations o WHERE o.instance_id = i.id AND o.binding_id IS NULL ORDER BY o.created_at DESC, o.id DESC LIMIT 1) = 'failed'`,
        ),
      );
    }
    if (f.stuckForMs !== undefined) {
      q.whereExists((s: any) =>
        s.from('operations as o').whereRaw('o.instance_id = i.id').whereNull('o.finished_at').whereRaw(`o.created_at < now() - (? * interval '1 millisecond')`, [f.stuckForMs]),
      );
    }
    for (const condition of extra) condition(q, db);
    if (f.continue) q.where('i.id', '>', parseCursor(f.continue, 1)[0]!);
    const rows = (await q) as Array<Record<string, any>>;
    const page = rows.slice(0, f.limit);
    const ids = page.map((r) => r.id as string);
    const counts = ids.length
      ? ((await db('bindings').whereIn('instance_id', ids).whereNot('state', 'deleted').groupBy('instance_id').select('instance_id').count({ n: '*' })) as Array<{ instance_id: string; n: string }>)
      : [];
    const latest = ids.length
      ? ((await db('operations')
          .distinctOn('instance_id')
          .whereIn('instance_id', ids)
          .whereNull('binding_id')
          .orderBy([{ column: 'instance_id' }, { column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }])
          .select('instance_id', 'id', 'kind', 'state', 'description', 'created_at', 'finished_at')) as Array<Record<string, any>>)
      : [];
    const items = page.map((r): AdminInstance => {
      const op = latest.find((o) => o.instance_id === r.id);
      return {
        id: r.id,
        serviceId: r.service_id,
        planId: r.plan_id,
        state: r.state,
        maintenanceVersion: r.maintenance_version ?? null,
        createdAt: iso(r.created_at)!,
        updatedAt: iso(r.updated_at)!,
        bindings: Number(counts.find((c) => c.instance_id === r.id)?.n ?? 0),
        lastOperation: op
          ? { id: op.id, kind: op.kind, state: op.state, description: op.description, createdAt: iso(op.created_at)!, finishedAt: iso(op.finished_at) }
          : null,
      };
    });
    return { items, ...(rows.length > f.limit ? { continue: cursorOf([page[page.length - 1]!.id]) } : {}) };
  }

  async bindings(f: ListFilter): Promise<Page<AdminBinding>> {
    const q = this.#db('bindings as b').select('b.instance_id', 'b.id', 'b.service_id', 'b.plan_id', 'b.state', 'b.created_at', 'b.updated_at', 'b.metadata').orderBy(['b.instance_id', 'b.id']).limit(f.limit + 1);
    if (f.state) q.where('b.state', f.state);
    else q.whereNot('b.state', 'deleted');
    if (f.planId) q.where('b.plan_id', f.planId);
    if (f.serviceId) q.where('b.service_id', f.serviceId);
    if (f.instanceId) q.where('b.instance_id', f.instanceId);
    if (f.failed) {
      q.where((w: any) =>
        w.where('b.state', 'create_failed').orWhereRaw(
          `(SELECT o.state FROM operations o WHERE o.instance_id = b.instance_id AND o.binding_id = b.id ORDER BY o.created_at DESC, o.id DESC LIMIT 1) = 'failed'`,
        ),
      );
    }
    if (f.stuckForMs !== undefined) {
      q.whereExists((s: any) =>
        s
          .from('operations as o')
          .whereRaw('o.instance_id = b.instance_id AND o.binding_id = b.id')
          .whereNull('o.finished_at')
          .whereRaw(`o.created_at < now() - (? * interval '1 millisecond')`, [f.stuckForMs]),
      );
    }
    if (f.continue) {
      const [instanceId, id] = parseCursor(f.continue, 2);
      q.whereRaw('(b.instance_id, b.id) > (?, ?)', [instanceId!, id!]);
    }
    const rows = (await q) as Array<Record<string, any>>;
    const page = rows.slice(0, f.limit);
    const items = page.map((r): AdminBinding => ({
      instanceId: r.instance_id,
      id: r.id,
      serviceId: r.service_id,
      planId: r.plan_id,
      state: r.state,
      createdAt: iso(r.created_at)!,
      updatedAt: iso(r.updated_at)!,
      expiresAt: typeof r.metadata?.expires_at === 'string' ? r.metadata.expires_at : null,
    }));
    const last = page[page.length - 1];
    return { items, ...(rows.length > f.limit && last ? { continue: cursorOf([last.instance_id, last.id]) } : {}) };
  }

  async operations(f: ListFilter): Promise<Page<AdminOperation>> {
    const db = this.#db;
    const q = db('operations as o')
      .select('o.id', 'o.instance_id', 'o.binding_id', 'o.kind', 'o.state', 'o.description', 'o.attempts', 'o.lease_owner', 'o.lease_expires_at', 'o.created_at', 'o.finished_at', 'o.deadline_at')
      .orderBy([{ column: 'o.created_at', order: 'desc' }, { column: 'o.id', order: 'desc' }])
      .limit(f.limit + 1);
    if (f.state) q.where('o.state', f.state);
    if (f.failed) q.where('o.state', 'failed');
    if (f.kind) q.where('o.kind', f.kind);
    if (f.instanceId) q.where('o.instance_id', f.instanceId);
    if (f.stuckForMs !== undefined) q.whereNull('o.finished_at').whereRaw(`o.created_at < now() - (? * interval '1 millisecond')`, [f.stuckForMs]);
    if (f.planId || f.serviceId) {
      q.join('instances as i', 'i.id', 'o.instance_id');
      if (f.planId) q.where('i.plan_id', f.planId);
      if (f.serviceId) q.where('i.service_id', f.serviceId);
    }
    if (f.continue) {
      const [createdAt, id] = parseCursor(f.continue, 2);
      q.whereRaw('(o.created_at, o.id) < (?::timestamptz, ?)', [createdAt!, id!]);
    }
    const rows = (await q) as Array<Record<string, any>>;
    const page = rows.slice(0, f.limit);
    const items = page.map(
      (r): AdminOperation => ({
        id: r.id,
        instanceId: r.instance_id,
        bindingId: opt(r.binding_id) ?? null,
        kind: r.kind,
        state: r.state,
        description: r.description,
        attempts: r.attempts,
        leaseOwner: r.lease_expires_at && new Date(r.lease_expires_at).getTime() > Date.now() ? r.lease_owner : null,
        createdAt: iso(r.created_at)!,
        finishedAt: iso(r.finished_at),
        deadlineAt: iso(r.deadline_at),
      }),
    );
    // created_at to the microsecond, as the database has it, so the next page starts exactly after this one.
    const last = page[page.length - 1];
    if (rows.length <= f.limit || !last) return { items };
    const { rows: exact } = await db.raw(`SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t FROM operations WHERE id = ?`, [last.id]);
    return { items, continue: cursorOf([exact[0].t, last.id]) };
  }

  /** Admin actions recorded in the audit table, newest first. */
  async adminAudit(instanceId: string | undefined, limit: number): Promise<Array<Record<string, unknown>>> {
    const q = this.#db('audit_events').whereNotNull('actor').orderBy('id', 'desc').limit(limit);
    if (instanceId) q.where('instance_id', instanceId);
    const rows = (await q) as Array<Record<string, any>>;
    return rows.map((r) => ({
      at: iso(r.at),
      actor: r.actor,
      action: r.action,
      reason: r.reason,
      instanceId: r.instance_id,
      bindingId: r.binding_id ?? null,
      operationId: r.operation_id ?? null,
      outcome: r.outcome ?? null,
    }));
  }
}
