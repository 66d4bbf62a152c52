// Connections reset mid-statement (issue 16, point 2): a TCP proxy between
// Berth and the real server cuts a connection right after a statement was
// sent. Berth runs in this process, so a connection error nobody listens for
// would end the test run; instead the process lives, the operation is retried
// and ends succeeded. Covered: the postgres provisioner's admin pool, the
// mysql provisioner's admin connections and Berth's own state database.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { startTestBerth, type TestBerth } from '../support/berth.ts';
import { mysqlNames, pgNames } from '../../src/provisioners/sql/names.ts';
import { CATALOG, DbBerth, MY, MYSQL_ADMIN_URL, PG, PG_ADMIN_URL, Tracker, mysqlDatabaseExists, pgDatabaseExists, serverEnv } from './support.ts';

const portOf = (url: string) => Number(new URL(url).port);

// node:test keeps the process alive through an uncaught exception (it reports it and goes on), so a
// connection error without a listener, which would end Berth, is recorded here and checked by every test.
const uncaught: unknown[] = [];
process.on('uncaughtException', (err) => uncaught.push(err));
afterEach(() => {
  assert.deepEqual(uncaught.splice(0).map((e) => String((e as Error)?.stack ?? e)), [], 'no error went unhandled (it would have ended Berth)');
});
const ORG = { organization_guid: 'org', space_guid: 'space' };

describe('admin connections reset mid-statement', () => {
  let pgProxy: TcpProxy;
  let myProxy: TcpProxy;
  let h: DbBerth;
  before(async () => {
    pgProxy = await startTcpProxy(portOf(PG_ADMIN_URL));
    myProxy = await startTcpProxy(portOf(MYSQL_ADMIN_URL) || 3306);
    h = await DbBerth.start({
      BERTH_POSTGRES_LOCAL_URL: pgProxy.url(PG_ADMIN_URL),
      BERTH_MYSQL_LOCAL_URL: myProxy.url(MYSQL_ADMIN_URL),
    });
  });
  after(async () => {
    await h?.stop();
    await pgProxy?.close();
    await myProxy?.close();
  });

  test('postgres: a checked-out admin client reset during CREATE DATABASE; the process lives and the provision is retried', async () => {
    const cut = pgProxy.cutOn('CREATE DATABASE');
    const { id, first, last } = await h.provision(PG.service, PG.small);
    assert.equal(first.status, 202, first.text);
    assert.equal(await cut, 1, 'the connection was cut');
    assert.equal(last.body?.state, 'succeeded', last.text);
    assert.equal(await pgDatabaseExists(pgNames.database(id)), true);

    // Bind and deprovision through the same pool (the broken client was not reused).
    await h.bound(id, PG.service, PG.small);
    const cutDrop = pgProxy.cutOn('DROP DATABASE');
    assert.equal((await h.deprovision(id, PG.service, PG.small)).body?.state, 'succeeded');
    assert.equal(await cutDrop, 2);
    assert.equal(await pgDatabaseExists(pgNames.database(id)), false);
  });

  test('mysql: an admin connection reset during CREATE DATABASE; the process lives and the provision is retried', async () => {
    const cut = myProxy.cutOn('CREATE DATABASE');
    const { id, first, last } = await h.provision(MY.service, MY.small);
    assert.equal(first.status, 202, first.text);
    assert.equal(await cut, 1);
    assert.equal(last.body?.state, 'succeeded', last.text);
    assert.equal(await mysqlDatabaseExists(mysqlNames.database(id)), true);
    const cutBind = myProxy.cutOn('GRANT ALL');
    const { reply } = await h.bind(id, MY.service, MY.small);
    assert.equal(reply.status, 201, reply.text);
    assert.equal(await cutBind, 2);
    assert.equal((await h.deprovision(id, MY.service, MY.small)).body?.state, 'succeeded');
    assert.equal(await mysqlDatabaseExists(mysqlNames.database(id)), false);
  });
});

describe('state database connections reset mid-statement', () => {
  let proxy: TcpProxy;
  let state: TestDatabase;
  let berth: TestBerth | undefined;
  const tracker = new Tracker();
  before(async () => {
    proxy = await startTcpProxy(portOf(PG_ADMIN_URL));
    state = await createTestDatabase('berth_test_reset');
    berth = await startTestBerth({ databaseUrl: proxy.url(state.url), catalogPath: CATALOG, env: { ...serverEnv() } });
  });
  after(async () => {
    try {
      await tracker.cleanup();
    } finally {
      await berth?.stop().catch(() => {});
      await proxy?.close();
      await state?.drop();
    }
  });

  test('a worker claiming and checkpointing over a cut connection: the process lives and the operation completes', async () => {
    const client = berth!.client;
    const id = tracker.instance();
    // The claim (inside its transaction) and then the first checkpoint write are cut.
    const claimCut = proxy.cutOn('pg_try_advisory_xact_lock');
    const p = await client.provision(id, { service_id: PG.service, plan_id: PG.small, ...ORG });
    assert.equal(p.status, 202, p.text);
    await claimCut;
    const checkpointCut = proxy.cutOn('"provisioner_state_enc"');
    await checkpointCut;
    const last = await client.waitForInstance(id, p.body.operation, 60_000);
    assert.equal(last.body?.state, 'succeeded', last.text);
    assert.equal(proxy.cuts, 2);

    // Requests cut mid-statement answer (503 at worst) and the next ones are served.
    const requestCut = proxy.cutOn('from "instances"');
    const during = await client.request('GET', `/v2/service_instances/${id}`);
    await requestCut;
    assert.ok(during.status === 200 || during.status === 503, `${during.status} ${during.text}`);
    const afterwards = await client.request('GET', `/v2/service_instances/${id}`);
    assert.equal(afterwards.status, 200, afterwards.text);

    const gone = await client.deprovision(id, PG.service, PG.small);
    assert.equal((await client.waitForInstance(id, gone.body.operation, 60_000)).body?.state, 'succeeded');
  });
});
