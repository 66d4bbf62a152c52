// `berth doctor --local`, per plan: is its provisioner configured (the postgres/mysql server
// variables set and the server answering; a Helm 4 binary and a chart that renders), and may
// Berth's identity do in the cluster what the plans need (SelfSubjectAccessReview)?
import type { CatalogPlan } from '../catalog/catalog.ts';
import { resolveServer, type DatabaseServer } from '../provisioners/sql/server.ts';
import { fail, line, pass, skip, warn, type Check, type Outcome } from './check.ts';
import { redactUrl, why, type LocalContext } from './local-context.ts';

// ---- provisioners ------------------------------------------------------------------------

type Probe = Promise<Outcome>;

async function probePostgres(server: DatabaseServer): Probe {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: server.adminUrl, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ rolsuper: boolean; rolcreatedb: boolean; rolcreaterole: boolean; user: string }>(
      'SELECT rolsuper, rolcreatedb, rolcreaterole, current_user AS user FROM pg_roles WHERE rolname = current_user',
    );
    const r = rows[0];
    if (r && !r.rolsuper && !(r.rolcreatedb && r.rolcreaterole)) {
      return fail(`postgres server "${server.name}" is reachable, but its admin user "${r.user}" lacks ${[!r.rolcreatedb && 'CREATEDB', !r.rolcreaterole && 'CREATEROLE'].filter(Boolean).join(' and ')}: provisions will fail`);
    }
    return pass(`postgres server "${server.name}" reachable as "${r?.user}" (${server.advertisedHost}:${server.advertisedPort} for apps)`);
  } catch (err) {
    return fail(`cannot connect to postgres server "${server.name}" (${redactUrl(server.adminUrl)}): ${why(err)}`);
  } finally {
    await client.end().catch(() => {});
  }
}

async function probeMysql(server: DatabaseServer): Probe {
  const { default: mysql2 } = await import('mysql2/promise');
  try {
    const c = await mysql2.createConnection({ uri: server.adminUrl.replace(/^mariadb:/, 'mysql:'), connectTimeout: 5000 });
    try {
      await c.query('SELECT 1');
    } finally {
      await c.end().catch(() => {});
    }
    return pass(`mysql server "${server.name}" reachable (${server.advertisedHost}:${server.advertisedPort} for apps)`);
  } catch (err) {
    return fail(`cannot connect to mysql server "${server.name}" (${redactUrl(server.adminUrl)}): ${why(err)}`);
  }
}

async function sqlServer(ctx: LocalContext, plan: CatalogPlan, engine: 'postgres' | 'mysql', seen: Map<string, Probe>): Probe {
  const name = (plan.provisioner.config as { server: string }).server;
  let server: DatabaseServer;
  try {
    server = engine === 'postgres' ? resolveServer(ctx.config!.env, 'postgres', name, ['postgres:', 'postgresql:'], 5432) : resolveServer(ctx.config!.env, 'mysql', name, ['mysql:', 'mariadb:'], 3306);
  } catch (err) {
    return fail((err as Error).message);
  }
  const key = `${engine}/${name}`;
  if (!seen.has(key)) seen.set(key, engine === 'postgres' ? probePostgres(server) : probeMysql(server));
  return seen.get(key)!;
}

async function helmPresent(ctx: LocalContext): Probe {
  const { helm } = await import('../provisioners/helm/helm-cli.ts');
  const { resolve } = await import('node:path');
  const bin = ctx.config!.helmBin ?? 'helm';
  try {
    const version = await helm(['version', '--short'], { bin, kubeconfig: ctx.config!.kubeconfig, home: resolve(ctx.config!.dataDir, 'helm'), timeoutMs: 30_000 });
    if (!/^v4\./.test(version.trim())) return warn(`helm ${version.trim()} at "${bin}"; Berth drives Helm 4 (set BERTH_HELM_BIN to a Helm 4 binary)`);
    return pass(`helm ${version.trim()} at "${bin}"`);
  } catch (err) {
    return fail(`${(err as Error).message}`);
  }
}

export const provisioners: Check<LocalContext> = {
  id: 'provisioners',
  title: 'Plan provisioners',
  async run(ctx) {
    if (!ctx.catalog || !ctx.provisioners) return skip('needs a valid catalog');
    const seen = new Map<string, Probe>();
    let helm: Probe | undefined;
    const lines: Outcome[] = [];
    for (const plan of ctx.catalog.plans) {
      const started = performance.now();
      const name = `${plan.service.name}/${plan.name}`;
      const kind = plan.provisioner.kind;
      let o: Outcome;
      if (kind === 'user-provided') o = pass('nothing to configure');
      else if (kind === 'postgres' || kind === 'mysql') o = await sqlServer(ctx, plan, kind, seen);
      else {
        if (kind === 'helm') {
          helm ??= helmPresent(ctx);
          const present = await helm;
          if (present.status === 'fail') {
            lines.push(line(`plan:${name}`, `Plan ${name} (${kind})`, present, Math.round(performance.now() - started)));
            continue;
          }
        }
        const provisioner = ctx.provisioners.forPlan(plan);
        if (!provisioner.validatePlan) o = pass('loaded; this kind has no offline checks');
        else {
          const problems = await provisioner.validatePlan(plan);
          o = problems.length > 0 ? fail(problems.join('\n')) : pass(kind === 'helm' ? `the chart renders with helm template and has the Secrets/Services its credentials name` : 'its offline checks pass');
        }
      }
      lines.push(line(`plan:${name}`, `Plan ${name} (${kind})`, o, Math.round(performance.now() - started)));
    }
    return lines.length > 0 ? lines : skip('the catalog has no plans');
  },
};

// ---- Kubernetes permissions ----------------------------------------------------------------

interface Need {
  verb: string;
  resource: string;
  group?: string;
  namespace?: string;
  name?: string;
  why: string;
}

function needsOf(ctx: LocalContext): { needs: Need[]; alternatives: Array<{ namespace: string; plans: string[] }> } {
  const needs: Need[] = [];
  const alternatives = new Map<string, string[]>();
  const plans = ctx.catalog?.plans ?? [];
  const secrets = plans.some((p) => p.options.bindingSecret ?? ctx.config!.kubernetesSecrets);
  if (secrets) {
    for (const verb of ['get', 'create', 'update', 'delete']) needs.push({ verb, resource: 'secrets', why: 'binding Secrets in app namespaces' });
  }
  if (ctx.config!.tokenReview) needs.push({ verb: 'create', resource: 'tokenreviews', group: 'authentication.k8s.io', why: 'checking platforms\' ServiceAccount tokens (BERTH_TOKENREVIEW=true)' });
  const helmPlans = plans.filter((p) => p.provisioner.kind === 'helm');
  const perInstance = helmPlans.filter((p) => (p.provisioner.config as { namespace: { strategy: string } }).namespace.strategy === 'per-instance');
  if (perInstance.length > 0) {
    for (const verb of ['get', 'create', 'delete']) needs.push({ verb, resource: 'namespaces', why: 'a namespace per Helm instance' });
    needs.push({ verb: 'create', resource: 'rolebindings', group: 'rbac.authorization.k8s.io', why: "its own access to each release namespace" });
    needs.push({ verb: 'bind', resource: 'clusterroles', group: 'rbac.authorization.k8s.io', name: 'berth-instance', why: 'binding the ClusterRole berth-instance in release namespaces' });
  }
  for (const p of helmPlans) {
    const ns = (p.provisioner.config as { namespace: { strategy: string; name?: string } }).namespace;
    if (ns.strategy === 'fixed') alternatives.set(ns.name!, [...(alternatives.get(ns.name!) ?? []), `${p.service.name}/${p.name}`]);
  }
  return { needs, alternatives: [...alternatives].map(([namespace, plans]) => ({ namespace, plans })) };
}

export const kubernetesPermissions: Check<LocalContext> = {
  id: 'kubernetes-permissions',
  title: 'Kubernetes permissions',
  async run(ctx) {
    if (!ctx.config || !ctx.catalog) return skip('needs a valid catalog');
    const { needs, alternatives } = needsOf(ctx);
    if (needs.length === 0 && alternatives.length === 0) return skip('nothing needs a cluster (no Helm plans, binding Secrets off, no TokenReview)');
    const { KubernetesClusters } = await import('../kubernetes/clusters.ts');
    const clusters = new KubernetesClusters(ctx.config);
    const kube = clusters.home;
    const helmPlans = ctx.catalog.plans.some((p) => p.provisioner.kind === 'helm');
    if (clusters.several) {
      // Each cluster with its own credentials: the plans' needs in each, TokenReview in Berth's own (KUBECONFIG).
      const tokenReview = needs.filter((n) => n.resource === 'tokenreviews');
      const lines: Outcome[] = [];
      for (const c of clusters.list()) {
        const o = await permissionsIn(c, needs.filter((n) => n.resource !== 'tokenreviews'), alternatives, `BERTH_CLUSTERS_FILE's kubeconfig of cluster "${c.clusterId}"`);
        lines.push(line(`kubernetes-permissions:${c.clusterId}`, `Kubernetes permissions in cluster ${c.clusterId}`, { ...o, message: `cluster "${c.clusterId}": ${o.message}` }));
      }
      if (tokenReview.length > 0) {
        const o = kube.configured
          ? await permissionsIn(kube, tokenReview, [], 'KUBECONFIG')
          : fail('BERTH_TOKENREVIEW=true needs a cluster to ask: set KUBECONFIG (BERTH_CLUSTERS_FILE\'s clusters are for provisioning only)');
        lines.push(line('kubernetes-permissions', 'Kubernetes permissions (TokenReview)', o));
      }
      return lines;
    }
    if (!kube.configured) {
      return helmPlans || ctx.config.tokenReview
        ? fail(`${helmPlans ? 'Helm plans need' : 'BERTH_TOKENREVIEW=true needs'} a cluster, and none is configured: set KUBECONFIG (or run Berth in the cluster with a ServiceAccount)`)
        : skip('no cluster configured (KUBECONFIG): binding Secrets are not written, credentials go in the bind response only');
    }
    return permissionsIn(kube, needs, alternatives, 'KUBECONFIG');
  },
};

/** Whether the credentials of `kube` have what the plans need (SelfSubjectAccessReview); `source` names where they come from. */
async function permissionsIn(
  kube: import('../kubernetes/client.ts').KubernetesAccess,
  needs: Need[],
  alternatives: Array<{ namespace: string; plans: string[] }>,
  source: string,
): Promise<Outcome> {
  let api: import('@kubernetes/client-node').AuthorizationV1Api;
  const allowed = async (attributes: Record<string, string | undefined>) => {
    const r = await api.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: attributes } } });
    return r.status?.allowed === true;
  };
  try {
    api = await kube.api((k8s) => k8s.AuthorizationV1Api);
    await allowed({ verb: 'get', resource: 'namespaces' });
  } catch (err) {
    return fail(`cannot ask the Kubernetes API what Berth may do (SelfSubjectAccessReview): ${why((err as { body?: unknown }).body ?? err)}. Check ${source} and that the API server is reachable.`);
  }
  const denied: string[] = [];
  for (const n of needs) {
    if (!(await allowed({ verb: n.verb, resource: n.resource, group: n.group, namespace: n.namespace, name: n.name }))) {
      denied.push(`${n.verb} ${n.group ? `${n.resource}.${n.group}` : n.resource}${n.name ? ` "${n.name}"` : ''}${n.namespace ? ` in ${n.namespace}` : ' (cluster-wide)'}: needed for ${n.why}`);
    }
  }
  // A plan's fixed namespace: Berth may already manage releases there, or grants itself berth-instance at the first
  // install, which deploy/admission-policy.yaml allows only in a namespace labelled as handed to Berth.
  const { MANAGED_BY_SELECTOR } = await import('../kubernetes/names.ts');
  const [labelKey, labelValue] = MANAGED_BY_SELECTOR.split('=') as [string, string];
  for (const a of alternatives) {
    if (await allowed({ verb: 'list', resource: 'secrets', namespace: a.namespace })) continue;
    const forPlans = `needed for ${a.plans.join(', ')}, which install${a.plans.length === 1 ? 's' : ''} into it`;
    if (!(await allowed({ verb: 'create', resource: 'rolebindings', group: 'rbac.authorization.k8s.io', namespace: a.namespace }))) {
      denied.push(`list secrets in ${a.namespace}, or create rolebindings there to grant itself berth-instance: ${forPlans}`);
      continue;
    }
    let labels: Record<string, string> | undefined;
    try {
      const core = await kube.api((k8s) => k8s.CoreV1Api);
      labels = (await core.readNamespace({ name: a.namespace })).metadata?.labels ?? {};
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === 404) denied.push(`namespace ${a.namespace} does not exist: create it and label it ${MANAGED_BY_SELECTOR} (${forPlans})`);
      else if (code === 403) denied.push(`get namespace ${a.namespace} (to see whether it is handed to Berth): ${forPlans}`);
      else throw err;
      continue;
    }
    if (labels[labelKey] !== labelValue) {
      denied.push(`namespace ${a.namespace} is not handed to Berth, so the admission policy refuses its RoleBinding there: kubectl label namespace ${a.namespace} ${MANAGED_BY_SELECTOR} (${forPlans})`);
    }
  }
  const checked = needs.length + alternatives.length;
  if (denied.length > 0) {
    return fail(`${denied.length} of ${checked} permissions missing; apply deploy/rbac.yaml (or the chart's RBAC) as shipped:\n${denied.join('\n')}`, { denied });
  }
  return pass(`all ${checked} permissions the plans need are granted (SelfSubjectAccessReview)`);
}
