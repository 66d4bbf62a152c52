// Per-binding logins on a server a Helm release runs (credentials.per_binding in
// a helm plan): instead of handing every binding the chart's one admin password,
// Berth creates a login for each binding inside the server, checks that it can
// log in before answering, and removes it on unbind (its sessions ended).
//
// The server is reached through the Kubernetes API: a port-forward (the same
// route `kubectl port-forward` takes) to a Ready Pod behind the release's
// Service, on a local port that only lives for the operation. The root of trust
// is the admin login the chart created (its Secret, named in the plan).
//
//   postgresql  one NOLOGIN group role `berth_app` per server owns what bindings
//               create (schema public is granted to it); each binding is a LOGIN
//               role in it whose sessions act as `berth_app`. Unbind: NOLOGIN,
//               end its sessions, REASSIGN/DROP OWNED, DROP ROLE.
//   redis       an ACL user per binding (`+@all -@admin`, all keys and channels).
//               Unbind: ACL DELUSER, which also closes its connections. ACL users
//               live in the server's memory: a restarted Redis Pod forgets them
//               (the chart keeps no ACL file), so bind again after a restart.
import net from 'node:net';
import type { V1Pod } from '@kubernetes/client-node';
import { z } from 'zod';
import { loadKubernetesClient, type KubernetesAccess } from '../../kubernetes/client.ts';
import { kubernetesFailure, statusOf } from '../../kubernetes/errors.ts';
import { PermanentError } from '../provisioner.ts';
import { scramSha256Verifier } from '../postgres/scram.ts';
import { nameHash } from '../../lib/hash-names.ts';
import { generatePassword, quotePgIdent as ident, quotePgLiteral as literal } from '../sql/names.ts';

/** Where a value comes from: the same forms as credentials.entries ("secret:<name>:<key>", or literal text). */
const source = z.string().min(1);

export const perBindingSchema = z.discriminatedUnion('engine', [
  z
    .object({
      engine: z.literal('postgresql'),
      /** The Service in front of the server and its port (name or number). */
      service: z.string().default('{release}'),
      port: z.string().default('postgresql'),
      admin_username: source,
      admin_password: source,
      /** The database the bindings get (and the admin logs in to). */
      database: source,
    })
    .strict(),
  z
    .object({
      engine: z.literal('redis'),
      service: z.string().default('{release}'),
      port: z.string().default('redis'),
      admin_username: source.default('default'),
      admin_password: source,
    })
    .strict(),
]);
export type PerBinding = z.infer<typeof perBindingSchema>;

export interface Login {
  username: string;
  password: string;
}

/** The login name of a binding: the same on every re-run of the bind. */
export function bindingLoginName(instanceId: string, bindingId: string): string {
  return `berth_b_${nameHash('helm-binding', instanceId, bindingId)}`;
}

export { generatePassword };

// --- reaching the server ------------------------------------------------------------------------

function isReady(p: V1Pod): boolean {
  return !p.metadata?.deletionTimestamp && (p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false);
}

/**
 * Runs `fn` with a local port on 127.0.0.1 forwarded through the Kubernetes API
 * to a Ready Pod behind `service` (its port `port`, by name or number).
 */
export async function withServiceForward<T>(
  kube: KubernetesAccess,
  namespace: string,
  service: string,
  port: string,
  fn: (localPort: number) => Promise<T>,
): Promise<T> {
  const core = await kube.api((k8s) => k8s.CoreV1Api);
  let pod: V1Pod | undefined;
  let target: number | undefined;
  try {
    const svc = await core.readNamespacedService({ name: service, namespace });
    const sp = svc.spec?.ports?.find((p) => p.name === port || String(p.port) === port);
    if (!sp) throw new PermanentError(`Service ${service} in ${namespace} has no port "${port}" (credentials.per_binding.port).`);
    const selector = Object.entries(svc.spec?.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
    if (!selector) throw new PermanentError(`Service ${service} in ${namespace} selects no Pods; Berth cannot reach the server behind it.`);
    pod = (await core.listNamespacedPod({ namespace, labelSelector: selector })).items.find(isReady);
    const tp = sp.targetPort ?? sp.port;
    target = typeof tp === 'number' ? tp : /^\d+$/.test(tp) ? Number(tp) : pod?.spec?.containers.flatMap((c) => c.ports ?? []).find((p) => p.name === tp)?.containerPort;
  } catch (err) {
    if (err instanceof PermanentError) throw err;
    if (statusOf(err) === 404) throw err; // the caller knows what a missing Service means for it
    throw kubernetesFailure(err, `read Service ${service} and its Pods in namespace ${namespace}`);
  }
  // Not ready right now (restarting, rolling): a transient condition, the operation is retried.
  if (!pod?.metadata?.name) throw new Error(`no Ready Pod behind Service ${service} in ${namespace}`);
  if (target === undefined) throw new PermanentError(`Service ${service} in ${namespace}: port "${port}" maps to no container port of Pod ${pod.metadata.name}.`);

  const k8s = await loadKubernetesClient();
  const forward = new k8s.PortForward(await kube.kubeConfig(), true);
  const podName = pod.metadata.name;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    forward
      .portForward(namespace, podName, [target], socket, null, socket)
      .then((ws) => {
        if (typeof ws !== 'function') socket.on('close', () => ws.close());
      })
      .catch(() => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  try {
    return await fn((server.address() as net.AddressInfo).port);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

// --- postgresql ---------------------------------------------------------------------------------

const GROUP_ROLE = 'berth_app';

interface PgAdmin {
  username: string;
  password: string;
  database: string;
}

async function pgSession<T>(port: number, who: { user: string; password: string; database: string }, fn: (c: import('pg').Client) => Promise<T>): Promise<T> {
  const pg = (await import('pg')).default;
  const c = new pg.Client({ host: '127.0.0.1', port, user: who.user, password: who.password, database: who.database, connectionTimeoutMillis: 15_000 });
  c.on('error', () => undefined); // a dropped forward surfaces as the query's error
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Creates (or converges) the binding's login role and checks that it logs in. */
export async function createPostgresLogin(port: number, admin: PgAdmin, login: Login): Promise<void> {
  const verifier = literal(await scramSha256Verifier(login.password));
  const role = ident(login.username);
  const group = ident(GROUP_ROLE);
  await pgSession(port, { user: admin.username, password: admin.password, database: admin.database }, async (c) => {
    const { rows } = await c.query<{ group: boolean; binding: boolean }>(
      'SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS group, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2) AS binding',
      [GROUP_ROLE, login.username],
    );
    if (!rows[0]?.group) {
      try {
        await c.query(`CREATE ROLE ${group} NOLOGIN`);
      } catch (err) {
        if ((err as { code?: string }).code !== '42710') throw err; // created meanwhile by a concurrent bind
      }
    }
    // What bindings create belongs to the group role, so every binding of the instance can use it.
    await c.query(`GRANT CONNECT, CREATE, TEMPORARY ON DATABASE ${ident(admin.database)} TO ${group}`);
    await c.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${group}`);
    if (rows[0]?.binding) {
      await c.query(`ALTER ROLE ${role} WITH LOGIN INHERIT PASSWORD ${verifier}`);
      await c.query(`GRANT ${group} TO ${role}`);
    } else {
      await c.query(`CREATE ROLE ${role} WITH LOGIN INHERIT PASSWORD ${verifier} IN ROLE ${group}`);
    }
    await c.query(`ALTER ROLE ${role} SET role = ${literal(GROUP_ROLE)}`);
  });
  // Before Berth answers: the app will be able to log in with exactly this.
  await pgSession(port, { user: login.username, password: login.password, database: admin.database }, async (c) => {
    await c.query('SELECT 1');
  });
}

/** No new logins, its sessions ended, what it owns handed to the group role, the role dropped. Absent: nothing to do. */
export async function dropPostgresLogin(port: number, admin: PgAdmin, username: string): Promise<void> {
  const role = ident(username);
  await pgSession(port, { user: admin.username, password: admin.password, database: admin.database }, async (c) => {
    const { rows } = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [username]);
    if (rows.length === 0) return;
    await c.query(`ALTER ROLE ${role} NOLOGIN`);
    await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()', [username]);
    const group = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [GROUP_ROLE]);
    if (group.rows.length > 0) await c.query(`REASSIGN OWNED BY ${role} TO ${ident(GROUP_ROLE)}`);
    await c.query(`DROP OWNED BY ${role}`);
    await c.query(`DROP ROLE IF EXISTS ${role}`);
  });
}

// --- redis --------------------------------------------------------------------------------------

interface RedisAdmin {
  username: string;
  password: string;
}

async function redisSession<T>(port: number, who: RedisAdmin, fn: (c: { sendCommand(args: string[]): Promise<unknown> }) => Promise<T>): Promise<T> {
  const { createClient } = await import('redis');
  const c = createClient({
    socket: { host: '127.0.0.1', port, connectTimeout: 15_000, reconnectStrategy: false },
    username: who.username,
    password: who.password,
  });
  c.on('error', () => undefined); // surfaces as the command's error
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.close().catch(() => undefined);
  }
}

/** Creates (or resets) the binding's ACL user and checks that it authenticates. */
export async function createRedisLogin(port: number, admin: RedisAdmin, login: Login): Promise<void> {
  await redisSession(port, admin, (c) =>
    c.sendCommand(['ACL', 'SETUSER', login.username, 'reset', 'on', `>${login.password}`, '~*', '&*', '+@all', '-@admin']),
  );
  await redisSession(port, login, async (c) => {
    if ((await c.sendCommand(['PING'])) !== 'PONG') throw new Error(`Redis did not answer PING for the new user ${login.username}`);
  });
}

/** Removes the binding's ACL user; Redis closes its connections. */
export async function dropRedisLogin(port: number, admin: RedisAdmin, username: string): Promise<void> {
  await redisSession(port, admin, (c) => c.sendCommand(['ACL', 'DELUSER', username]));
}
