// What an instance's provisioning made, looked at now (Berth's own read-only
// endpoint, outside /v2: GET /berth/v1/service_instances/:id/resources). The
// instance, its plan and its live bindings with their provisioner checkpoints
// come from the stores; the provisioner of the plan's kind looks at the
// database server or the cluster. Nothing here changes anything.
import { errors } from '../osb/errors.ts';
import type { ProvisionedResource, ProvisionerRegistry } from '../provisioners/provisioner.ts';

export type { ProvisionedResource };
import type { Stores } from '../store/unit-of-work.ts';
import type { Rules } from './rules.ts';

/** How long one look may take before the caller gets what is known (a server that does not answer). */
const DESCRIBE_TIMEOUT_MS = 30_000;

export interface ProvisionedResources {
  instanceId: string;
  /** The provisioner kind of the instance's plan. */
  kind: string;
  /** The instance's state in Berth's records (e.g. succeeded, updating, create_failed). */
  instanceState: string;
  /** When the look was taken (ISO 8601). */
  takenAt: string;
  /** Bindings Berth knows for the instance (OSB ids). */
  bindingIds: string[];
  resources: ProvisionedResource[];
  /** Set when the provisioner could not look (server unreachable, kind without describe). */
  problem?: string;
}

export class Resources {
  readonly #stores: Stores;
  readonly #rules: Rules;
  readonly #provisioners: ProvisionerRegistry;

  constructor(stores: Stores, rules: Rules, provisioners: ProvisionerRegistry) {
    this.#stores = stores;
    this.#rules = rules;
    this.#provisioners = provisioners;
  }

  async describe(instanceId: string, signal?: AbortSignal): Promise<ProvisionedResources> {
    const instance = await this.#stores.instances.get(instanceId);
    if (!instance || instance.state === 'deleted') throw errors.instanceNotFound(instanceId);
    const plan = this.#rules.instancePlanOrRefuse(instance);
    const bindings = await this.#stores.bindings.listLive(instanceId);
    const answer: ProvisionedResources = {
      instanceId,
      kind: plan.provisioner.kind,
      instanceState: instance.state,
      takenAt: new Date().toISOString(),
      bindingIds: bindings.map((b) => b.id),
      resources: [],
    };
    const provisioner = this.#provisioners.forPlan(plan);
    if (!provisioner.describe) return { ...answer, problem: `Provisioner kind "${plan.provisioner.kind}" does not describe what it makes.` };
    const view = {
      id: instance.id,
      serviceId: instance.serviceId,
      plan,
      parameters: instance.parameters,
      context: instance.context,
      organizationGuid: instance.organizationGuid,
      spaceGuid: instance.spaceGuid,
      state: instance.provisionerState,
    };
    const timeout = AbortSignal.timeout(DESCRIBE_TIMEOUT_MS);
    try {
      const resources = await provisioner.describe(view, bindings.map((b) => ({ id: b.id, state: b.provisionerState })), signal ? AbortSignal.any([signal, timeout]) : timeout);
      return { ...answer, resources };
    } catch (err) {
      // The look failed, not the request: say why, as the provisioner words it (its errors name servers and
      // variables, never secret values).
      const why = timeout.aborted ? `no answer within ${DESCRIBE_TIMEOUT_MS / 1000} s` : ((err as Error)?.message ?? String(err));
      return { ...answer, problem: `The ${plan.provisioner.kind} provisioner could not look at what it made: ${why}` };
    }
  }
}
