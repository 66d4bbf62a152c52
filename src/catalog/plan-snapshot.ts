// What an operation needs of its plan, stored with the instance and the
// operation when a request is accepted. Replicas may run different catalogs
// (a rolling update, a plan retired while instances remain), so the worker that
// runs an operation, and a later delete of the instance, use this record of the
// plan, never whatever plan the replica's own catalog has under that id.
//
// The provisioner block is kept as written in the catalog (it holds no secrets)
// and parsed again by the running process, so a snapshot stays in the
// catalog's documented format rather than in one version's parsed shape.
import type { CatalogPlan, CatalogService, ProvisionerConfigParser } from './catalog.ts';

export interface PlanSnapshot {
  id: string;
  name: string;
  bindable: boolean;
  planUpdateable: boolean;
  bindingRotatable: boolean;
  maximumPollingDurationSeconds?: number;
  maintenanceVersion?: string;
  requiresApp: boolean;
  bindingSecret?: boolean;
  provisioner: { kind: string; settings: Record<string, unknown> };
  service: RecordedService;
}

/** What a recorded plan keeps of its service: everything but the published form and the other plans. */
type RecordedService = Omit<CatalogService, 'plans' | 'published'>;

export function snapshotOf(plan: CatalogPlan): PlanSnapshot {
  const s = plan.service;
  return {
    id: plan.id,
    name: plan.name,
    bindable: plan.bindable,
    planUpdateable: plan.planUpdateable,
    bindingRotatable: plan.bindingRotatable,
    ...(plan.maximumPollingDurationSeconds !== undefined ? { maximumPollingDurationSeconds: plan.maximumPollingDurationSeconds } : {}),
    ...(plan.maintenanceVersion !== undefined ? { maintenanceVersion: plan.maintenanceVersion } : {}),
    requiresApp: plan.options.requiresApp,
    ...(plan.options.bindingSecret !== undefined ? { bindingSecret: plan.options.bindingSecret } : {}),
    provisioner: { kind: plan.provisioner.kind, settings: plan.provisioner.settings },
    service: {
      id: s.id,
      name: s.name,
      bindable: s.bindable,
      instancesRetrievable: s.instancesRetrievable,
      bindingsRetrievable: s.bindingsRetrievable,
      allowContextUpdates: s.allowContextUpdates,
      requires: s.requires,
    } satisfies Required<RecordedService>,
  };
}

/** This process cannot run a plan recorded by another one (e.g. a provisioner kind it does not load); retrying elsewhere may work. */
export class UnusableSnapshot extends Error {}

/** Turns snapshots back into plans with this process's provisioners; each distinct snapshot is parsed once. */
export class PlanSnapshots {
  readonly #parse: ProvisionerConfigParser;
  readonly #plans = new Map<string, CatalogPlan>();

  constructor(parse: ProvisionerConfigParser) {
    this.#parse = parse;
  }

  plan(snapshot: PlanSnapshot): CatalogPlan {
    const key = JSON.stringify(snapshot);
    const known = this.#plans.get(key);
    if (known) return known;
    const parsed = this.#parse(snapshot.provisioner.kind, snapshot.provisioner.settings);
    if ('problems' in parsed) {
      const problems = parsed.problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ');
      throw new UnusableSnapshot(`this Berth process cannot use the recorded provisioner settings of plan "${snapshot.name}" (${snapshot.id}): ${problems}`);
    }
    const service: CatalogService = { ...snapshot.service, plans: [], published: {} };
    const plan: CatalogPlan = {
      id: snapshot.id,
      name: snapshot.name,
      service,
      bindable: snapshot.bindable,
      planUpdateable: snapshot.planUpdateable,
      bindingRotatable: snapshot.bindingRotatable,
      maximumPollingDurationSeconds: snapshot.maximumPollingDurationSeconds,
      maintenanceVersion: snapshot.maintenanceVersion,
      // Parameters were validated when the request was accepted.
      schemas: {},
      provisioner: { kind: snapshot.provisioner.kind, config: parsed.config, settings: snapshot.provisioner.settings },
      options: { requiresApp: snapshot.requiresApp, bindingSecret: snapshot.bindingSecret },
      published: {},
    };
    service.plans.push(plan);
    this.#plans.set(key, plan);
    return plan;
  }
}
