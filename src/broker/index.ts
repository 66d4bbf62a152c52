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

export function createBroker(deps: { catalog: Catalog; stores: Stores; provisioners: ProvisionerRegistry; engine: OperationEngine; clusters?: ClusterCheck }): Broker {
  const rules = new Rules(deps.catalog, deps.provisioners, deps.clusters);
  const queueing = new Queueing(deps.engine);
  return {
    catalog: deps.catalog,
    instances: new Instances(deps.stores, rules, queueing),
    bindings: new Bindings(deps.stores, rules, queueing),
    resources: new Resources(deps.stores, rules, deps.provisioners),
    operationEnd: (operationId, signal) => deps.engine.nextEnd(operationId, signal),
  };
}
