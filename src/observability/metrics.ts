import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Catalog } from '../catalog/catalog.ts';
import { standingOf } from '../catalog/maintenance.ts';
import type { InstanceStore } from '../store/instances.ts';
import { atMostEvery } from './probes.ts';

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'route' | 'method' | 'status'>;
  httpDuration: Histogram<'route' | 'method'>;
  operationDuration: Histogram<'kind' | 'state'>;
  operationsInFlight: Gauge;
}

function histogram<L extends string>(registry: Registry, name: string, help: string, labelNames: L[], buckets: number[]): Histogram<L> {
  return new Histogram({ name, help, labelNames, buckets, registers: [registry] });
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'berth_' });
  return {
    registry,
    httpRequests: new Counter({
      name: 'berth_http_requests_total',
      help: 'HTTP requests by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    }),
    httpDuration: histogram(registry, 'berth_http_request_duration_seconds', 'HTTP request duration', ['route', 'method'], [
      0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]),
    operationDuration: histogram(registry, 'berth_operation_duration_seconds', 'Duration of operation runs by kind and final state of the run', ['kind', 'state'], [
      0.01, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800,
    ]),
    operationsInFlight: new Gauge({
      name: 'berth_operations_in_flight',
      help: 'Operations this process is running now',
      registers: [registry],
    }),
  };
}

/**
 * berth_instances_behind_maintenance{service, plan, plan_id, version}: instances whose maintenance version is below
 * their plan's in this process's catalog (an upgrade is available for them; README, "Upgrades"). Every plan with
 * a maintenance version has a series, 0 when all its instances are current, so an alert can compare. Returns the
 * refresh to run before a scrape; it reads the database at most once per `intervalMs`.
 */
export function maintenanceGauge(
  registry: Registry,
  catalog: Pick<Catalog, 'plans'>,
  stores: { instances: Pick<InstanceStore, 'countByMaintenance'> },
  intervalMs: number,
): () => Promise<void> {
  const gauge = new Gauge({
    name: 'berth_instances_behind_maintenance',
    help: "Instances whose maintenance_info version is below their plan's in the catalog (berth upgrade --all moves them)",
    labelNames: ['service', 'plan', 'plan_id', 'version'],
    registers: [registry],
  });
  const plans = catalog.plans.filter((p) => p.maintenanceVersion !== undefined);
  return atMostEvery(intervalMs, async () => {
    const behind = new Map<string, number>(plans.map((p) => [p.id, 0]));
    for (const row of await stores.instances.countByMaintenance()) {
      const plan = plans.find((p) => p.id === row.planId);
      if (plan && standingOf(row.maintenanceVersion, plan.maintenanceVersion) === 'behind') behind.set(plan.id, behind.get(plan.id)! + row.n);
    }
    gauge.reset();
    for (const p of plans) gauge.set({ service: p.service.name, plan: p.name, plan_id: p.id, version: p.maintenanceVersion! }, behind.get(p.id)!);
  });
}
