// The broker: the OSB rules and Berth's state, behind one object the HTTP
// layer calls. No Express and no SQL here (docs/architecture.md).
import type { Catalog } from '../catalog/catalog.ts';
import type { ClusterCheck } from '../kubernetes/clusters.ts';
import type { OperationEngine } from '../operations/worker.ts';
import type { ProvisionerRegistry } from '../provisioners/provisioner.ts';
import type { Stores } from '../store/unit-of-work.ts';
import { Bindings } from './bindings.ts';
import { Instances } from './instances.ts';
import { Queueing } from './queueing.ts';
import { Resources } from './resources.ts';
import { Rules } from './rules.ts';

export interface Broker {
  catalog: Catalog;
  instances: Instances;
  bindings: Bindings;
  /** What the provisioner made for an instance, looked at now (Berth's own endpoint, not OSB). */
  resources: Resources;
  /** Resolves true when the operation ends, false when `signal` aborts first (a long-polled last_operation). */
  operationEnd(operationId: string, signal: AbortSignal): Promise<boolean>;
}

/** `dashboardUrl`: Berth's own dashboard link of an instance (src/dashboard), when dashboards are configured. */
export function createBroker(deps: {
  catalog: Catalog;
  stores: Stores;
  provisioners: ProvisionerRegistry;
  engine: OperationEngine;
  dashboardUrl?: (instanceId: string) => string;
  /** With several Kubernetes clusters (BERTH_CLUSTERS_FILE): which context.clusterid a request may name. */
  clusters?: ClusterCheck;
}): Broker {
  const rules = new Rules(deps.catalog, deps.provisioners, deps.clusters);
  const queueing = new Queueing(deps.engine);
  return {
    catalog: deps.catalog,
    instances: new Instances(deps.stores, rules, queueing, deps.dashboardUrl),
    bindings: new Bindings(deps.stores, rules, queueing),
    resources: new Resources(deps.stores, rules, deps.provisioners),
    operationEnd: (operationId, signal) => deps.engine.nextEnd(operationId, signal),
  };
}
