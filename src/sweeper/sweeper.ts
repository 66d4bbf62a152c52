// The orphan sweeper: compares Berth's state with what exists on each backend, both ways.
//
// - Orphans: resources with Berth's names or labels (backends.ts) whose instance or binding Berth does
//   not know as live. Anything whose instance or binding is live, was changed within the grace period
//   (BERTH_SWEEP_GRACE_SECONDS) or has an unfinished operation is left out: a resource being made or
//   removed right now is no orphan. Kubernetes objects younger than the grace period are left out too.
// - Missing: live instances (and their bindings' logins) whose resources are gone, as the provisioner's
//   read-only `describe` reports them (state "missing"); instances busy or changed within the grace
//   period are not looked at.
//
// A sweep reports (log, metrics, the admin API's last report); it deletes orphans only when asked
// (`delete`), and then only those (or, with `only`, those of the listed ids) — never a missing resource's
// instance: that is an administrator's decision (repair or purge).
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Catalog, CatalogPlan } from '../catalog/catalog.ts';
import { PlanSnapshots, type PlanSnapshot } from '../catalog/plan-snapshot.ts';
import type { ProvisionedResource, ProvisionerRegistry } from '../provisioners/provisioner.ts';
import { nameHash, idHash } from '../lib/hash-names.ts';
import type { Stores } from '../store/unit-of-work.ts';
import type { Backend, Found } from './backends.ts';

export interface Orphan {
  /** What `only` names: backend/kind/[namespace/]name. */
  id: string;
  backend: string;
  kind: string;
  name: string;
  namespace?: string;
  /** The instance (and binding) it was made for, where the resource records the id. */
  instanceId?: string;
  bindingId?: string;
  /** With `delete`: whether it was removed, or why not. */
  deleted?: boolean;
  error?: string;
}

export interface MissingResource {
  instanceId: string;
  planId: string;
  bindingId?: string;
  kind: string;
  name: string;
  message?: string;
}

export interface SweepReport {
  startedAt: string;
  finishedAt: string;
  deleteRequested: boolean;
  orphans: Orphan[];
  missing: MissingResource[];
  /** Backends (or instances) that could not be looked at, and why: their orphans are unknown, not absent. */
  problems: Array<{ backend: string; message: string }>;
}

export class SweepInProgress extends Error {}

interface Known {
  /** Instances and bindings whose resources are not orphans (live, recently changed, or busy). */
  instanceIds: Set<string>;
  sqlInstanceHashes: Set<string>;
  kubeInstanceHashes: Set<string>;
  bindings: Set<string>;
  sqlBindingHashes: Set<string>;
}

export class OrphanSweeper {
  readonly #stores: Stores;
  readonly #catalog: Catalog;
  readonly #provisioners: ProvisionerRegistry;
  readonly #backends: () => Backend[] | Promise<Backend[]>;
  readonly #log: Logger;
  readonly #graceMs: number;
  readonly #snapshots: PlanSnapshots;
  readonly #orphansGauge: Gauge;
  readonly #missingGauge: Gauge;
  readonly #deleted: Counter;
  readonly #lastRun: Gauge;
  #running: Promise<SweepReport> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stop = new AbortController();
  last: SweepReport | undefined;

  constructor(deps: {
    stores: Stores;
    catalog: Catalog;
    provisioners: ProvisionerRegistry;
    backends: () => Backend[] | Promise<Backend[]>;
    log: Logger;
    graceMs: number;
    registry: Registry;
  }) {
    this.#stores = deps.stores;
    this.#catalog = deps.catalog;
    this.#provisioners = deps.provisioners;
    this.#backends = deps.backends;
    this.#log = deps.log.child({ component: 'sweeper' });
    this.#graceMs = deps.graceMs;
    this.#snapshots = new PlanSnapshots(deps.provisioners.parseConfig);
    const registers = [deps.registry];
    this.#orphansGauge = new Gauge({ name: 'berth_orphans', help: "Resources with Berth's names or labels and no live instance or binding, at the last sweep", labelNames: ['backend', 'kind'], registers });
    this.#missingGauge = new Gauge({ name: 'berth_missing_resources', help: 'Resources of live instances that were gone at the last sweep', labelNames: ['kind'], registers });
    this.#deleted = new Counter({ name: 'berth_orphans_deleted_total', help: 'Orphans the sweeper deleted (sweep with delete)', labelNames: ['backend', 'kind'], registers });
    this.#lastRun = new Gauge({ name: 'berth_sweep_last_run_timestamp_seconds', help: 'When the last sweep finished (Unix time)', registers });
  }

  /** A report-only sweep every `intervalMs` (0: none). */
  start(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.#timer = setInterval(() => {
      if (this.#running) return;
      this.sweep({ delete: false }).catch((err) => this.#log.warn({ err: (err as Error).message }, 'periodic sweep failed'));
    }, intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#stop.abort();
    await this.#running?.catch(() => {});
  }

  /** One sweep; refuses (SweepInProgress) while another runs. */
  sweep(opts: { delete: boolean; only?: string[] | undefined }): Promise<SweepReport> {
    if (this.#running) throw new SweepInProgress('a sweep is running already; wait for it (GET /admin/v1/sweep shows its report when it ends)');
    this.#running = this.#sweep(opts).finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #sweep(opts: { delete: boolean; only?: string[] | undefined }): Promise<SweepReport> {
    const startedAt = new Date().toISOString();
    const signal = this.#stop.signal;
    const report: SweepReport = { startedAt, finishedAt: startedAt, deleteRequested: opts.delete, orphans: [], missing: [], problems: [] };
    const backends = await this.#backends();
    // Berth's state is read before the backends: anything made after this read belongs to an instance
    // changed within the grace period, which this read (taken now) already counts as known.
    const known = await this.#known();
    for (const backend of backends) {
      let found: Found[] & { problems?: string[] };
      try {
        found = await backend.list(signal);
      } catch (err) {
        report.problems.push({ backend: backend.name, message: messageOf(err) });
        continue;
      }
      for (const message of found.problems ?? []) report.problems.push({ backend: backend.name, message });
      const orphans = found.filter((f) => this.#isOrphan(f, known));
      // Databases before the roles and users that may own them.
      orphans.sort((a, b) => rank(a.kind) - rank(b.kind));
      for (const f of orphans) {
        const orphan: Orphan = {
          id: orphanId(f),
          backend: f.backend,
          kind: f.kind,
          name: f.name,
          ...(f.namespace ? { namespace: f.namespace } : {}),
          ...('instanceId' in f.owner ? { instanceId: f.owner.instanceId, ...(f.owner.bindingId ? { bindingId: f.owner.bindingId } : {}) } : {}),
        };
        if (opts.delete && (!opts.only || opts.only.includes(orphan.id))) {
          try {
            await backend.remove(f, signal);
            orphan.deleted = true;
            this.#deleted.inc({ backend: f.backend, kind: f.kind });
            this.#log.info({ orphan: orphan.id }, 'orphan deleted');
          } catch (err) {
            orphan.deleted = false;
            orphan.error = messageOf(err);
            this.#log.warn({ orphan: orphan.id, err: orphan.error }, 'orphan could not be deleted');
          }
        }
        report.orphans.push(orphan);
      }
    }
    await this.#findMissing(report, signal);
    report.finishedAt = new Date().toISOString();
    this.#orphansGauge.reset();
    for (const o of report.orphans) if (!o.deleted) this.#orphansGauge.inc({ backend: o.backend, kind: o.kind });
    this.#missingGauge.reset();
    for (const m of report.missing) this.#missingGauge.inc({ kind: m.kind });
    this.#lastRun.set(Date.now() / 1000);
    this.#log.info(
      { orphans: report.orphans.length, deleted: report.orphans.filter((o) => o.deleted).length, missing: report.missing.length, problems: report.problems },
      'sweep finished',
    );
    this.last = report;
    return report;
  }

  async #known(): Promise<Known> {
    const knex = this.#stores.knex;
    const grace = this.#graceMs;
    const { rows: instances } = await knex.raw(
      `SELECT i.id FROM instances i
        WHERE i.state <> 'deleted' OR i.updated_at > now() - (? * interval '1 millisecond')
           OR EXISTS (SELECT 1 FROM operations o WHERE o.instance_id = i.id AND o.finished_at IS NULL)`,
      [grace],
    );
    const { rows: bindings } = await knex.raw(
      `SELECT b.instance_id, b.id FROM bindings b
        WHERE b.state <> 'deleted' OR b.updated_at > now() - (? * interval '1 millisecond')
           OR EXISTS (SELECT 1 FROM operations o WHERE o.instance_id = b.instance_id AND (o.binding_id = b.id OR o.binding_id IS NULL) AND o.finished_at IS NULL)`,
      [grace],
    );
    const known: Known = { instanceIds: new Set(), sqlInstanceHashes: new Set(), kubeInstanceHashes: new Set(), bindings: new Set(), sqlBindingHashes: new Set() };
    for (const { id } of instances as Array<{ id: string }>) {
      known.instanceIds.add(id);
      known.sqlInstanceHashes.add(nameHash('instance', id));
      known.kubeInstanceHashes.add(idHash(id));
    }
    for (const b of bindings as Array<{ instance_id: string; id: string }>) {
      known.bindings.add(JSON.stringify([b.instance_id, b.id]));
      known.sqlBindingHashes.add(nameHash('binding', b.instance_id, b.id));
    }
    return known;
  }

  #isOrphan(f: Found, known: Known): boolean {
    if (f.createdAt && Date.now() - new Date(f.createdAt).getTime() < this.#graceMs) return false;
    const o = f.owner;
    if ('bindingHash' in o) return !known.sqlBindingHashes.has(o.bindingHash);
    if ('instanceHash' in o) return !(o.hashOf === 'sql' ? known.sqlInstanceHashes : known.kubeInstanceHashes).has(o.instanceHash);
    if (o.bindingId !== undefined) return !known.bindings.has(JSON.stringify([o.instanceId, o.bindingId]));
    return !known.instanceIds.has(o.instanceId);
  }

  /** Live, settled instances whose provisioner reports a resource as missing. */
  async #findMissing(report: SweepReport, signal: AbortSignal): Promise<void> {
    const { rows } = await this.#stores.knex.raw(
      `SELECT i.id FROM instances i
        WHERE i.state = 'ready' AND i.updated_at <= now() - (? * interval '1 millisecond')
          AND NOT EXISTS (SELECT 1 FROM operations o WHERE o.instance_id = i.id AND o.finished_at IS NULL)
        ORDER BY i.id`,
      [this.#graceMs],
    );
    for (const { id } of rows as Array<{ id: string }>) {
      if (signal.aborted) return;
      try {
        const instance = await this.#stores.instances.get(id);
        if (!instance) continue;
        const plan = this.#planOf(instance.planSnapshot, instance.planId);
        if (!plan) continue;
        const provisioner = this.#provisioners.forPlan(plan);
        if (!provisioner.describe) continue;
        const bindings = (await this.#stores.bindings.listLive(id)).filter((b) => b.state === 'ready');
        const resources = await provisioner.describe(
          { id, serviceId: instance.serviceId, plan, parameters: instance.parameters, context: instance.context, organizationGuid: instance.organizationGuid, spaceGuid: instance.spaceGuid, state: instance.provisionerState },
          bindings.map((b) => ({ id: b.id, state: b.provisionerState })),
          signal,
        );
        for (const r of flatten(resources)) {
          if (r.state !== 'missing') continue;
          report.missing.push({ instanceId: id, planId: plan.id, ...(r.bindingId ? { bindingId: r.bindingId } : {}), kind: r.kind, name: r.name, ...(r.message ? { message: r.message } : {}) });
        }
      } catch (err) {
        report.problems.push({ backend: `instance ${id}`, message: messageOf(err) });
      }
    }
  }

  #planOf(snapshot: PlanSnapshot | undefined, planId: string): CatalogPlan | undefined {
    if (snapshot) {
      try {
        return this.#snapshots.plan(snapshot);
      } catch {
        // this process's catalog below
      }
    }
    return this.#catalog.plan(planId);
  }
}

function flatten(resources: ProvisionedResource[], bindingId?: string): ProvisionedResource[] {
  return resources.flatMap((r) => {
    const withBinding = r.bindingId || !bindingId ? r : { ...r, bindingId };
    return [withBinding, ...flatten(r.children ?? [], withBinding.bindingId)];
  });
}

export function orphanId(f: Pick<Found, 'backend' | 'kind' | 'name' | 'namespace' | 'host'>): string {
  return [f.backend, f.kind, ...(f.namespace ? [f.namespace] : []), f.host !== undefined ? `${f.name}@${f.host}` : f.name].join('/');
}

const rank = (kind: string) => ({ 'helm-release': 0, secret: 1, namespace: 2, database: 3 })[kind] ?? 4;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
