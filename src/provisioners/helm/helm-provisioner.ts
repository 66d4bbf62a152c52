// `helm`: an instance is a Helm release (Helm 4 CLI) of a chart into the
// cluster, in a namespace of its own or a fixed one. Every step converges when
// re-run: names derive from the instance id, install is `upgrade --install`,
// a release left pending by a crash is repaired, delete tolerates "not found".
import { dirname, isAbsolute, resolve } from 'node:path';
import { mkdir } from 'node:fs/promises';
import type { V1Secret, V1Service } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { Config } from '../../config.ts';
import type { CatalogPlan, PlanConfigContext } from '../../catalog/catalog.ts';
import {
  PermanentError,
  type BindResult,
  type BindingOperation,
  type DescribedBinding,
  type InstanceOperation,
  type InstanceResult,
  type InstanceView,
  type ProvisionedResource,
  type UpdateOperation,
  type JsonObject,
  type Provisioner,
} from '../provisioner.ts';
import type { KubernetesAccess } from '../../kubernetes/client.ts';
import { KubernetesClusters, namingCluster } from '../../kubernetes/clusters.ts';
import { kubernetesFailure, reasonOf, statusOf } from '../../kubernetes/errors.ts';
import { ensureReleaseAccess } from '../../kubernetes/namespace-access.ts';
import { INSTANCE_ID_ANNOTATION, INSTANCE_LABEL, MANAGED_BY, idHash } from '../../kubernetes/names.ts';
import { helm, HelmError, isTransientHelmError, type HelmRunOptions } from './helm-cli.ts';
import { parseHelmPlan, type HelmPlanConfig } from './config.ts';
import { readiness, workloadsIn } from './workloads.ts';
import { describeRelease, type ReleaseStatus } from './describe.ts';
import { expand, parseSource, resolveEntries, type Lookup } from './credential-entries.ts';
import { deepMerge, setPath } from './values.ts';
import {
  bindingLoginName,
  createPostgresLogin,
  createRedisLogin,
  dropPostgresLogin,
  dropRedisLogin,
  generatePassword,
  withServiceForward,
  type Login,
  type PerBinding,
} from './per-binding.ts';

export function releaseName(instanceId: string): string {
  return `b-${idHash(instanceId)}`;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((res, rej) => {
    const t = setTimeout(res, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      rej(signal.reason ?? new Error('aborted'));
    }, { once: true });
  });

export class HelmProvisioner implements Provisioner {
  readonly kind = 'helm';
  readonly #config: Config;
  readonly #clusters: KubernetesClusters;
  readonly #catalogDir: string;

  constructor(config: Config, kube: KubernetesAccess | KubernetesClusters) {
    this.#config = config;
    this.#clusters = KubernetesClusters.of(config, kube);
    this.#catalogDir = dirname(config.catalogPath);
  }

  /** The cluster an instance's release lives in: the one its provision remembered (state.cluster). */
  #kubeOf(state: JsonObject): KubernetesAccess {
    return this.#clusters.remembered(typeof state.cluster === 'string' ? state.cluster : undefined);
  }

  /**
   * Where a provision or update applies the release: the remembered cluster once there is one (an instance never
   * moves, whatever an update's context says); at the first provision, the one its context names.
   */
  #kubeToApply(op: InstanceOperation): KubernetesAccess {
    if (op.state.cluster !== undefined || op.state.release !== undefined) return this.#kubeOf(op.state);
    const kube = this.#clusters.forContext(op.instance.context);
    // Refused before queuing (the provision's check); here only if the clusters file changed meanwhile.
    if (!kube) throw new PermanentError(this.#clusters.refusal(op.instance.context, true)!);
    return kube;
  }

  parsePlanConfig(block: JsonObject, plan?: PlanConfigContext) {
    return parseHelmPlan(block, plan);
  }

  isAsync(): boolean {
    return true;
  }

  #plan(plan: CatalogPlan): HelmPlanConfig {
    return plan.provisioner.config as HelmPlanConfig;
  }

  #helmOptions(kube: KubernetesAccess | undefined, signal?: AbortSignal): HelmRunOptions {
    return { bin: this.#config.helmBin ?? 'helm', kubeconfig: kube?.kubeconfigPath, home: resolve(this.#config.dataDir, 'helm'), signal };
  }

  #chartArgs(c: HelmPlanConfig): string[] {
    if (c.repository) return [c.chart, '--repo', c.repository, '--version', c.version!];
    if (c.chart.startsWith('oci://')) return [c.chart, '--version', c.version!];
    return [isAbsolute(c.chart) ? c.chart : resolve(this.#catalogDir, c.chart)];
  }

  #namespace(c: HelmPlanConfig, instanceId: string): string {
    return c.namespace.strategy === 'fixed' ? c.namespace.name : `${c.namespace.prefix}${idHash(instanceId)}`;
  }

  #values(plan: CatalogPlan, instanceId: string, parameters: JsonObject): JsonObject {
    const c = this.#plan(plan);
    const fromParameters: JsonObject = {};
    for (const [param, path] of Object.entries(c.parameters)) {
      if (parameters[param] !== undefined) setPath(fromParameters, path, parameters[param]);
    }
    const labels = { [INSTANCE_LABEL]: idHash(instanceId), 'berth.dev/plan': plan.id.toLowerCase().replace(/[^a-z0-9.-]/g, '-').slice(0, 63).replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '') || 'plan' };
    return deepMerge(deepMerge(c.values, fromParameters), { commonLabels: labels });
  }

  async #run(kube: KubernetesAccess, args: string[], op: { signal: AbortSignal }, input?: string): Promise<string> {
    try {
      return await helm(args, { ...this.#helmOptions(kube, op.signal), input });
    } catch (err) {
      if (err instanceof HelmError && err.exitCode !== undefined && !isTransientHelmError(err)) throw new PermanentError(err.message, { cause: err });
      if (err instanceof HelmError && /was not found; set BERTH_HELM_BIN/.test(err.message)) throw new PermanentError(err.message);
      throw err;
    }
  }

  async #releaseStatus(kube: KubernetesAccess, release: string, namespace: string, op: { signal: AbortSignal }): Promise<string | undefined> {
    try {
      const out = await helm(['status', release, '--namespace', namespace, '--output', 'json'], this.#helmOptions(kube, op.signal));
      return (JSON.parse(out) as { info?: { status?: string } }).info?.status;
    } catch (err) {
      if (err instanceof HelmError && /not found/i.test(err.stderr)) return undefined;
      throw err;
    }
  }

  /** The release namespace exists (created for the instance, or the plan's fixed one) and Berth may install into it. */
  async #ensureNamespace(kube: KubernetesAccess, c: HelmPlanConfig, instanceId: string, namespace: string, signal: AbortSignal): Promise<void> {
    if (c.namespace.strategy === 'fixed') return ensureReleaseAccess(kube, namespace, false, signal);
    const core = await kube.api((k8s) => k8s.CoreV1Api);
    try {
      // The labels are what deploy/admission-policy.yaml checks before Berth may write into or delete the namespace.
      await core.createNamespace({
        body: {
          metadata: { name: namespace, labels: { ...MANAGED_BY, [INSTANCE_LABEL]: idHash(instanceId) }, annotations: { [INSTANCE_ID_ANNOTATION]: instanceId } },
        },
      });
    } catch (err) {
      if (statusOf(err) !== 409) throw kubernetesFailure(err, `create namespace ${namespace}`);
      let existing;
      try {
        existing = await core.readNamespace({ name: namespace });
      } catch (readErr) {
        throw kubernetesFailure(readErr, `read namespace ${namespace}`);
      }
      if (existing.metadata?.deletionTimestamp) throw new Error(`namespace ${namespace} is still being deleted`);
      if (existing.metadata?.annotations?.[INSTANCE_ID_ANNOTATION] !== instanceId) {
        throw new PermanentError(`Namespace ${namespace} exists and does not belong to this instance; Berth will not use it.`);
      }
    }
    await ensureReleaseAccess(kube, namespace, true, signal);
  }

  /** install-or-upgrade, then wait until the workloads are really ready; answers the instance metadata. */
  async #apply(op: InstanceOperation, change: 'install' | 'upgrade'): Promise<InstanceResult> {
    const kube = this.#kubeToApply(op);
    return namingCluster(kube, () => this.#applyIn(kube, op, change));
  }

  async #applyIn(kube: KubernetesAccess, op: InstanceOperation, change: 'install' | 'upgrade'): Promise<InstanceResult> {
    const plan = op.instance.plan;
    const c = this.#plan(plan);
    await kube.kubeConfig(); // fails fast with what to configure
    const release = releaseName(op.instance.id);
    const namespace = this.#namespace(c, op.instance.id);
    // The cluster is remembered only when Berth serves several: state stays as it was with one.
    await op.checkpoint({ release, namespace, ...(kube.clusterId !== undefined ? { cluster: kube.clusterId } : {}) });
    await mkdir(resolve(this.#config.dataDir, 'helm'), { recursive: true });
    await op.progress(`Preparing namespace ${namespace}`);
    await this.#ensureNamespace(kube, c, op.instance.id, namespace, op.signal);

    await op.progress(change === 'install' ? `Installing chart as release ${release} in ${namespace}` : `Upgrading release ${release} in ${namespace}`);
    const values = JSON.stringify(this.#values(plan, op.instance.id, op.instance.parameters));
    const upgrade = () =>
      this.#run(
        kube,
        ['upgrade', release, ...this.#chartArgs(c), '--install', '--namespace', namespace, '--values', '-', '--timeout', `${c.timeout}s`, '--wait=hookOnly', '--output', 'json'],
        op,
        values,
      );
    let output: string;
    try {
      output = await upgrade();
    } catch (err) {
      // A crash can leave the release pending; helm refuses to touch it until it is repaired.
      if (!/another operation \(install\/upgrade\/rollback\) is in progress/.test(String((err as HelmError).stderr ?? (err as Error).message))) throw err;
      const status = await this.#releaseStatus(kube, release, namespace, op);
      if (!status?.startsWith('pending-')) throw err;
      if (op.attempt < 3) throw new Error(`release ${release} is ${status}; another helm may still be working on it`);
      op.log.warn({ release, status }, 'repairing a release left pending');
      if (status === 'pending-install') await this.#run(kube, ['uninstall', release, '--namespace', namespace, '--wait'], op);
      else await this.#run(kube, ['rollback', release, '--namespace', namespace, '--wait'], op);
      output = await upgrade();
    }
    const installed = JSON.parse(output) as HelmReleaseJson;
    const workloads = workloadsIn(installed.manifest ?? '');
    const until = Date.now() + c.timeout * 1000;
    // Start polling fast (small charts are ready within a second), back off to 2 s.
    for (let pause = 250; ; pause = Math.min(2000, Math.round(pause * 1.5))) {
      let r;
      try {
        r = await readiness(kube, namespace, workloads);
      } catch (err) {
        throw kubernetesFailure(err, `read the workloads of release ${release} in namespace ${namespace}`);
      }
      if (r.ready) return { metadata: releaseMetadata(release, namespace, installed) };
      if (Date.now() > until) {
        throw new PermanentError(`The workloads of release ${release} did not become ready within ${c.timeout} s: ${r.detail}`, {
          instanceUsable: false,
        });
      }
      await op.progress(`Waiting for workloads to become ready: ${r.detail}`);
      await sleep(pause, op.signal);
    }
  }

  async provision(op: InstanceOperation): Promise<InstanceResult> {
    return this.#apply(op, 'install');
  }

  /**
   * Upgrades the release; when that changed what the plan's credential entries resolve to (a Service
   * renamed or moved to another port, a chart Secret's value), says so, and Berth marks the bindings stale.
   * Compared without the bindings' own logins (per_binding): those do not change with the release.
   */
  async update(op: UpdateOperation): Promise<InstanceResult> {
    const kube = this.#kubeToApply(op);
    const before = await this.#sharedCredentials(kube, op.previous.plan, op.instance.id, op.log);
    const result = await this.#upgrade(op);
    const after = before && (await this.#sharedCredentials(kube, op.instance.plan, op.instance.id, op.log));
    if (!before || !after) return result;
    const changed = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => before[k] !== after[k]).sort();
    if (changed.length === 0) return result;
    return { ...result, credentialsChanged: `An update of the instance changed the credential entries ${changed.join(', ')} of its release; bind again (or rotate) to get the new values.` };
  }

  /**
   * What every binding's credentials share under `plan` (its entries, the bindings' own logins left as
   * placeholders), read now; undefined when they cannot be read (no credentials mapped, the release not
   * there or broken): then nothing is compared, and nothing marked.
   */
  async #sharedCredentials(kube: KubernetesAccess, plan: CatalogPlan, instanceId: string, log: InstanceOperation['log']): Promise<Record<string, string> | undefined> {
    const c = this.#plan(plan);
    if (!c.credentials || !kube.configured) return undefined;
    const namespace = this.#namespace(c, instanceId);
    const vars = { release: releaseName(instanceId), namespace, instance_id: instanceId };
    try {
      const own: Record<string, string> = c.credentials.per_binding ? { username: '\u0000binding-username', password: '\u0000binding-password' } : {};
      return { type: c.credentials.type ?? '', provider: c.credentials.provider ?? '', ...(await resolveEntries(c.credentials.entries, vars, await this.#lookup(kube, namespace), own)) };
    } catch (err) {
      log.info({ err: reasonOf(err) }, 'could not read the credential entries to compare before and after the update');
      return undefined;
    }
  }

  /** Reads the release's Secrets and Services (each once) for credential entries. */
  async #lookup(kube: KubernetesAccess, namespace: string): Promise<Lookup> {
    const core = await kube.api((k8s) => k8s.CoreV1Api);
    const secrets = new Map<string, V1Secret>();
    const services = new Map<string, V1Service>();
    return {
      secret: async (name: string) => {
        if (!secrets.has(name)) secrets.set(name, await core.readNamespacedSecret({ name, namespace }));
        return secrets.get(name)!;
      },
      service: async (name: string) => {
        if (!services.has(name)) services.set(name, await core.readNamespacedService({ name, namespace }));
        return services.get(name)!;
      },
    };
  }

  /** A plan change, a parameter change, or a maintenance upgrade to the plan's new chart version and values. */
  async #upgrade(op: UpdateOperation): Promise<InstanceResult> {
    try {
      return await this.#apply(op, 'upgrade');
    } catch (err) {
      // helm refused the upgrade (a chart that does not render, a resource the API server rejects): say whether
      // the release still runs what it ran before, which is what instance_usable tells the platform.
      if (!(err instanceof PermanentError) || !(err.cause instanceof HelmError) || err.instanceUsable === false) throw err;
      const release = releaseName(op.instance.id);
      const namespace = this.#namespace(this.#plan(op.instance.plan), op.instance.id);
      let status: string | undefined;
      try {
        status = await this.#releaseStatus(this.#kubeToApply(op), release, namespace, op);
      } catch {
        throw err;
      }
      if (status === 'deployed') {
        throw new PermanentError(`${err.message} (release ${release} was not changed: it still runs its previous revision, so the instance works as before)`, {
          instanceUsable: true,
          cause: err.cause,
        });
      }
      throw new PermanentError(`${err.message} (release ${release} is now ${status ?? 'gone'})`, { instanceUsable: false, cause: err.cause });
    }
  }

  async deprovision(op: InstanceOperation): Promise<void> {
    // Nothing can have been created before the provision checkpointed where (release, cluster).
    if (this.#clusters.several && !op.state.release) return;
    const kube = this.#kubeOf(op.state);
    await namingCluster(kube, () => this.#deprovisionIn(kube, op));
  }

  async #deprovisionIn(kube: KubernetesAccess, op: InstanceOperation): Promise<void> {
    const c = this.#plan(op.instance.plan);
    if (!kube.configured) {
      // Nothing can have been created in a cluster Berth never knew about.
      if (!op.state.release) return;
      await kube.kubeConfig();
    }
    const release = releaseName(op.instance.id);
    const namespace = this.#namespace(c, op.instance.id);
    const core = await kube.api((k8s) => k8s.CoreV1Api);
    const perInstance = c.namespace.strategy === 'per-instance';
    let ns;
    try {
      ns = await core.readNamespace({ name: namespace });
    } catch (err) {
      // No namespace, no release: Helm keeps its release records in the release's namespace.
      if (statusOf(err) === 404) return;
      throw kubernetesFailure(err, `read namespace ${namespace}`);
    }
    // A namespace of this name that Berth did not create for this instance is not Berth's to touch.
    if (perInstance && ns.metadata?.annotations?.[INSTANCE_ID_ANNOTATION] !== op.instance.id) return;
    if (!ns.metadata?.deletionTimestamp) {
      await ensureReleaseAccess(kube, namespace, perInstance, op.signal);
      await op.progress(`Uninstalling release ${release}`);
      try {
        await this.#run(kube, ['uninstall', release, '--namespace', namespace, '--wait', '--timeout', `${c.timeout}s`], op);
      } catch (err) {
        if (!(err instanceof PermanentError && /not found/i.test(String((err.cause as HelmError | undefined)?.stderr ?? err.message)))) throw err;
      }
    }
    if (!perInstance) return;
    await op.progress(`Deleting namespace ${namespace}`);
    try {
      if (!ns.metadata?.deletionTimestamp) await core.deleteNamespace({ name: namespace });
    } catch (err) {
      if (statusOf(err) === 404) return;
      throw kubernetesFailure(err, `delete namespace ${namespace}`);
    }
    for (;;) {
      try {
        await core.readNamespace({ name: namespace });
      } catch (err) {
        if (statusOf(err) === 404) return;
        throw kubernetesFailure(err, `read namespace ${namespace}`);
      }
      await sleep(1000, op.signal);
    }
  }

  async bind(op: BindingOperation): Promise<BindResult> {
    // The release's cluster, whichever cluster the bind comes from (its binding Secret goes to the bind's: the engine's hook).
    const kube = this.#kubeOf(op.instance.state);
    return namingCluster(kube, () => this.#bindIn(kube, op));
  }

  async #bindIn(kube: KubernetesAccess, op: BindingOperation): Promise<BindResult> {
    const c = this.#plan(op.instance.plan);
    if (!c.credentials) throw new PermanentError(`Plan "${op.instance.plan.name}" does not map any credentials.`);
    const namespace = this.#namespace(c, op.instance.id);
    const release = releaseName(op.instance.id);
    const lookup = await this.#lookup(kube, namespace);
    const vars = { release, namespace, instance_id: op.instance.id };
    try {
      const login = c.credentials.per_binding ? await this.#bindingLogin(kube, op, c.credentials.per_binding, vars, lookup) : undefined;
      const entries = await resolveEntries(c.credentials.entries, vars, lookup, login ? { username: login.username, password: login.password } : {});
      const credentials: JsonObject = { type: c.credentials.type, provider: c.credentials.provider, ...entries };
      const endpoints = entries.host && entries.port ? [{ host: String(entries.host), ports: [String(entries.port)] }] : undefined;
      return { credentials, ...(endpoints ? { endpoints } : {}) };
    } catch (err) {
      if (statusOf(err) === 404) throw new PermanentError(`A Secret or Service the plan's credential mapping names does not exist in ${namespace}: ${reasonOf(err)}`);
      throw kubernetesFailure(err, `read the Secrets and Services of release ${release} in namespace ${namespace}`);
    }
  }

  /** The binding's own login inside the release's server (credentials.per_binding), verified before it is returned. */
  async #bindingLogin(kube: KubernetesAccess, op: BindingOperation, pb: PerBinding, vars: Record<string, string>, lookup: Lookup): Promise<Login> {
    const username = bindingLoginName(op.instance.id, op.binding.id);
    const saved = op.state.password;
    let password: string;
    if (op.state.login === username && typeof saved === 'string') {
      password = saved;
    } else {
      // Stored before it is used: a re-run after a crash sets the same password again.
      password = generatePassword();
      await op.checkpoint({ login: username, password });
    }
    const login: Login = { username, password };
    await op.progress(`Creating the binding's own login ${username} in the ${pb.engine} server of release ${vars.release}`);
    await this.#withAdmin(kube, pb, vars, lookup, (port, admin) =>
      pb.engine === 'postgresql'
        ? createPostgresLogin(port, { username: admin.username!, password: admin.password!, database: admin.database! }, login)
        : createRedisLogin(port, { username: admin.username!, password: admin.password! }, login),
    );
    return login;
  }

  /** Reaches the release's server through a port-forward, with the admin login the plan names. */
  async #withAdmin<T>(kube: KubernetesAccess, pb: PerBinding, vars: Record<string, string>, lookup: Lookup, fn: (port: number, admin: Record<string, string>) => Promise<T>): Promise<T> {
    const admin = await resolveEntries(
      { username: pb.admin_username, password: pb.admin_password, ...(pb.engine === 'postgresql' ? { database: pb.database } : {}) },
      vars,
      lookup,
    );
    return withServiceForward(kube, vars.namespace!, expand(pb.service, vars), pb.port, (port) => fn(port, admin));
  }

  async unbind(op: BindingOperation): Promise<void> {
    // Chart credentials come from the release; the binding Secret (if any) is removed by the engine's hook.
    // A per-binding login is revoked here: bind checkpoints its name before creating it.
    const pb = this.#plan(op.instance.plan).credentials?.per_binding;
    if (!pb || typeof op.state.login !== 'string') return;
    const username = op.state.login;
    const kube = this.#kubeOf(op.instance.state);
    await namingCluster(kube, () => this.#dropLogin(kube, op, pb, username));
  }

  async #dropLogin(kube: KubernetesAccess, op: BindingOperation, pb: PerBinding, username: string): Promise<void> {
    const c = this.#plan(op.instance.plan);
    const namespace = this.#namespace(c, op.instance.id);
    const vars = { release: releaseName(op.instance.id), namespace, instance_id: op.instance.id };
    const core = await kube.api((k8s) => k8s.CoreV1Api);
    const lookup: Lookup = {
      secret: (name) => core.readNamespacedSecret({ name, namespace }),
      service: (name) => core.readNamespacedService({ name, namespace }),
    };
    await op.progress(`Removing the binding's login ${username} from the ${pb.engine} server of release ${vars.release}`);
    try {
      await this.#withAdmin(kube, pb, vars, lookup, (port, admin) =>
        pb.engine === 'postgresql'
          ? dropPostgresLogin(port, { username: admin.username!, password: admin.password!, database: admin.database! }, username)
          : dropRedisLogin(port, { username: admin.username!, password: admin.password! }, username),
      );
    } catch (err) {
      // The release (and the server with it) is gone: so is the login.
      if (statusOf(err) === 404) return;
      throw err;
    }
  }

  /** `berth trace`: the release (helm status) and its workloads, read now; each binding's own login when the plan makes one. */
  async describe(instance: InstanceView & { state: JsonObject }, bindings: DescribedBinding[], signal: AbortSignal): Promise<ProvisionedResource[]> {
    const c = this.#plan(instance.plan);
    const release = releaseName(instance.id);
    const namespace = this.#namespace(c, instance.id);
    if (this.#clusters.several && !instance.state.release) return describeRelease(this.#clusters.home, release, namespace, undefined);
    const kube = this.#kubeOf(instance.state);
    if (!kube.configured && !instance.state.release) return describeRelease(kube, release, namespace, undefined);
    let status: ReleaseStatus | undefined;
    try {
      status = JSON.parse(await helm(['status', release, '--namespace', namespace, '--output', 'json'], this.#helmOptions(kube, signal))) as ReleaseStatus;
    } catch (err) {
      if (!(err instanceof HelmError && /not found/i.test(err.stderr))) throw err;
    }
    if (status && typeof status.manifest !== 'string') status.manifest = await helm(['get', 'manifest', release, '--namespace', namespace], this.#helmOptions(kube, signal));
    if (status && !status.chart?.metadata) {
      // Not every helm puts the chart into `status --output json`; `get metadata` names it.
      try {
        const m = JSON.parse(await helm(['get', 'metadata', release, '--namespace', namespace, '--output', 'json'], this.#helmOptions(kube, signal))) as { chart?: string; version?: string; appVersion?: string };
        if (m.chart) status.chart = { metadata: { name: m.chart, version: m.version, appVersion: m.appVersion } };
      } catch {
        // The chart's name is a help, not a need.
      }
    }
    const nodes = await describeRelease(kube, release, namespace, status);
    const pb = c.credentials?.per_binding;
    if (pb && nodes[0]) {
      nodes[0].children = [
        ...(nodes[0].children ?? []),
        ...bindings.map((b): ProvisionedResource => ({
          kind: pb.engine === 'postgresql' ? 'Role' : 'AclUser',
          name: typeof b.state.login === 'string' ? b.state.login : bindingLoginName(instance.id, b.id),
          bindingId: b.id,
          state: typeof b.state.login === 'string' ? 'unknown' : 'missing',
          message:
            typeof b.state.login === 'string'
              ? `The binding's own login in the ${pb.engine} server of the release (created and checked by bind; trace does not log in to the release's server).`
              : 'The bind has not created its login yet.',
        })),
      ];
    }
    return nodes;
  }

  async validatePlan(plan: CatalogPlan): Promise<string[]> {
    const c = this.#plan(plan);
    const release = 'berth-validate';
    const namespace = c.namespace.strategy === 'fixed' ? c.namespace.name : `${c.namespace.prefix}validate`;
    let rendered: string;
    try {
      rendered = await helm(['template', release, ...this.#chartArgs(c), '--namespace', namespace, '--values', '-'], {
        ...this.#helmOptions(this.#clusters.home),
        input: JSON.stringify(this.#values(plan, 'validate', {})),
      });
    } catch (err) {
      return [`helm template failed: ${(err as Error).message}`];
    }
    const docs = parseAllDocuments(rendered).map((d) => d.toJS() as { kind?: string; metadata?: { name?: string }; data?: JsonObject; stringData?: JsonObject; spec?: { ports?: Array<{ name?: string; port?: number }> } } | null);
    const problems: string[] = [];
    if (!c.credentials) return problems;
    const vars = { release, namespace, instance_id: 'validate' };
    for (const [entry, source] of Object.entries(c.credentials.entries)) {
      const ref = parseSource(source, vars);
      if (ref.kind === 'secret') {
        const secret = docs.find((d) => d?.kind === 'Secret' && d.metadata?.name === ref.name);
        if (!secret) problems.push(`credentials.entries.${entry}: the chart renders no Secret "${ref.name}"`);
        else if (!(ref.key in (secret.data ?? {})) && !(ref.key in (secret.stringData ?? {}))) {
          problems.push(`credentials.entries.${entry}: Secret "${ref.name}" has no key "${ref.key}"`);
        }
      } else if (ref.kind === 'service' || ref.kind === 'service-ip' || ref.kind === 'service-port') {
        const svc = docs.find((d) => d?.kind === 'Service' && d.metadata?.name === ref.name);
        if (!svc) problems.push(`credentials.entries.${entry}: the chart renders no Service "${ref.name}"`);
        else if (ref.kind === 'service-port' && !svc.spec?.ports?.some((p) => p.name === ref.port || String(p.port) === ref.port)) {
          problems.push(`credentials.entries.${entry}: Service "${ref.name}" has no port "${ref.port}"`);
        }
      }
    }
    return problems;
  }
}

/** What `helm upgrade --output json` answers, as far as Berth reads it. */
interface HelmReleaseJson {
  manifest?: string;
  version?: number;
  chart?: { metadata?: { name?: string; version?: string; appVersion?: string } };
}

/** OSB instance metadata of a release: where it is and which chart version runs (labels), and Helm's revision. */
function releaseMetadata(release: string, namespace: string, installed: HelmReleaseJson): NonNullable<InstanceResult['metadata']> {
  const chart = installed.chart?.metadata ?? {};
  const labels: Record<string, string> = { 'berth.dev/release': release, 'berth.dev/namespace': namespace };
  if (chart.name) labels['berth.dev/chart'] = chart.name;
  if (chart.version) labels['berth.dev/chart-version'] = chart.version;
  const attributes: Record<string, string> = {};
  if (chart.appVersion) attributes['berth.dev/app-version'] = chart.appVersion;
  if (installed.version !== undefined) attributes['berth.dev/revision'] = String(installed.version);
  return Object.keys(attributes).length > 0 ? { labels, attributes } : { labels };
}
