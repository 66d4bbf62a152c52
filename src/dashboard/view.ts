// What an instance's dashboard shows, gathered from Berth's records (stores),
// the catalog and the provisioner's read-only look (broker.resources). Secret
// values never leave this module: of a binding's credentials only the entry
// names are kept; parameters are not read at all.
import type { Catalog } from '../catalog/catalog.ts';
import type { Resources, ProvisionedResource } from '../broker/resources.ts';
import type { InstanceState, OperationKind, OperationState } from '../osb/model.ts';
import type { InstanceRecord } from '../store/instances.ts';
import type { Stores } from '../store/unit-of-work.ts';

/** Operations shown, newest first: enough for an instance's story, bounded for one with many bindings. */
const HISTORY = 50;
/** How long the page waits for the provisioner's look (a server that does not answer) before showing the rest. */
const LOOK_TIMEOUT_MS = 8_000;

export interface DashboardView {
  instanceId: string;
  state: InstanceState;
  serviceName: string;
  planName: string;
  planDescription: string | undefined;
  /** The provisioner kind (postgres, mysql, helm, user-provided, …). */
  kind: string;
  maintenance: Maintenance;
  operations: Array<{ kind: OperationKind; bindingId: string | undefined; state: OperationState; description: string; startedAt: Date; finishedAt: Date | undefined }>;
  bindings: Array<{ id: string; state: string; appGuid: string | undefined; entryNames: string[]; expiresAt: string | undefined }>;
  connect: { type: string | undefined; entryNames: string[] };
  /** What the provisioner made, looked at now (workloads and their readiness for Helm), or why it could not look. */
  resources: { items: ProvisionedResource[]; problem: string | undefined; takenAt: string };
}

export interface Maintenance {
  /** The version the instance runs (maintenance_info.version), as recorded. */
  instance: string | undefined;
  /** The version the plan has in this Berth's catalog now. */
  catalog: string | undefined;
  upgradeAvailable: boolean;
}

/**
 * The instance's maintenance version against the plan's in the catalog (issue 15 §1). The instance's own
 * version is the one recorded with it (set at provision and by an update carrying maintenance_info), else
 * that of the plan as recorded when it was provisioned or last updated.
 */
export function maintenanceOf(instance: Pick<InstanceRecord, 'maintenanceVersion' | 'planSnapshot'>, catalogVersion: string | undefined): Maintenance {
  const current = instance.maintenanceVersion ?? instance.planSnapshot?.maintenanceVersion;
  return { instance: current, catalog: catalogVersion, upgradeAvailable: catalogVersion !== undefined && catalogVersion !== current };
}

/** The credential entries every binding of the SQL kinds carries (sql/frame.ts). */
const SQL_ENTRIES = ['database', 'host', 'jdbc-url', 'password', 'port', 'type', 'uri', 'username'];

export class DashboardViews {
  readonly #stores: Stores;
  readonly #catalog: Catalog;
  readonly #resources: Resources;

  constructor(deps: { stores: Stores; catalog: Catalog; resources: Resources }) {
    this.#stores = deps.stores;
    this.#catalog = deps.catalog;
    this.#resources = deps.resources;
  }

  /** The instance's view, or undefined when Berth has no live instance by that id. */
  async of(instanceId: string): Promise<DashboardView | undefined> {
    const instance = await this.#stores.instances.get(instanceId);
    if (!instance || instance.state === 'deleted') return undefined;
    const [operations, bindings] = await Promise.all([this.#stores.operations.historyOf(instanceId, HISTORY), this.#stores.bindings.listLive(instanceId)]);
    const plan = this.#catalog.plan(instance.planId);
    const snapshot = instance.planSnapshot;
    const kind = snapshot?.provisioner.kind ?? plan?.provisioner.kind ?? 'unknown';
    const settings = snapshot?.provisioner.settings ?? plan?.provisioner.settings ?? {};
    const bindingViews = bindings.map((b) => ({
      id: b.id,
      state: b.state,
      appGuid: b.appGuid,
      entryNames: Object.keys(b.bindResponse?.credentials ?? {}).sort(),
      expiresAt: typeof b.metadata?.expires_at === 'string' ? b.metadata.expires_at : undefined,
    }));
    const bound = bindings.find((b) => b.bindResponse?.credentials);
    const look = await this.#resources.describe(instanceId, AbortSignal.timeout(LOOK_TIMEOUT_MS)).then(
      (r) => ({ items: r.resources, problem: r.problem, takenAt: r.takenAt }),
      (err: unknown) => ({ items: [], problem: `Could not look at what the provisioner made: ${(err as Error)?.message ?? String(err)}`, takenAt: new Date().toISOString() }),
    );
    return {
      instanceId,
      state: instance.state,
      serviceName: serviceNameOf(plan, snapshot?.service.name ?? instance.serviceId),
      planName: plan?.name ?? snapshot?.name ?? instance.planId,
      planDescription: typeof plan?.published.description === 'string' ? plan.published.description : undefined,
      kind,
      maintenance: maintenanceOf(instance, plan?.maintenanceVersion),
      operations: operations.map((o) => ({ kind: o.kind, bindingId: o.bindingId, state: o.state, description: o.description || o.state, startedAt: o.createdAt, finishedAt: o.finishedAt })),
      bindings: bindingViews,
      connect: {
        type: credentialTypeOf(bound?.bindResponse?.credentials?.type, kind, settings),
        entryNames: bound ? Object.keys(bound.bindResponse!.credentials!).sort() : plannedEntries(kind, settings),
      },
      resources: look,
    };
  }
}

function serviceNameOf(plan: ReturnType<Catalog['plan']>, fallback: string): string {
  const meta = plan?.service.published.metadata as { displayName?: unknown } | undefined;
  return typeof meta?.displayName === 'string' ? meta.displayName : (plan?.service.name ?? fallback);
}

/** postgresql, mysql, redis, … : what the credentials say, else what the plan declares. */
function credentialTypeOf(fromBinding: unknown, kind: string, settings: Record<string, unknown>): string | undefined {
  if (typeof fromBinding === 'string') return fromBinding;
  if (kind === 'postgres') return 'postgresql';
  if (kind === 'mysql') return 'mysql';
  const declared = (settings.credentials as { type?: unknown } | undefined)?.type;
  return typeof declared === 'string' ? declared : kind === 'user-provided' ? 'user-provided' : undefined;
}

/** The entry names a binding will carry, before there is one (none known for user-provided: the user chooses them). */
function plannedEntries(kind: string, settings: Record<string, unknown>): string[] {
  if (kind === 'postgres' || kind === 'mysql') return SQL_ENTRIES;
  const entries = (settings.credentials as { entries?: unknown } | undefined)?.entries;
  return entries && typeof entries === 'object' ? Object.keys(entries).sort() : [];
}
