// Hostile ids and parameters (quotes, semicolons, very long, unicode) neither
// break the database provisioners nor reach SQL: full lifecycles with such ids
// on both servers, and parameters that try to smuggle SQL in.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mysqlNames, pgNames } from '../../src/provisioners/sql/names.ts';
import {
  DbBerth,
  MY,
  PG,
  mysqlAs,
  mysqlDatabaseExists,
  mysqlUserExists,
  outcome,
  pgAs,
  pgDatabaseExists,
  pgRoleExists,
  withMysql,
} from './support.ts';

let h: DbBerth;
before(async () => {
  h = await DbBerth.start();
});
after(async () => {
  await h?.stop();
});

const HOSTILE_IDS = [
  `'; DROP ROLE postgres; --`,
  `"; DROP DATABASE postgres; --`,
  '`; DROP DATABASE mysql; -- `',
  `Robert'); DROP TABLE students;--`,
  `$$; DROP ROLE postgres; $$`,
  `\\'; SELECT pg_sleep(10); --\\`,
  `%_% ' OR '1'='1`,
  'ünïcødé-数据库-💥-\u202Eevil',
  'line\nbreak\ttab\r\n',
  'x'.repeat(1024),
  // Long multi-byte ids, cut to the broker's limit of 1024 bytes below.
  '€'.repeat(700),
];

/** The longest prefix of `raw` that, with `suffix`, fits the broker's 1024-byte id limit. */
function fit(raw: string, suffix: string): string {
  let out = raw;
  while (Buffer.byteLength(out + suffix) > 1024) out = out.slice(0, -1);
  return out + suffix;
}

test('ids over 1024 bytes are refused with 400 before anything is created', async () => {
  const r = await h.client.provision('€'.repeat(400), { service_id: PG.service, plan_id: PG.small, organization_guid: 'o', space_guid: 's' });
  assert.equal(r.status, 400, r.text);
  assert.match(r.body.description, /1024 bytes/);
});

async function serversIntact(): Promise<void> {
  assert.equal(await pgRoleExists('postgres'), true);
  assert.equal(await pgDatabaseExists('postgres'), true);
  assert.equal(await withMysql(async (c) => ((await c.query('SHOW DATABASES LIKE \'mysql\'')) as unknown as [unknown[]])[0].length), 1);
}

test('postgres: full lifecycle with hostile instance and binding ids', async () => {
  for (const [i, raw] of HOSTILE_IDS.entries()) {
    const instanceId = fit(raw, `#${i}-pg`);
    const bindingId = fit(raw, '#binding');
    const id = await h.provisioned(PG.service, PG.small, undefined, instanceId);
    h.tracker.binding(id, bindingId);
    const { credentials } = await h.bound(id, PG.service, PG.small, bindingId);
    assert.equal(credentials.database, pgNames.database(instanceId));
    assert.equal(credentials.username, pgNames.bindingRole(instanceId, bindingId));
    await pgAs(credentials, async (c) => {
      await c.query('CREATE TABLE t (v text)');
      await c.query('INSERT INTO t VALUES ($1)', [raw]);
      assert.equal((await c.query('SELECT v FROM t')).rows[0].v, raw);
    });
    const fetched = await h.client.fetchBinding(id, bindingId);
    assert.equal(fetched.status, 200, fetched.text);
    assert.equal((await h.unbind(id, bindingId, PG.service, PG.small)).status, 200);
    assert.equal((await h.deprovision(id, PG.service, PG.small)).body?.state, 'succeeded', JSON.stringify(raw));
    assert.equal(await pgDatabaseExists(pgNames.database(instanceId)), false);
    assert.equal(await pgRoleExists(pgNames.ownerRole(instanceId)), false);
    assert.equal(await pgRoleExists(credentials.username!), false);
  }
  await serversIntact();
});

test('mysql: full lifecycle with hostile instance and binding ids', async () => {
  for (const [i, raw] of HOSTILE_IDS.entries()) {
    const instanceId = fit(raw, `#${i}-my`);
    const bindingId = fit(raw, '#binding');
    const id = await h.provisioned(MY.service, MY.small, undefined, instanceId);
    h.tracker.binding(id, bindingId);
    const { credentials } = await h.bound(id, MY.service, MY.small, bindingId);
    assert.equal(credentials.database, mysqlNames.database(instanceId));
    assert.equal(credentials.username, mysqlNames.bindingUser(instanceId, bindingId));
    await mysqlAs(credentials, async (c) => {
      await c.query('CREATE TABLE t (v TEXT CHARACTER SET utf8mb4)');
      await c.execute('INSERT INTO t VALUES (?)', [raw]);
      const [rows] = (await c.query('SELECT v FROM t')) as unknown as [Array<{ v: string }>];
      assert.equal(rows[0]!.v, raw);
    });
    assert.equal((await h.unbind(id, bindingId, MY.service, MY.small)).status, 200);
    assert.equal((await h.deprovision(id, MY.service, MY.small)).body?.state, 'succeeded', JSON.stringify(raw));
    assert.equal(await mysqlDatabaseExists(mysqlNames.database(instanceId)), false);
    assert.equal(await mysqlUserExists(credentials.username!), false);
  }
  await serversIntact();
});

const HOSTILE_EXTENSIONS: unknown[] = [
  [`pgcrypto"; DROP DATABASE postgres; --`],
  [`citext'); DROP ROLE postgres; --`],
  ['x'.repeat(10_000)],
  ['ünïcødé'],
  ['plpython3u'],
  'citext',
  [{ $ne: 1 }],
  [null],
];

test('postgres: hostile extension parameters are refused by the plan schema (400) or, without one, by the provisioner', async () => {
  for (const extensions of HOSTILE_EXTENSIONS) {
    const withSchema = await h.provision(PG.service, PG.small, { extensions });
    assert.equal(withSchema.first.status, 400, withSchema.first.text);
    assert.equal(await pgDatabaseExists(pgNames.database(withSchema.id)), false);

    // pg-large has no parameter schema: the provisioner checks against its allow-list itself.
    const r = await h.provision(PG.service, PG.large, { extensions });
    assert.equal(r.first.status, 202, r.first.text);
    assert.equal(r.last.body?.state, 'failed', r.last.text);
    assert.match(r.last.body.description, /does not offer|must be an array/);
    assert.ok(r.last.body.description.length < 400, 'the description does not echo a huge value');
    assert.equal(await pgDatabaseExists(pgNames.database(r.id)), false, 'nothing is created');
    assert.equal((await h.deprovision(r.id, PG.service, PG.large)).body?.state, 'succeeded');
  }
  await serversIntact();
});

test('binding parameters and unknown instance parameters cannot choose names or credentials', async () => {
  const pgId = await h.provisioned(PG.service, PG.large, { username: 'postgres', database: 'postgres', "'; DROP ROLE postgres; --": true });
  const b = h.tracker.binding(pgId);
  const r = await h.bind(pgId, PG.service, PG.large, b, { parameters: { username: 'postgres', password: 'x', role: 'postgres' } });
  assert.equal(r.reply.status, 201, r.reply.text);
  assert.equal(r.reply.body.credentials.username, pgNames.bindingRole(pgId, b));
  assert.equal(r.reply.body.credentials.database, pgNames.database(pgId));
  assert.equal(await outcome(() => pgAs(r.reply.body.credentials, (c) => c.query('CREATE ROLE nope'))), '42501');
  assert.equal((await h.deprovision(pgId, PG.service, PG.large)).body?.state, 'succeeded');

  const myId = await h.provisioned(MY.service, MY.small, { username: 'root', database: 'mysql' });
  const mb = h.tracker.binding(myId);
  const m = await h.bind(myId, MY.service, MY.small, mb, { parameters: { username: 'root' } });
  assert.equal(m.reply.status, 201, m.reply.text);
  assert.equal(m.reply.body.credentials.username, mysqlNames.bindingUser(myId, mb));
  assert.equal(await outcome(() => mysqlAs(m.reply.body.credentials, (c) => c.query('SELECT 1'), 'mysql')), 'ER_DBACCESS_DENIED_ERROR');
  assert.equal((await h.deprovision(myId, MY.service, MY.small)).body?.state, 'succeeded');
  await serversIntact();
});

test('an id with a NUL character is refused with 400 and creates nothing', async () => {
  const id = h.tracker.instance(`nul\u0000'; DROP ROLE postgres; --`);
  const r = await h.client.provision(id, { service_id: PG.service, plan_id: PG.small, organization_guid: 'o', space_guid: 's' });
  assert.equal(r.status, 400, r.text);
  assert.match(r.body.description, /NUL/);
  // Neither the database nor the owner role the id would have got exists.
  assert.equal(await pgDatabaseExists(pgNames.database(id)), false);
  assert.equal(await pgRoleExists(pgNames.ownerRole(id)), false);
  await serversIntact();
});
