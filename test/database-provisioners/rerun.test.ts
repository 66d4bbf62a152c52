// The idempotency contract, checked by calling the provisioners directly:
// every method run again (as after a crash or a lost lease) converges, from
// partial states too, and "already gone" is success.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { randomUUID } from 'node:crypto';
import { mysqlNames, pgNames } from '../../src/provisioners/sql/names.ts';
import type { JsonObject } from '../../src/provisioners/provisioner.ts';
import {
  MY,
  PG,
  Tracker,
  bindingOp,
  direct,
  instanceOp,
  mysqlAs,
  mysqlDatabaseExists,
  mysqlUserExists,
  outcome,
  pgAs,
  pgDatabaseExists,
  pgRoleExists,
  withPg,
  type Credentials,
} from './support.ts';

const tracker = new Tracker();
const d = direct();
after(async () => {
  await tracker.cleanup();
  await d.postgres.close();
});

test('postgres: every step converges when run again, from partial states too', async () => {
  const plan = d.plan(PG.small);
  const id = tracker.instance();
  const state: JsonObject = {};
  await d.postgres.provision(instanceOp(plan, id, state, { extensions: ['citext'] }));
  await d.postgres.provision(instanceOp(plan, id, state, { extensions: ['citext'] }));
  assert.deepEqual(state, { server: 'local', database: pgNames.database(id), ownerRole: pgNames.ownerRole(id) });

  // The same bind twice: the checkpointed password is reused and works.
  const b1 = tracker.binding(id);
  const bState: JsonObject = {};
  const first = (await d.postgres.bind(bindingOp(plan, id, state, b1, bState))).credentials as Credentials;
  const again = (await d.postgres.bind(bindingOp(plan, id, state, b1, bState))).credentials as Credentials;
  assert.deepEqual(again, first);
  await pgAs(first, (c) => c.query('CREATE TABLE t (x int)'));

  // The database disappeared (an operator dropped it): provision again re-creates it.
  await withPg((c) => c.query(`DROP DATABASE ${pgNames.database(id)} WITH (FORCE)`));
  await d.postgres.provision(instanceOp(plan, id, state, { extensions: ['citext'] }));
  await pgAs(first, (c) => c.query('CREATE TABLE t (x citext)'));

  // Unbind twice; unbind of a binding whose bind never started; unbind after the database is gone.
  await d.postgres.unbind(bindingOp(plan, id, state, b1, bState));
  await d.postgres.unbind(bindingOp(plan, id, state, b1, bState));
  assert.equal(await pgRoleExists(first.username!), false);
  await d.postgres.unbind(bindingOp(plan, id, state, tracker.binding(id), {}));

  // An orphaned binding role (its bind failed, nobody unbound it) goes with the instance.
  const orphan = tracker.binding(id);
  const orphanCreds = (await d.postgres.bind(bindingOp(plan, id, state, orphan, {}))).credentials as Credentials;
  await d.postgres.deprovision(instanceOp(plan, id, state));
  await d.postgres.deprovision(instanceOp(plan, id, state));
  assert.equal(await pgDatabaseExists(pgNames.database(id)), false);
  assert.equal(await pgRoleExists(pgNames.ownerRole(id)), false);
  assert.equal(await pgRoleExists(orphanCreds.username!), false);

  // A deprovision whose provision never reached the server (no state) does nothing and succeeds.
  await d.postgres.deprovision(instanceOp(plan, randomUUID(), {}));
});

test('postgres: unbind after the database is gone still drops the role', async () => {
  const plan = d.plan(PG.small);
  const id = tracker.instance();
  const state: JsonObject = {};
  await d.postgres.provision(instanceOp(plan, id, state));
  const b = tracker.binding(id);
  const bState: JsonObject = {};
  const creds = (await d.postgres.bind(bindingOp(plan, id, state, b, bState))).credentials as Credentials;
  await withPg((c) => c.query(`DROP DATABASE ${pgNames.database(id)} WITH (FORCE)`));
  await d.postgres.unbind(bindingOp(plan, id, state, b, bState));
  assert.equal(await pgRoleExists(creds.username!), false);
  await d.postgres.deprovision(instanceOp(plan, id, state));
  assert.equal(await pgRoleExists(pgNames.ownerRole(id)), false);
});

test('mysql: every step converges when run again; orphaned users go with the instance', async () => {
  const plan = d.plan(MY.small);
  const id = tracker.instance();
  const state: JsonObject = {};
  await d.mysql.provision(instanceOp(plan, id, state));
  await d.mysql.provision(instanceOp(plan, id, state));
  assert.deepEqual(state, { server: 'local', database: mysqlNames.database(id) });

  const b1 = tracker.binding(id);
  const bState: JsonObject = {};
  const first = (await d.mysql.bind(bindingOp(plan, id, state, b1, bState))).credentials as Credentials;
  const again = (await d.mysql.bind(bindingOp(plan, id, state, b1, bState))).credentials as Credentials;
  assert.deepEqual(again, first);
  await mysqlAs(first, (c) => c.query('CREATE TABLE t (x INT)'));

  await d.mysql.unbind(bindingOp(plan, id, state, b1, bState));
  await d.mysql.unbind(bindingOp(plan, id, state, b1, bState));
  assert.match(await outcome(() => mysqlAs(first, (c) => c.query('SELECT 1'))), /^ER_ACCESS_DENIED_(NO_PASSWORD_)?ERROR$/);
  await d.mysql.unbind(bindingOp(plan, id, state, tracker.binding(id), {}));

  const orphan = tracker.binding(id);
  const orphanCreds = (await d.mysql.bind(bindingOp(plan, id, state, orphan, {}))).credentials as Credentials;
  await d.mysql.deprovision(instanceOp(plan, id, state));
  await d.mysql.deprovision(instanceOp(plan, id, state));
  assert.equal(await mysqlDatabaseExists(mysqlNames.database(id)), false);
  assert.equal(await mysqlUserExists(orphanCreds.username!), false);
  await d.mysql.deprovision(instanceOp(plan, randomUUID(), {}));
});

test('postgres: an aborted operation (lease lost, halt) cancels its statement in flight instead of running on', async () => {
  const plan = d.plan(PG.small);
  const id = tracker.instance();
  const state: JsonObject = {};
  await d.postgres.provision(instanceOp(plan, id, state));
  await withPg(async (blocker) => {
    // An open transaction that updated the database's pg_database row: Berth's REVOKE/GRANT on it must wait.
    await blocker.query('BEGIN');
    await blocker.query(`ALTER DATABASE ${pgNames.database(id)} CONNECTION LIMIT 3`);
    const ac = new AbortController();
    const started = Date.now();
    const run = d.postgres.provision({ ...instanceOp(plan, id, state), signal: ac.signal });
    const waitingBerth = () =>
      withPg(async (c) => (await c.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'berth' AND wait_event_type = 'Lock'`)).rows[0].n as number);
    for (let i = 0; i < 50 && (await waitingBerth()) === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await waitingBerth(), 1, 'the provision is blocked behind the open transaction');
    ac.abort(new Error('lease lost'));
    await assert.rejects(run, /lease lost/);
    assert.ok(Date.now() - started < 10_000, 'returned long before lock_timeout');
    assert.equal(await waitingBerth(), 0, 'no Berth statement is left waiting');
    await blocker.query('ROLLBACK');
  });
  await d.postgres.deprovision(instanceOp(plan, id, state));
});
