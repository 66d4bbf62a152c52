// `berth doctor --local`: Berth's own installation, from the configuration `berth serve`
// reads (src/config.ts): the database and its migrations, the encryption keys against every
// stored secret, each catalog plan's provisioner (servers reachable, helm and its charts,
// cluster permissions), and the TLS certificate. It reads and never writes: no migration,
// no re-seal, no helm install.
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { ConfigError, loadConfig, type Config } from '../config.ts';
import { CatalogError, loadCatalog, type Catalog, type CatalogPlan } from '../catalog/catalog.ts';
import { openDatabase, type Database } from '../db/database.ts';
import { migrationSource } from '../db/migrations/index.ts';
import { createLogger } from '../observability/logger.ts';
import type { ProvisionerRegistry } from '../provisioners/provisioner.ts';
import { resolveServer, type DatabaseServer } from '../provisioners/sql/server.ts';
import { SecretBox, UndecryptableError } from '../secret-box.ts';
import { SECRET_TABLES } from '../store/reseal.ts';
import { fail, line, pass, skip, warn, type Check, type Outcome } from './check.ts';

export interface LocalContext {
  env: Record<string, string | undefined>;
  log: Logger;
  config?: Config;
  provisioners?: ProvisionerRegistry;
  catalog?: Catalog;
  database?: Database;
  /** Why the database checks cannot run (set by the database check). */
  databaseProblem?: string;
  /** Resources to release at the end. */
  close(): Promise<void>;
}

export function localContext(env: Record<string, string | undefined> = process.env): LocalContext {
  const ctx: LocalContext = {
    env,
    log: createLogger('silent'),
    async close() {
      await ctx.database?.close().catch(() => {});
      await ctx.provisioners?.close().catch(() => {});
    },
  };
  return ctx;
}

/** A connection URL as it may be shown: no password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(not a URL)';
  }
}

const why = (err: unknown): string => {
  const e = err as { code?: string; message?: string; errors?: Array<{ code?: string; message?: string }> };
  // pg reports "connect ECONNREFUSED" per address in an AggregateError with an empty message.
  const inner = e?.errors?.[0];
  const text = e?.message || inner?.message || String(err);
  return text.split('\n')[0]!;
};

const config: Check<LocalContext> = {
  id: 'config',
  title: 'Configuration',
  async run(ctx) {
    try {
      ctx.config = loadConfig(ctx.env);
    } catch (err) {
      if (err instanceof ConfigError) return fail(`${err.message}\nFix the environment berth serve runs with.`);
      throw err;
    }
    const c = ctx.config;
    return pass(c.databaseUrl ? `valid; database ${redactUrl(c.databaseUrl)}` : `valid; embedded database in ${c.dataDir}`);
  },
};

const catalog: Check<LocalContext> = {
  id: 'catalog',
  title: 'Catalog',
  async run(ctx) {
    if (!ctx.config) return skip('needs a valid configuration');
    const { loadProvisioners } = await import('../main.ts');
    ctx.provisioners = await loadProvisioners(ctx.config, ctx.log);
    try {
      ctx.catalog = loadCatalog(ctx.config.catalogPath, ctx.provisioners.parseConfig);
    } catch (err) {
      if (err instanceof CatalogError) return fail(`${ctx.config.catalogPath} is invalid (berth serve would not start):\n${err.problems.join('\n')}`);
      throw err;
    }
    return pass(`${ctx.config.catalogPath}: ${ctx.catalog.services.length} offerings, ${ctx.catalog.plans.length} plans`);
  },
};

const database: Check<LocalContext> = {
  id: 'database',
  title: 'Database reachable',
  async run(ctx) {
    const c = ctx.config;
    if (!c) return skip('needs a valid configuration');
    const where = c.databaseUrl ? redactUrl(c.databaseUrl) : `the embedded database in ${c.dataDir}`;
    if (!c.databaseUrl && !existsSync(join(c.dataDir, 'pgdata'))) {
      // Opening it would create it: the doctor only looks.
      ctx.databaseProblem = 'there is no embedded database yet';
      return warn(`there is no embedded database in ${c.dataDir} yet (berth serve creates it at its first start); set DATABASE_URL or BERTH_DATA_DIR if Berth keeps its state elsewhere`);
    }
    try {
      ctx.database = await openDatabase({ url: c.databaseUrl, dataDir: c.dataDir, poolSize: 1, log: ctx.log });
      const { rows } = await ctx.database.knex.raw<{ rows: Array<{ version: string }> }>('SELECT version() AS version');
      return pass(`${where}: ${rows[0]?.version.split(' ').slice(0, 2).join(' ') ?? 'connected'}`);
    } catch (err) {
      const reason = why(err);
      await ctx.database?.close().catch(() => {});
      ctx.database = undefined;
      if (/another Berth process is serving the embedded database/.test(reason)) {
        ctx.databaseProblem = 'a running Berth holds the embedded database';
        return skip(`${where} is in use by a running Berth (embedded mode allows one process); stop it to check the database, or check the running broker with berth doctor --broker`);
      }
      ctx.databaseProblem = 'the database is unreachable';
      return fail(`cannot connect to ${where}: ${reason}. Check DATABASE_URL and that the server is running and accepts Berth's user.`);
    }
  },
};

const migrations: Check<LocalContext> = {
  id: 'migrations',
  title: 'Database migrated',
  async run(ctx) {
    const knex = ctx.database?.knex;
    if (!knex) return skip(ctx.databaseProblem ? `skipped: ${ctx.databaseProblem}` : 'needs the database');
    const known = (await migrationSource.getMigrations([])).map((m) => migrationSource.getMigrationName(m));
    let recorded: string[];
    try {
      recorded = await knex('knex_migrations').orderBy('id').pluck('name');
    } catch {
      return fail(`the database has no migrations at all (no knex_migrations table); run \`berth migrate\` (berth serve also migrates at start)`);
    }
    const pending = known.filter((n) => !recorded.includes(n));
    const unknown = recorded.filter((n) => !known.includes(n));
    const details = { known: known.length, applied: recorded.length, pending, unknown };
    if (unknown.length > 0) {
      return fail(`the database has ${unknown.length} migration(s) this Berth does not know (${unknown.join(', ')}): a newer Berth migrated it; run that version, not this one`, details);
    }
    if (pending.length > 0) return fail(`${pending.length} of ${known.length} migrations not applied (${pending.join(', ')}); run \`berth migrate\``, details);
    return pass(`all ${known.length} migrations applied (latest ${known.at(-1)})`, details);
  },
};

async function secretBoxOf(c: Config): Promise<SecretBox | undefined> {
  if (c.encryptionKeys) return new SecretBox(c.encryptionKeys);
  if (c.databaseUrl) return undefined;
  const { embeddedKeyFile } = await import('../main.ts');
  const keys = await readFile(embeddedKeyFile(c), 'utf8').catch(() => undefined);
  return keys?.trim() ? new SecretBox(keys.trim()) : undefined;
}

const PAGE = 1000;

const encryptionKeys: Check<LocalContext> = {
  id: 'encryption-keys',
  title: 'Encryption keys open every row',
  async run(ctx) {
    const knex = ctx.database?.knex;
    if (!knex || !ctx.config) return skip(ctx.databaseProblem ? `skipped: ${ctx.databaseProblem}` : 'needs the database');
    const box = await secretBoxOf(ctx.config);
    if (!box) return fail('no encryption keys: set BERTH_ENCRYPTION_KEYS (embedded mode: the key file in the data directory is missing)');
    const perKey: Record<string, number> = {};
    const unreadable: string[] = [];
    const legacy: string[] = [];
    let rowsSeen = 0;
    for (const { table, key, columns } of SECRET_TABLES) {
      if (!(await knex.schema.hasTable(table))) continue;
      for (let offset = 0; ; offset += PAGE) {
        const rows = (await knex(table)
          .select([...key, ...columns])
          .orderBy(key.map((column) => ({ column })))
          .limit(PAGE)
          .offset(offset)) as Array<Record<string, string | null>>;
        for (const row of rows) {
          rowsSeen++;
          const rowKey = key.map((k) => String(row[k]));
          const shown = `${table} ${rowKey.join('/')}`;
          const problems: string[] = [];
          for (const column of columns) {
            const sealed = row[column];
            if (sealed == null) continue;
            const keyId = sealed.split(':')[1] ?? '?';
            try {
              box.open(sealed, { table, row: rowKey, column });
              perKey[keyId] = (perKey[keyId] ?? 0) + 1;
            } catch (err) {
              if (!(err instanceof UndecryptableError)) throw err;
              if (err.reason === 'legacy-format') {
                legacy.push(`${shown} ${column}`);
                perKey[keyId] = (perKey[keyId] ?? 0) + 1;
              } else {
                problems.push(`${column} (${err.reason === 'unknown-key' ? `sealed with key "${err.keyId}", not configured` : err.reason === 'not-authentic' ? `does not open with key "${err.keyId}": a different key under that id, or altered` : 'not a Berth ciphertext'})`);
              }
            }
          }
          if (problems.length > 0) unreadable.push(`${shown}: ${problems.join(', ')}`);
        }
        if (rows.length < PAGE) break;
      }
    }
    const counts = Object.entries(perKey).map(([k, n]) => `${n} under "${k}"`).join(', ') || 'no stored secrets yet';
    const details = { rows: rowsSeen, secretsPerKeyId: perKey, activeKeyId: box.activeKeyId, unreadable, legacy };
    if (unreadable.length > 0) {
      const shown = unreadable.slice(0, 20);
      return fail(
        `${unreadable.length} row(s) no configured key opens (BERTH_ENCRYPTION_KEYS is wrong or lacks a key); the broker cannot serve them:\n${shown.join('\n')}${unreadable.length > shown.length ? `\n… and ${unreadable.length - shown.length} more (-o json lists all)` : ''}`,
        details,
      );
    }
    if (legacy.length > 0) return warn(`${counts}; ${legacy.length} secret(s) in the old format not bound to their row: run \`berth keys rotate\``, details);
    const old = Object.keys(perKey).filter((k) => k !== box.activeKeyId);
    if (old.length > 0) return pass(`${rowsSeen} rows, secrets ${counts}; rows under ${old.map((k) => `"${k}"`).join(', ')} move to "${box.activeKeyId}" with \`berth keys rotate\``, details);
    return pass(rowsSeen === 0 ? 'no stored secrets yet' : `${rowsSeen} rows, secrets ${counts}`, details);
  },
};

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

const provisioners: Check<LocalContext> = {
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

const kubernetesPermissions: Check<LocalContext> = {
  id: 'kubernetes-permissions',
  title: 'Kubernetes permissions',
  async run(ctx) {
    if (!ctx.config || !ctx.catalog) return skip('needs a valid catalog');
    const { needs, alternatives } = needsOf(ctx);
    if (needs.length === 0 && alternatives.length === 0) return skip('no plan needs a cluster (no Helm plans, binding Secrets off)');
    const { KubernetesAccess } = await import('../kubernetes/client.ts');
    const kube = new KubernetesAccess(ctx.config);
    const helmPlans = ctx.catalog.plans.some((p) => p.provisioner.kind === 'helm');
    if (!kube.configured) {
      return helmPlans
        ? fail('Helm plans need a cluster, and none is configured: set KUBECONFIG (or run Berth in the cluster with a ServiceAccount)')
        : skip('no cluster configured (KUBECONFIG): binding Secrets are not written, credentials go in the bind response only');
    }
    let api: import('@kubernetes/client-node').AuthorizationV1Api;
    const allowed = async (attributes: Record<string, string | undefined>) => {
      const r = await api.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: attributes } } });
      return r.status?.allowed === true;
    };
    try {
      api = await kube.api((k8s) => k8s.AuthorizationV1Api);
      await allowed({ verb: 'get', resource: 'namespaces' });
    } catch (err) {
      return fail(`cannot ask the Kubernetes API what Berth may do (SelfSubjectAccessReview): ${why((err as { body?: unknown }).body ?? err)}. Check KUBECONFIG and that the API server is reachable.`);
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
  },
};

// ---- TLS -----------------------------------------------------------------------------------

const DAY = 86_400_000;

/** The certificate check on its own, for unit tests: `now` decides. */
export function certificateOutcome(pem: string, file: string, now = Date.now()): Outcome {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    return fail(`${file} holds no readable PEM certificate (${why(err)})`);
  }
  const expires = Date.parse(cert.validTo);
  const days = Math.floor((expires - now) / DAY);
  const subject = cert.subject.split('\n').find((l) => l.startsWith('CN=')) ?? cert.subject.split('\n')[0];
  const details = { file, subject, validTo: new Date(expires).toISOString() };
  if (expires <= now) return fail(`the certificate in ${file} (${subject}) expired on ${new Date(expires).toISOString()}; clients refuse it: renew it`, details);
  if (days < 30) return warn(`the certificate in ${file} (${subject}) expires in ${days} day(s), on ${new Date(expires).toISOString()}; renew it`, details);
  return pass(`${subject}, valid until ${new Date(expires).toISOString()} (${days} days)`, details);
}

const tlsCertificate: Check<LocalContext> = {
  id: 'tls-certificate',
  title: 'TLS certificate',
  async run(ctx) {
    const file = (ctx.config?.env ?? ctx.env).BERTH_TLS_CERT_FILE;
    if (!file) return skip('BERTH_TLS_CERT_FILE is not set (Berth serves plain HTTP)');
    let pem: string;
    try {
      pem = await readFile(file, 'utf8');
    } catch (err) {
      return fail(`cannot read BERTH_TLS_CERT_FILE ${file} (${(err as NodeJS.ErrnoException).code ?? why(err)})`);
    }
    return certificateOutcome(pem, file);
  },
};

export const LOCAL_CHECKS: Check<LocalContext>[] = [config, catalog, database, migrations, encryptionKeys, provisioners, kubernetesPermissions, tlsCertificate];
