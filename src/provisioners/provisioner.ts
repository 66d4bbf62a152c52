// The one interface every provisioner kind implements. The operation engine
// calls these methods from a worker that holds a lease on the operation.
//
// The contract a provisioner must follow (the engine relies on it):
// - Every method may be called again after a crash, a lost lease or a retry,
//   with the same inputs and the state it checkpointed. Each must converge:
//   check before create ("create database D" first looks whether D exists),
//   treat "already gone" as success on delete, derive names from ids
//   (never random), and checkpoint anything random (passwords) *before*
//   using it, through `op.checkpoint`, so a re-run reuses it.
// - Long waits observe `op.signal`: it aborts when the operation is halted (a
//   delete arrived during a create), its deadline passes, its lease is lost
//   or the process is shutting down. Throw (any error) when it aborts. When
//   the lease cannot be renewed the engine aborts before it can expire, so a
//   provisioner that honours the signal never overlaps the next owner.
// - `op.checkpoint` is fenced: it stores only while this worker holds the
//   operation and throws otherwise (and on abort); `op.progress` never throws.
// - The engine reconciles by re-running: after a crash the next worker calls
//   the same method again (op.attempt > 1); each step looks at what exists
//   (and at op.state) and does only what is missing. `deprovision` and
//   `unbind` also run after a create that failed, timed out or was halted
//   half-way (a platform's orphan mitigation): remove whatever exists.
//   See docs/operations.md.
// - Throw `PermanentError` for failures that retrying cannot fix (bad values,
//   unsupported change); any other error is treated as transient and retried
//   with backoff until the attempt budget or the deadline is spent. Say
//   `causedByRequest: true` when the request's own data made it fail (a bind
//   naming a namespace that does not exist): a synchronous request is then
//   answered 400 instead of 500, after the engine undid what the operation
//   did (so the platform need not clean up). Prefer refusing such data
//   before it is queued (checkParameters, checkBind) where it can be seen.
// - Never log secrets; put progress a user can read in `op.progress`.
import type { Logger } from 'pino';
import type { CatalogPlan, PlanConfigContext } from '../catalog/catalog.ts';
import type { JsonObject, OperationKind } from '../osb/model.ts';

// Re-exported: provisioner modules (BERTH_PROVISIONER_MODULES) import what they need from this file alone.
export type { JsonObject, OperationKind } from '../osb/model.ts';
export { PermanentError, causedByRequest } from '../osb/errors.ts';

export interface InstanceView {
  id: string;
  serviceId: string;
  plan: CatalogPlan;
  parameters: JsonObject;
  context: JsonObject | undefined;
  organizationGuid: string | undefined;
  spaceGuid: string | undefined;
}

export interface OperationContext {
  operationId: string;
  /** 1 for the first run, higher after retries and takeovers. */
  attempt: number;
  signal: AbortSignal;
  log: Logger;
  /** Durable provisioner state of the instance (for instance operations) or the binding (for binding operations). */
  state: JsonObject;
  /** Merges `patch` into `state` and stores it (encrypted) before returning. */
  checkpoint(patch: JsonObject): Promise<void>;
  /** A short user-facing description, shown by last_operation while the operation runs. */
  progress(description: string): Promise<void>;
}

export interface InstanceOperation extends OperationContext {
  instance: InstanceView;
}

export interface UpdateOperation extends InstanceOperation {
  /** The plan and parameters before this update; `instance` holds the requested ones. */
  previous: { plan: CatalogPlan; parameters: JsonObject };
}

export interface BindingView {
  id: string;
  parameters: JsonObject;
  context: JsonObject | undefined;
  bindResource: JsonObject | undefined;
  appGuid: string | undefined;
  predecessorBindingId: string | undefined;
}

export interface BindingOperation extends OperationContext {
  instance: InstanceView & { state: JsonObject };
  binding: BindingView;
}

export interface Endpoint {
  host: string;
  ports: string[];
  protocol?: 'tcp' | 'udp' | 'all';
}

export interface InstanceResult {
  dashboardUrl?: string;
  /**
   * OSB instance metadata: `labels` (facts users see, e.g. the release or database name) and `attributes`.
   * Berth keeps it within 4,096 bytes of JSON (the longest attributes, then labels, are left out with a log
   * line; see src/operations/instance-metadata.ts). Returned by provision and update; an update that returns
   * none keeps what the instance had.
   */
  metadata?: { labels?: Record<string, string>; attributes?: Record<string, string> };
  /**
   * From update only: set when the update changed what existing bindings' credentials contain (host, port,
   * database, URI, the credentials themselves), as a sentence saying what changed (never a value), e.g.
   * "the instance's credentials parameters changed (keys: uri)". Berth marks the instance's bindings stale.
   */
  credentialsChanged?: string;
}

export interface BindResult {
  credentials: JsonObject;
  endpoints?: Endpoint[];
  metadata?: { expires_at?: string; renew_before?: string };
  syslogDrainUrl?: string;
  routeServiceUrl?: string;
  volumeMounts?: unknown[];
}

/**
 * One thing a provisioner made (or should have made), as `describe` reports it: a database, a role, a Helm
 * release, a Deployment, a Pod, a container. Never carries a secret value.
 */
export interface ProvisionedResource {
  /** What it is, in the words of where it lives: "Database", "Role", "User", "HelmRelease", "Deployment", "Pod", "Container". */
  kind: string;
  name: string;
  /** ready: there and working; not-ready: there, not (yet) working; failed: there and broken; missing: should be there, is not; unknown: could not be looked at. */
  state: ResourceState;
  /** What a reader needs to act on, in full (never cut). */
  message?: string;
  /** The OSB binding id this belongs to (a binding's login), so clients can hang it under the binding. */
  bindingId?: string;
  children?: ProvisionedResource[];
}

export type ResourceState = 'ready' | 'not-ready' | 'failed' | 'missing' | 'unknown';

/** A live binding as `describe` sees it: its id and its provisioner state (checkpoints). */
export interface DescribedBinding {
  id: string;
  state: JsonObject;
}

/** A binding whose credentials reached their `expires_at`, as Berth's expiry sweep hands it to its provisioner. */
export interface ExpiringBinding {
  instanceId: string;
  bindingId: string;
  /** The instance's and the binding's checkpointed provisioner state. */
  instanceState: JsonObject;
  bindingState: JsonObject;
  signal: AbortSignal;
}

export interface Provisioner {
  readonly kind: string;
  /** Validates a plan's `provisioner:` block (without `kind`); `plan` tells what else the plan declares. */
  parsePlanConfig(block: JsonObject, plan?: PlanConfigContext): { config: unknown } | { problems: Array<{ path: string; message: string }> };
  /** Whether this operation can only complete asynchronously for the plan. */
  isAsync(kind: OperationKind, plan: CatalogPlan): boolean;
  /** Parameters the broker must not echo back in GET responses (they are secrets). */
  readonly parametersAreSecret?: boolean;
  /** Rejects an update the provisioner can never perform (422), before anything is queued. */
  checkUpdate?(from: CatalogPlan, to: CatalogPlan): string | undefined;
  /** Rejects instance parameters (of a provision, or an update's merged ones) the provisioner can never use (400), before anything is queued. */
  checkParameters?(plan: CatalogPlan, parameters: JsonObject): string | undefined;
  /** Rejects a bind the provisioner can never perform (400), before anything is queued. */
  checkBind?(plan: CatalogPlan, instanceParameters: JsonObject, bindContext: JsonObject | undefined): string | undefined;
  /** Offline checks for `berth catalog validate` (e.g. render charts); returns problems. */
  validatePlan?(plan: CatalogPlan): Promise<string[]>;
  provision(op: InstanceOperation): Promise<InstanceResult | void>;
  update(op: UpdateOperation): Promise<InstanceResult | void>;
  deprovision(op: InstanceOperation): Promise<void>;
  bind(op: BindingOperation): Promise<BindResult>;
  unbind(op: BindingOperation): Promise<void>;
  /**
   * Read-only: what this instance's provisioning made, looked at now (catalog queries, helm status, the
   * Kubernetes API), with the login of each binding. Changes nothing; honours `signal`. An empty list means
   * the kind makes nothing outside Berth's own records. Optional for provisioner modules (BERTH_PROVISIONER_MODULES):
   * without it, Berth answers that the kind does not describe what it makes; every built-in kind has it.
   */
  describe?(instance: InstanceView & { state: JsonObject }, bindings: DescribedBinding[], signal: AbortSignal): Promise<ProvisionedResource[]>;
  /**
   * Makes a binding's credentials stop working: no new logins, and its sessions ended (kinds whose
   * bind answers `metadata.expires_at`). Called by Berth's expiry sweep (src/operations/credential-expiry.ts)
   * once `expires_at` has passed, possibly more than once and concurrently with an unbind or a
   * deprovision: converge, and treat "already gone" as done.
   */
  expireBinding?(binding: ExpiringBinding): Promise<void>;
  /** Releases connections the provisioner keeps (called once, at shutdown). */
  close?(): Promise<void>;
  /** At start: logs what the operator should change on the servers `plans` use (e.g. access other tenants have). Never throws. */
  inspectServers?(plans: CatalogPlan[], signal: AbortSignal): Promise<void>;
}

/** Parses a plan's `provisioner:` block with a zod schema, as parsePlanConfig returns it. */
export function parsePlanBlock(
  schema: { safeParse(v: unknown): { success: true; data: unknown } | { success: false; error: { issues: Array<{ path: PropertyKey[]; message: string }> } } },
  block: JsonObject,
): { config: unknown } | { problems: Array<{ path: string; message: string }> } {
  const parsed = schema.safeParse(block);
  if (!parsed.success) return { problems: parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })) };
  return { config: parsed.data };
}

/** Hooks that run after the provisioner, inside the operation (e.g. writing a binding Secret into Kubernetes). */
export interface BindingHooks {
  afterBind?(op: BindingOperation, credentials: JsonObject): Promise<void>;
  beforeUnbind?(op: BindingOperation): Promise<void>;
}

export class ProvisionerRegistry {
  readonly #kinds = new Map<string, Provisioner>();

  constructor(provisioners: Provisioner[]) {
    for (const p of provisioners) this.#kinds.set(p.kind, p);
  }

  get(kind: string): Provisioner {
    const p = this.#kinds.get(kind);
    if (!p) throw new Error(`no provisioner of kind "${kind}"`);
    return p;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#kinds.values()].map((p) => p.close?.()));
  }

  /** Runs every kind's inspectServers on its plans (at start, in the background; `signal` ends it at shutdown). */
  async inspectServers(plans: readonly CatalogPlan[], signal: AbortSignal): Promise<void> {
    await Promise.allSettled([...this.#kinds.values()].map((p) => p.inspectServers?.(plans.filter((plan) => plan.provisioner.kind === p.kind), signal)));
  }

  forPlan(plan: CatalogPlan): Provisioner {
    return this.get(plan.provisioner.kind);
  }

  readonly parseConfig = (kind: string, block: JsonObject, plan?: PlanConfigContext) => {
    const p = this.#kinds.get(kind);
    if (!p) {
      return { problems: [{ path: 'kind', message: `unknown provisioner kind "${kind}"; known kinds: ${[...this.#kinds.keys()].join(', ')}` }] };
    }
    if ('credential_lifetime' in block && !p.expireBinding) {
      // Said here, once for every kind, rather than as each kind's "unknown setting".
      const { credential_lifetime: _, ...rest } = block;
      const others = p.parsePlanConfig(rest, plan);
      const canExpire = [...this.#kinds.values()].filter((k) => k.expireBinding).map((k) => k.kind);
      const problem = {
        path: 'credential_lifetime',
        message: `kind ${kind} cannot make credentials expire (only ${canExpire.join(' and ') || 'no kind'} can); remove credential_lifetime from this plan`,
      };
      return { problems: [...('problems' in others ? others.problems : []), problem] };
    }
    return p.parsePlanConfig(block, plan);
  };
}
