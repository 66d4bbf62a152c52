// What exists on each backend with Berth's names or labels, and how to remove one such thing. Each
// backend lists only what Berth's own naming makes (src/provisioners/sql/names.ts, src/kubernetes/names.ts,
// releaseName, bindingSecretName) and says whose it is (an instance id or its name hash), so the sweeper
// can compare with Berth's state; removal re-checks the name, so nothing else is ever touched.
import type { Logger } from 'pino';
import type { Catalog } from '../catalog/catalog.ts';
import type { Config } from '../config.ts';
import { resolveServer, type DatabaseServer } from '../provisioners/sql/server.ts';
import { quoteMysqlIdent, quoteMysqlString, quotePgIdent } from '../provisioners/sql/names.ts';
import { helm, HelmError } from '../provisioners/helm/helm-cli.ts';
import type { KubernetesAccess } from '../kubernetes/client.ts';
import { BINDING_ID_ANNOTATION, BINDING_LABEL, INSTANCE_ID_ANNOTATION, INSTANCE_LABEL, MANAGED_BY_SELECTOR, idHash } from '../kubernetes/names.ts';
import { bindingSecretName } from '../kubernetes/binding-secrets.ts';
import { statusOf } from '../kubernetes/errors.ts';
import { resolve } from 'node:path';

/** Whose a found resource is: by id where the resource records it, else by the hash its name was made from. */
export type Owner =
  | { instanceId: string; bindingId?: string }
  | { instanceHash: string; hashOf: 'sql' | 'kube' }
  | { bindingHash: string; hashOf: 'sql' };

export interface Found {
  /** e.g. postgres:shared, mysql:main, kubernetes */
  backend: string;
  /** database, role, user, helm-release, namespace, secret */
  kind: string;
  name: string;
  namespace?: string;
  /** MySQL users: the host part of the account. */
  host?: string;
  owner: Owner;
  /** When the backend says it was made (Kubernetes objects); SQL catalogs do not record it. */
  createdAt?: Date;
}

export interface Backend {
  name: string;
  /** What exists; `problems`: parts that could not be looked at (their orphans are unknown, not absent). */
  list(signal: AbortSignal): Promise<Found[] & { problems?: string[] }>;
  remove(found: Found, signal: AbortSignal): Promise<void>;
}

const PG_DATABASE = /^berth_i_([a-z2-7]{26})$/;
const PG_ROLE = /^berth_(o|b)_([a-z2-7]{26})$/;
const MYSQL_DATABASE = /^berthi([a-z2-7]{26})$/;
const MYSQL_USER = /^berthb([a-z2-7]{26})$/;
const RELEASE = /^b-([a-z2-7]{20})$/;

/** The servers the catalog's plans name, per engine. */
export function sqlServers(catalog: Catalog, env: Config['env']): Array<{ engine: 'postgres' | 'mysql'; server: DatabaseServer } | { engine: string; name: string; problem: string }> {
  const seen = new Set<string>();
  const out: Array<{ engine: 'postgres' | 'mysql'; server: DatabaseServer } | { engine: string; name: string; problem: string }> = [];
  for (const plan of catalog.plans) {
    const engine = plan.provisioner.kind;
    if (engine !== 'postgres' && engine !== 'mysql') continue;
    const name = (plan.provisioner.config as { server: string }).server;
    if (seen.has(`${engine}:${name}`)) continue;
    seen.add(`${engine}:${name}`);
    try {
      const server =
        engine === 'postgres' ? resolveServer(env, 'postgres', name, ['postgres:', 'postgresql:'], 5432) : resolveServer(env, 'mysql', name, ['mysql:', 'mariadb:'], 3306);
      out.push({ engine, server });
    } catch (err) {
      out.push({ engine, name, problem: (err as Error).message });
    }
  }
  return out;
}

export function postgresBackend(server: DatabaseServer): Backend {
  const name = `postgres:${server.name}`;
  const run = async <T>(signal: AbortSignal, fn: (c: import('pg').Client) => Promise<T>): Promise<T> => {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: server.adminUrl, connectionTimeoutMillis: 10_000, statement_timeout: 120_000, application_name: 'berth-sweeper' });
    client.on('error', () => {});
    const abort = () => void client.end().catch(() => {});
    signal.addEventListener('abort', abort, { once: true });
    try {
      await client.connect();
      return await fn(client);
    } finally {
      signal.removeEventListener('abort', abort);
      await client.end().catch(() => {});
    }
  };
  return {
    name,
    list: (signal) =>
      run(signal, async (c) => {
        const found: Found[] = [];
        for (const r of (await c.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'berth\\_i\\_%'`)).rows) {
          const m = PG_DATABASE.exec(r.datname);
          if (m) found.push({ backend: name, kind: 'database', name: r.datname, owner: { instanceHash: m[1]!, hashOf: 'sql' } });
        }
        for (const r of (await c.query<{ rolname: string }>(`SELECT rolname FROM pg_roles WHERE rolname LIKE 'berth\\_%'`)).rows) {
          const m = PG_ROLE.exec(r.rolname);
          if (!m) continue;
          found.push({
            backend: name,
            kind: 'role',
            name: r.rolname,
            owner: m[1] === 'o' ? { instanceHash: m[2]!, hashOf: 'sql' } : { bindingHash: m[2]!, hashOf: 'sql' },
          });
        }
        return found;
      }),
    remove: (found, signal) =>
      run(signal, async (c) => {
        if (found.kind === 'database' && PG_DATABASE.test(found.name)) {
          await c.query(`DROP DATABASE IF EXISTS ${quotePgIdent(found.name)} WITH (FORCE)`);
        } else if (found.kind === 'role' && PG_ROLE.test(found.name)) {
          // A role that still owns something in a database that exists cannot be dropped; that is reported, not forced.
          await c.query(`DROP ROLE IF EXISTS ${quotePgIdent(found.name)}`);
        } else {
          throw new Error(`${found.kind} ${found.name} does not have a name Berth makes; not removed`);
        }
      }),
  };
}

export function mysqlBackend(server: DatabaseServer): Backend {
  const name = `mysql:${server.name}`;
  const run = async <T>(signal: AbortSignal, fn: (c: import('mysql2/promise').Connection) => Promise<T>): Promise<T> => {
    const { default: mysql2 } = await import('mysql2/promise');
    const c = await mysql2.createConnection({ uri: server.adminUrl.replace(/^mariadb:/, 'mysql:'), connectTimeout: 10_000 });
    c.on('error', () => {});
    const abort = () => c.destroy();
    signal.addEventListener('abort', abort, { once: true });
    try {
      return await fn(c);
    } finally {
      signal.removeEventListener('abort', abort);
      await c.end().catch(() => {});
    }
  };
  return {
    name,
    list: (signal) =>
      run(signal, async (c) => {
        const found: Found[] = [];
        const [dbs] = await c.query(`SELECT schema_name AS name FROM information_schema.schemata WHERE schema_name LIKE 'berthi%'`);
        for (const r of dbs as Array<{ name: string }>) {
          const m = MYSQL_DATABASE.exec(r.name);
          if (m) found.push({ backend: name, kind: 'database', name: r.name, owner: { instanceHash: m[1]!, hashOf: 'sql' } });
        }
        const [users] = await c.query(`SELECT user AS name, host AS account_host FROM mysql.user WHERE user LIKE 'berthb%'`);
        for (const r of users as Array<{ name: string | Buffer; account_host: string | Buffer }>) {
          const user = String(r.name);
          const m = MYSQL_USER.exec(user);
          if (m) found.push({ backend: name, kind: 'user', name: user, host: String(r.account_host), owner: { bindingHash: m[1]!, hashOf: 'sql' } });
        }
        return found;
      }),
    remove: (found, signal) =>
      run(signal, async (c) => {
        if (found.kind === 'database' && MYSQL_DATABASE.test(found.name)) await c.query(`DROP DATABASE IF EXISTS ${quoteMysqlIdent(found.name)}`);
        else if (found.kind === 'user' && MYSQL_USER.test(found.name)) await c.query(`DROP USER IF EXISTS ${quoteMysqlString(found.name)}@${quoteMysqlString(found.host ?? '%')}`);
        else throw new Error(`${found.kind} ${found.name} does not have a name Berth makes; not removed`);
      }),
  };
}

/**
 * Kubernetes: namespaces Berth created for instances, Helm releases named by releaseName, and binding
 * Secrets, each only when it carries Berth's managed-by label and (namespaces, Secrets) the ids it was made for.
 */
export function kubernetesBackend(kube: KubernetesAccess, config: Pick<Config, 'helmBin' | 'dataDir'>, log: Logger): Backend {
  const name = 'kubernetes';
  const helmOptions = (signal: AbortSignal) => ({ bin: config.helmBin ?? 'helm', kubeconfig: kube.kubeconfigPath, home: resolve(config.dataDir, 'helm'), signal });
  const core = () => kube.api((k8s) => k8s.CoreV1Api);
  return {
    name,
    async list(signal) {
      const found: Found[] & { problems?: string[] } = [];
      const problems: string[] = [];
      const api = await core();
      // Each kind on its own: a kind Berth may not list (RBAC) is reported, the others are still swept.
      const part = async (what: string, fn: () => Promise<void>) => {
        try {
          await fn();
        } catch (err) {
          if (statusOf(err) === 403) problems.push(`Berth may not list ${what} cluster-wide (grant "list" on them to sweep them; see the README's Admin API section)`);
          else if (err instanceof HelmError && /was not found/.test(err.message)) log.debug('helm is not installed: Helm releases are not swept');
          else problems.push(`listing ${what} failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
        }
      };
      await part('namespaces', async () => {
        const namespaces = await api.listNamespace({ labelSelector: `${MANAGED_BY_SELECTOR},${INSTANCE_LABEL}` });
        for (const ns of namespaces.items) {
          const instanceId = ns.metadata?.annotations?.[INSTANCE_ID_ANNOTATION];
          const label = ns.metadata?.labels?.[INSTANCE_LABEL];
          if (!instanceId || label !== idHash(instanceId) || !ns.metadata?.name?.endsWith(label)) continue;
          found.push({ backend: name, kind: 'namespace', name: ns.metadata.name, owner: { instanceId }, createdAt: ns.metadata.creationTimestamp });
        }
      });
      await part('secrets', async () => {
        const secrets = await api.listSecretForAllNamespaces({ labelSelector: `${MANAGED_BY_SELECTOR},${BINDING_LABEL}` });
        for (const s of secrets.items) {
          const instanceId = s.metadata?.annotations?.[INSTANCE_ID_ANNOTATION];
          const bindingId = s.metadata?.annotations?.[BINDING_ID_ANNOTATION];
          if (!instanceId || !bindingId || s.metadata?.name !== bindingSecretName(instanceId, bindingId)) continue;
          found.push({ backend: name, kind: 'secret', name: s.metadata.name, namespace: s.metadata.namespace!, owner: { instanceId, bindingId }, createdAt: s.metadata.creationTimestamp });
        }
      });
      await part('Helm releases (their Secrets)', async () => {
        const out = await helm(['list', '--all-namespaces', '--deployed', '--failed', '--pending', '--superseded', '--uninstalling', '--max', '100000', '--output', 'json', '--filter', '^b-[a-z2-7]{20}$'], helmOptions(signal)).catch((err) => {
          if (err instanceof HelmError && /forbidden/i.test(err.stderr)) throw Object.assign(new Error(err.message), { code: 403 });
          throw err;
        });
        for (const r of JSON.parse(out || '[]') as Array<{ name: string; namespace: string }>) {
          const m = RELEASE.exec(r.name);
          if (m) found.push({ backend: name, kind: 'helm-release', name: r.name, namespace: r.namespace, owner: { instanceHash: m[1]!, hashOf: 'kube' } });
        }
      });
      if (problems.length > 0) found.problems = problems;
      return found;
    },
    async remove(found, signal) {
      const api = await core();
      try {
        if (found.kind === 'helm-release' && RELEASE.test(found.name)) {
          await helm(['uninstall', found.name, '--namespace', found.namespace!, '--ignore-not-found'], helmOptions(signal));
        } else if (found.kind === 'namespace') {
          // Read again: it must still be the namespace Berth made for that instance.
          const ns = await api.readNamespace({ name: found.name });
          const owner = found.owner as { instanceId: string };
          if (ns.metadata?.annotations?.[INSTANCE_ID_ANNOTATION] !== owner.instanceId || ns.metadata?.labels?.[INSTANCE_LABEL] !== idHash(owner.instanceId)) {
            throw new Error(`namespace ${found.name} no longer carries Berth's labels for instance ${owner.instanceId}; not removed`);
          }
          await api.deleteNamespace({ name: found.name });
        } else if (found.kind === 'secret') {
          const s = await api.readNamespacedSecret({ name: found.name, namespace: found.namespace! });
          const owner = found.owner as { instanceId: string; bindingId: string };
          if (
            s.metadata?.labels?.['app.kubernetes.io/managed-by'] !== 'berth' ||
            s.metadata?.annotations?.[INSTANCE_ID_ANNOTATION] !== owner.instanceId ||
            s.metadata?.annotations?.[BINDING_ID_ANNOTATION] !== owner.bindingId
          ) {
            throw new Error(`Secret ${found.namespace}/${found.name} no longer carries Berth's labels for binding ${owner.bindingId}; not removed`);
          }
          await api.deleteNamespacedSecret({ name: found.name, namespace: found.namespace! });
        } else {
          throw new Error(`${found.kind} ${found.name} is nothing Berth makes; not removed`);
        }
      } catch (err) {
        if (statusOf(err) === 404) return;
        throw err;
      }
    },
  };
}
