// Deadlines on provisioner SQL (issue 16, point 4): an admin statement blocked
// by a lock the test holds, on a plan with a 3 s maximum_polling_duration. The
// operation ends failed with a description naming the deadline, and the
// statement is gone from the server (cancelled, not left waiting on the lock).
// And when the server stops answering altogether (a proxy that drops
// everything, so that the cancel cannot reach it either), the worker stops
// waiting shortly after the deadline instead of hanging on.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { parse, stringify } from 'yaml';
import { startTestBerth, type TestBerth } from '../support/berth.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { mysqlNames, pgNames, quoteMysqlIdent, quotePgIdent } from '../../src/provisioners/sql/names.ts';
import { CATALOG, MY, MYSQL_ADMIN_URL, PG, PG_ADMIN_URL, Tracker, serverEnv, withMysql, withPg } from './support.ts';

const DEADLINE_S = 3;
const ORG = { organization_guid: 'org', space_guid: 'space' };

/** The fixture catalog with a short maximum_polling_duration on pg-small and my-small. */
function shortDeadlineCatalog(): string {
  const doc = parse(readFileSync(CATALOG, 'utf8')) as { services: Array<{ plans: Array<{ id: string; maximum_polling_duration?: number }> }> };
  for (const s of doc.services) for (const p of s.plans) if (p.id === PG.small || p.id === MY.small) p.maximum_polling_duration = DEADLINE_S;
  const file = join(mkdtempSync(join(tmpdir(), 'berth-deadline-')), 'catalog.yaml');
  writeFileSync(file, stringify(doc));
  return file;
}
const catalogFile = shortDeadlineCatalog();

let state: TestDatabase;
let berth: TestBerth;
const tracker = new Tracker();
before(async () => {
  state = await createTestDatabase('berth_test_deadline');
  berth = await startTestBerth({ databaseUrl: state.url, catalogPath: catalogFile, env: serverEnv() });
});
after(async () => {
  try {
    await tracker.cleanup();
  } finally {
    await berth?.stop().catch(() => {});
    await state?.drop();
  }
});

test('postgres: a statement blocked past the deadline is cancelled and the provision ends failed, naming the deadline', async () => {
  const id = tracker.instance();
  const database = pgNames.database(id);
  // The database exists already (as after a crash), and the test holds its pg_database row:
  // Berth's REVOKE on it waits for the test's transaction.
  await withPg((c) => c.query(`CREATE DATABASE ${quotePgIdent(database)}`));
  const holder = new pg.Client({ connectionString: PG_ADMIN_URL });
  holder.on('error', () => {});
  await holder.connect();
  try {
    await holder.query('BEGIN');
    await holder.query(`GRANT CONNECT ON DATABASE ${quotePgIdent(database)} TO PUBLIC`);

    const p = await berth.client.provision(id, { service_id: PG.service, plan_id: PG.small, ...ORG });
    assert.equal(p.status, 202, p.text);
    const last = await berth.client.waitForInstance(id, p.body.operation, 60_000);
    assert.equal(last.body?.state, 'failed', last.text);
    assert.match(last.body.description, new RegExp(`maximum_polling_duration of ${DEADLINE_S} s`));

    const { rows } = await holder.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'berth' AND state <> 'idle' AND query LIKE $1`,
      [`%${database}%`],
    );
    assert.equal(rows[0]!.n, 0, 'no statement of Berth is left running on the server');
  } finally {
    await holder.query('ROLLBACK').catch(() => {});
    await holder.end().catch(() => {});
  }
});

test('mysql: a DROP DATABASE blocked past the deadline is killed and the deprovision ends failed, naming the deadline', async () => {
  const id = tracker.instance();
  const database = mysqlNames.database(id);
  const p = await berth.client.provision(id, { service_id: MY.service, plan_id: MY.small, ...ORG });
  assert.equal(p.status, 202, p.text);
  assert.equal((await berth.client.waitForInstance(id, p.body.operation, 60_000)).body?.state, 'succeeded');
  await withMysql((c) => c.query(`CREATE TABLE ${quoteMysqlIdent(database)}.held (id int)`));

  // An open transaction that read the table holds its metadata lock: DROP DATABASE waits for it.
  // (No default database, so Berth does not end this session as one of the database's own.)
  const holder = await mysql.createConnection({ uri: MYSQL_ADMIN_URL });
  holder.on('error', () => {});
  let d0 = '';
  try {
    await holder.query('START TRANSACTION');
    await holder.query(`SELECT * FROM ${quoteMysqlIdent(database)}.held`);

    const d = await berth.client.deprovision(id, MY.service, MY.small);
    assert.equal(d.status, 202, d.text);
    d0 = d.body.operation;
    const last = await berth.client.waitForInstance(id, d.body.operation, 60_000);
    assert.equal(last.body?.state, 'failed', last.text);
    assert.match(last.body.description, new RegExp(`maximum_polling_duration of ${DEADLINE_S} s`));

    const [rows] = await holder.execute<mysql.RowDataPacket[]>(
      `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE COMMAND = 'Query' AND INFO LIKE ?`,
      [`DROP DATABASE%${database}%`],
    );
    assert.equal(Number(rows[0]!.n), 0, 'the DROP DATABASE is no longer running on the server');
  } finally {
    await holder.query('ROLLBACK').catch(() => {});
    await holder.end().catch(() => holder.destroy());
  }

  // The failed delete stands for an identical repeat until the platform updates the instance;
  // after that, with the lock gone, the next deprovision completes.
  const repeat = await berth.client.deprovision(id, MY.service, MY.small);
  assert.deepEqual([repeat.status, repeat.body.operation], [202, d0], 'the repeat is answered with the failed delete');
  assert.equal((await berth.client.update(id, { service_id: MY.service })).status, 200);
  const again = await berth.client.deprovision(id, MY.service, MY.small);
  assert.equal(again.status, 202, again.text);
  assert.notEqual(again.body.operation, d0);
  assert.equal((await berth.client.waitForInstance(id, again.body.operation, 60_000)).body?.state, 'succeeded');
});

describe('a server that stops answering mid-statement (the cancel cannot reach it either)', () => {
  let pgProxy: TcpProxy;
  let myProxy: TcpProxy;
  let proxied: TestBerth;
  let proxiedState: TestDatabase;
  const proxiedTracker = new Tracker();
  before(async () => {
    pgProxy = await startTcpProxy(Number(new URL(PG_ADMIN_URL).port));
    myProxy = await startTcpProxy(Number(new URL(MYSQL_ADMIN_URL).port) || 3306);
    proxiedState = await createTestDatabase('berth_test_deadline');
    proxied = await startTestBerth({
      databaseUrl: proxiedState.url,
      catalogPath: catalogFile,
      env: { ...serverEnv(), BERTH_POSTGRES_LOCAL_URL: pgProxy.url(PG_ADMIN_URL), BERTH_MYSQL_LOCAL_URL: myProxy.url(MYSQL_ADMIN_URL) },
    });
  });
  after(async () => {
    pgProxy?.thaw();
    myProxy?.thaw();
    try {
      await proxiedTracker.cleanup();
    } finally {
      await proxied?.stop().catch(() => {});
      await proxiedState?.drop();
      await pgProxy?.close();
      await myProxy?.close();
    }
  });

  test('postgres: the provision ends failed naming the deadline; the server is used again once it answers', async () => {
    const id = proxiedTracker.instance();
    const frozen = pgProxy.freezeOn('REVOKE ALL ON DATABASE');
    const p = await proxied.client.provision(id, { service_id: PG.service, plan_id: PG.small, ...ORG });
    assert.equal(p.status, 202, p.text);
    await frozen;
    const last = await proxied.client.waitForInstance(id, p.body.operation, 60_000);
    assert.equal(last.body?.state, 'failed', last.text);
    assert.match(last.body.description, new RegExp(`maximum_polling_duration of ${DEADLINE_S} s`));
    pgProxy.thaw();
    const gone = await proxied.client.deprovision(id, PG.service, PG.small);
    assert.equal((await proxied.client.waitForInstance(id, gone.body.operation, 60_000)).body?.state, 'succeeded');
  });

  test('mysql: the provision ends failed naming the deadline; the server is used again once it answers', async () => {
    const id = proxiedTracker.instance();
    const frozen = myProxy.freezeOn('CREATE DATABASE');
    const p = await proxied.client.provision(id, { service_id: MY.service, plan_id: MY.small, ...ORG });
    assert.equal(p.status, 202, p.text);
    await frozen;
    const last = await proxied.client.waitForInstance(id, p.body.operation, 60_000);
    assert.equal(last.body?.state, 'failed', last.text);
    assert.match(last.body.description, new RegExp(`maximum_polling_duration of ${DEADLINE_S} s`));
    myProxy.thaw();
    const gone = await proxied.client.deprovision(id, MY.service, MY.small);
    assert.equal((await proxied.client.waitForInstance(id, gone.body.operation, 60_000)).body?.state, 'succeeded');
  });
});
