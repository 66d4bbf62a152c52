// What a test run must leave as it found it: on the shared Postgres and
// MariaDB servers the databases, roles and users named berth*, and in the
// run's Kubernetes cluster the namespaces. test/support/global-setup.ts takes
// a snapshot before the first test and compares at the end; whatever appeared
// and is still there is a leftover of the run (or, when other runs share the
// servers at the same time, possibly one of theirs: the message says so).
import pg from 'pg';
import mysql from 'mysql2/promise';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADMIN_URL as POSTGRES_ADMIN_URL } from './postgres.ts';

const MYSQL_ADMIN_URL = process.env.BERTH_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/';

/** Category ("Postgres databases") → names; a category is absent when its server could not be reached. */
export type Snapshot = Map<string, Set<string>>;

async function postgresObjects(into: Snapshot): Promise<void> {
  const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  c.on('error', () => {});
  await c.connect();
  try {
    const dbs = await c.query<{ name: string }>(`SELECT datname AS name FROM pg_database WHERE datname LIKE 'berth%'`);
    const roles = await c.query<{ name: string }>(`SELECT rolname AS name FROM pg_roles WHERE rolname LIKE 'berth%'`);
    into.set('Postgres databases', new Set(dbs.rows.map((r) => r.name)));
    into.set('Postgres roles', new Set(roles.rows.map((r) => r.name)));
  } finally {
    await c.end().catch(() => {});
  }
}

async function mariadbObjects(into: Snapshot): Promise<void> {
  const c = await mysql.createConnection({ uri: MYSQL_ADMIN_URL });
  c.on('error', () => {});
  try {
    const [dbs] = await c.query<mysql.RowDataPacket[]>(`SELECT schema_name AS name FROM information_schema.schemata WHERE schema_name LIKE 'berth%'`);
    const [users] = await c.query<mysql.RowDataPacket[]>(`SELECT CONCAT(user, '@', host) AS name FROM mysql.user WHERE user LIKE 'berth%'`);
    into.set('MariaDB databases', new Set(dbs.map((r) => String(r.name))));
    into.set('MariaDB users', new Set(users.map((r) => String(r.name))));
  } finally {
    await c.end().catch(() => c.destroy());
  }
}

/**
 * Berth's installation (deploy/rbac.yaml and deploy/admission-policy.yaml in berth-system), applied once per run
 * and shared by the test files that run Berth with exactly those rights (test/helm/support.ts): it goes with the
 * run's cluster, like the CRD-style cluster objects, so no single test file can remove it.
 */
const RUN_INSTALLATION_NAMESPACES = new Set(['berth-system']);

async function kubernetesNamespaces(into: Snapshot, kubeconfigPath: string): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const list = await kc.makeApiClient(CoreV1Api).listNamespace();
  const names = list.items.map((ns) => ns.metadata!.name!).filter((name) => !RUN_INSTALLATION_NAMESPACES.has(name));
  into.set('Kubernetes namespaces', new Set(names));
}

/** Everything named above that exists now. `unreachable` collects the servers that could not be asked. */
export async function takeSnapshot(opts: { kubeconfigPath?: string; unreachable?: string[] } = {}): Promise<Snapshot> {
  const snapshot: Snapshot = new Map();
  const ask = async (server: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      opts.unreachable?.push(`${server} (${err instanceof Error ? err.message : String(err)})`);
    }
  };
  await ask('Postgres', () => postgresObjects(snapshot));
  await ask('MariaDB', () => mariadbObjects(snapshot));
  if (opts.kubeconfigPath) await ask('Kubernetes', () => kubernetesNamespaces(snapshot, opts.kubeconfigPath!));
  return snapshot;
}

/** What is in `after` and was not in `before`, by category (categories missing from either are skipped). */
export function appeared(before: Snapshot, after: Snapshot): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const [category, names] of after) {
    const earlier = before.get(category);
    if (!earlier) continue;
    const fresh = [...names].filter((n) => !earlier.has(n)).sort();
    if (fresh.length > 0) found.set(category, fresh);
  }
  return found;
}

/**
 * The leftovers of the run that took `before`. Namespaces deleted at the end
 * of a test take a moment to finalise, and a process a test stopped may still
 * be dropping what it made, so new objects get `graceMs` (default 15 s,
 * BERTH_TEST_LEFTOVER_GRACE_MS) to disappear.
 */
export async function leftoversSince(before: Snapshot, opts: { kubeconfigPath?: string; graceMs?: number } = {}): Promise<Map<string, string[]>> {
  const until = Date.now() + (opts.graceMs ?? Number(process.env.BERTH_TEST_LEFTOVER_GRACE_MS ?? 15_000));
  for (;;) {
    const found = appeared(before, await takeSnapshot({ kubeconfigPath: opts.kubeconfigPath }));
    if (found.size === 0 || Date.now() >= until) return found;
    await sleep(1000);
  }
}

export function describeLeftovers(found: Map<string, string[]>): string {
  const LIMIT = 100;
  const lines = [...found].map(
    ([category, names]) => `  ${category}: ${names.slice(0, LIMIT).join(', ')}${names.length > LIMIT ? ` and ${names.length - LIMIT} more` : ''}`,
  );
  return (
    `the test run left objects on the shared servers that were not there when it started:\n${lines.join('\n')}\n` +
    `A test must drop what it creates, even when it fails (if another test run shared these servers at the same time, some may be its).`
  );
}
