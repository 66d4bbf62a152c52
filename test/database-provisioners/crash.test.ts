// kill -9 in the middle of a provision or a bind, then a restart: the operation
// completes, nothing is duplicated, and deprovision leaves nothing behind.
// Berth runs as a child process; BERTH_FAILPOINTS makes it SIGKILL itself.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { spawnBerth, type BerthProcess } from '../support/berth.ts';
import { createTestDatabase } from '../support/postgres.ts';
import { mysqlNames, pgNames } from '../../src/provisioners/sql/names.ts';
import { nameHash } from '../../src/lib/hash-names.ts';
import { scramSha256Verifier } from '../../src/provisioners/postgres/scram.ts';
import {
  CATALOG,
  MY,
  PG,
  Tracker,
  mysqlAs,
  mysqlDatabaseExists,
  pgAs,
  pgDatabaseExists,
  pgRoleExists,
  serverEnv,
  withMysql,
  withPg,
  type Credentials,
} from './support.ts';

const children: BerthProcess[] = [];
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  for (const fn of cleanups.reverse()) await fn().catch(() => {});
});

async function setup(): Promise<{ env: Record<string, string>; tracker: Tracker }> {
  const state = await createTestDatabase('berth_test_dbcrash');
  const tracker = new Tracker();
  cleanups.push(() => state.drop(), () => tracker.cleanup());
  const env = {
    DATABASE_URL: state.url,
    CATALOG_PATH: CATALOG,
    BERTH_LEASE_SECONDS: '2',
    BERTH_POLL_INTERVAL_MS: '50',
    ...serverEnv(),
  };
  return { env, tracker };
}

async function spawn(env: Record<string, string>): Promise<BerthProcess> {
  const p = await spawnBerth(env);
  children.push(p);
  return p;
}

/** Objects on the Postgres server whose names carry this instance's hash (any prefix). */
async function pgObjectsOf(instanceId: string): Promise<{ databases: string[]; roles: string[] }> {
  const h = nameHash('instance', instanceId);
  return withPg(async (c) => ({
    databases: (await c.query('SELECT datname FROM pg_database WHERE position($1 in datname) > 0', [h])).rows.map((r) => r.datname),
    roles: (await c.query('SELECT rolname FROM pg_roles WHERE position($1 in rolname) > 0', [h])).rows.map((r) => r.rolname),
  }));
}

test('postgres: killed between creating the database and the owner role, a restart completes the provision', async () => {
  const { env, tracker } = await setup();
  const id = tracker.instance();
  const body = { service_id: PG.service, plan_id: PG.small, organization_guid: 'o', space_guid: 's', parameters: { extensions: ['citext'] } };

  const first = await spawn({ ...env, BERTH_FAILPOINTS: 'postgres:after-create-database' });
  const accepted = await first.client.provision(id, body);
  assert.equal(accepted.status, 202, accepted.text);
  assert.equal(await first.exited, 'SIGKILL', first.output());

  // The crash left a database without its owner role.
  assert.equal(await pgDatabaseExists(pgNames.database(id)), true);
  assert.equal(await pgRoleExists(pgNames.ownerRole(id)), false);

  const second = await spawn(env);
  const done = await second.client.waitForInstance(id, accepted.body.operation, 60_000);
  assert.equal(done.body?.state, 'succeeded', `${done.text}\n${second.output()}`);
  assert.deepEqual(await pgObjectsOf(id), { databases: [pgNames.database(id)], roles: [pgNames.ownerRole(id)] }, 'nothing duplicated');

  // The instance is complete: bindings work and are confined to it.
  const bindingId = tracker.binding(id);
  const bound = await second.client.bind(id, bindingId, { service_id: PG.service, plan_id: PG.small });
  assert.equal(bound.status, 201, bound.text);
  const creds = bound.body.credentials as Credentials;
  await pgAs(creds, async (c) => {
    await c.query('CREATE TABLE t (email citext)');
    await c.query(`INSERT INTO t VALUES ('X@Y')`);
    assert.equal((await c.query(`SELECT count(*)::int AS n FROM t WHERE email = 'x@y'`)).rows[0].n, 1);
  });
  await withPg(async (c) => {
    const { rows } = await c.query(`SELECT has_database_privilege('public', $1, 'CONNECT') AS ok, datallowconn, datconnlimit FROM pg_database WHERE datname = $1`, [pgNames.database(id)]);
    assert.deepEqual(rows[0], { ok: false, datallowconn: true, datconnlimit: 5 });
  });

  const gone = await second.client.deprovision(id, PG.service, PG.small);
  assert.equal(gone.status, 202, gone.text);
  assert.equal((await second.client.waitForInstance(id, gone.body.operation, 60_000)).body?.state, 'succeeded');
  assert.deepEqual(await pgObjectsOf(id), { databases: [], roles: [] }, 'nothing left behind');
  assert.equal(await pgRoleExists(creds.username!), false);
  second.child.kill('SIGTERM');
  await second.exited;
});

test('postgres: killed after creating a binding role, a restart finishes the bind with the checkpointed password', async () => {
  const { env, tracker } = await setup();
  const first = await spawn({ ...env, BERTH_FAILPOINTS: 'postgres:after-create-role' });
  const id = tracker.instance();
  const p = await first.client.provision(id, { service_id: PG.service, plan_id: PG.small, organization_guid: 'o', space_guid: 's' });
  assert.equal((await first.client.waitForInstance(id, p.body.operation, 60_000)).body?.state, 'succeeded');

  const bindingId = tracker.binding(id);
  const bindReply = await first.client.bind(id, bindingId, { service_id: PG.service, plan_id: PG.small }).catch((err: Error) => err);
  assert.ok(bindReply instanceof Error, 'the process died while answering the bind');
  assert.equal(await first.exited, 'SIGKILL');
  const role = pgNames.bindingRole(id, bindingId);
  assert.equal(await pgRoleExists(role), true, 'the role was created before the crash');

  const second = await spawn(env);
  const done = await second.client.waitForBinding(id, bindingId, undefined, 60_000);
  assert.equal(done.body?.state, 'succeeded', `${done.text}\n${second.output()}`);
  const fetched = await second.client.fetchBinding(id, bindingId);
  assert.equal(fetched.status, 200, fetched.text);
  const creds = fetched.body.credentials as Credentials;
  assert.equal(creds.username, role);
  // The server holds a verifier of exactly the password handed out.
  const stored = await withPg(async (c) => (await c.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role])).rows[0].rolpassword as string);
  const [, iter, salt] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored)!;
  assert.equal(stored, await scramSha256Verifier(creds.password!, Buffer.from(salt!, 'base64'), Number(iter)));
  await pgAs(creds, (c) => c.query('CREATE TABLE t (x int)'));

  const gone = await second.client.deprovision(id, PG.service, PG.small);
  assert.equal((await second.client.waitForInstance(id, gone.body.operation, 60_000)).body?.state, 'succeeded');
  assert.deepEqual(await pgObjectsOf(id), { databases: [], roles: [] });
  assert.equal(await pgRoleExists(role), false);
  second.child.kill('SIGTERM');
  await second.exited;
});

test('mysql: killed right after creating the database, a restart completes the provision', async () => {
  const { env, tracker } = await setup();
  const id = tracker.instance();
  const first = await spawn({ ...env, BERTH_FAILPOINTS: 'mysql:after-create-database' });
  const accepted = await first.client.provision(id, { service_id: MY.service, plan_id: MY.small, organization_guid: 'o', space_guid: 's' });
  assert.equal(accepted.status, 202, accepted.text);
  assert.equal(await first.exited, 'SIGKILL');
  assert.equal(await mysqlDatabaseExists(mysqlNames.database(id)), true);

  const second = await spawn(env);
  assert.equal((await second.client.waitForInstance(id, accepted.body.operation, 60_000)).body?.state, 'succeeded');
  const bindingId = tracker.binding(id);
  const bound = await second.client.bind(id, bindingId, { service_id: MY.service, plan_id: MY.small });
  assert.equal(bound.status, 201, bound.text);
  await mysqlAs(bound.body.credentials, (c) => c.query('CREATE TABLE t (x INT)'));

  const gone = await second.client.deprovision(id, MY.service, MY.small);
  assert.equal((await second.client.waitForInstance(id, gone.body.operation, 60_000)).body?.state, 'succeeded');
  assert.equal(await mysqlDatabaseExists(mysqlNames.database(id)), false);
  const users = await withMysql(async (c) => {
    const [rows] = (await c.execute('SELECT User FROM mysql.user WHERE User = ?', [mysqlNames.bindingUser(id, bindingId)])) as unknown as [unknown[]];
    return rows.length;
  });
  assert.equal(users, 0);
  second.child.kill('SIGTERM');
  await second.exited;
});
