// How the database provisioners are configured: plan blocks in catalog.yaml,
// servers named by environment variables (URL, URL file, advertised host/port),
// and the sample catalog's services working end to end.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadCatalog } from '../../src/catalog/catalog.ts';
import { loadConfig } from '../../src/config.ts';
import { builtInProvisioners } from '../../src/provisioners/index.ts';
import { KubernetesAccess } from '../../src/kubernetes/client.ts';
import { PermanentError, ProvisionerRegistry, type JsonObject, type Provisioner } from '../../src/provisioners/provisioner.ts';
import { resolveServer, serverEnvPrefix } from '../../src/provisioners/sql/server.ts';
import { PostgresProvisioner } from '../../src/provisioners/postgres/postgres.ts';
import { MysqlProvisioner } from '../../src/provisioners/mysql/mysql.ts';
import { REPO, startTestBerth } from '../support/berth.ts';
import { createTestDatabase } from '../support/postgres.ts';
import { MYSQL_ADMIN_URL, PG, PG_ADMIN_URL, Tracker, bindingOp, direct, instanceOp, mysqlAs, pgAs, type Credentials } from './support.ts';

const tracker = new Tracker();
const dir = mkdtempSync(join(tmpdir(), 'berth-dbprov-config-'));
after(async () => {
  await tracker.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const log = pino({ level: 'silent' });

test('plan blocks are validated with paths to the problems', () => {
  const pgP = new PostgresProvisioner({ env: {} }, log);
  const myP = new MysqlProvisioner({ env: {} }, log);
  const problems = (r: ReturnType<Provisioner['parsePlanConfig']>) => ('problems' in r ? r.problems.map((p) => p.path).sort() : []);
  assert.deepEqual(problems(pgP.parsePlanConfig({ server: 'ok' })), []);
  assert.deepEqual((pgP.parsePlanConfig({ server: 'ok' }) as { config: unknown }).config, { server: 'ok', connection_limit: -1, allowed_extensions: [], extensions: [] });
  assert.deepEqual(problems(pgP.parsePlanConfig({})), ['server']);
  assert.deepEqual(problems(pgP.parsePlanConfig({ server: 'bad name; --' })), ['server']);
  assert.deepEqual(problems(pgP.parsePlanConfig({ server: 'ok', connection_limit: -2 })), ['connection_limit']);
  assert.deepEqual(problems(pgP.parsePlanConfig({ server: 'ok', allowed_extensions: ['ok', 'x"; --'] })), ['allowed_extensions.1']);
  assert.deepEqual(problems(pgP.parsePlanConfig({ server: 'ok', admin_url: 'postgres://...' })), ['']);
  assert.deepEqual(problems(myP.parsePlanConfig({ server: 'ok', charset: "utf8'; --" })), ['charset']);
  assert.deepEqual(problems(myP.parsePlanConfig({ server: 'ok', user_host: "%' --" })), ['user_host']);
  assert.deepEqual((myP.parsePlanConfig({ server: 'ok' }) as { config: unknown }).config, { server: 'ok', charset: 'utf8mb4', max_user_connections: 0, user_host: '%' });
});

test('servers resolve from BERTH_<ENGINE>_<NAME>_URL, _URL_FILE, _HOST and _PORT; problems name the variable, never the URL', () => {
  assert.equal(serverEnvPrefix('postgres', 'shared-eu_1'), 'BERTH_POSTGRES_SHARED_EU_1');
  const file = join(dir, 'admin-url');
  writeFileSync(file, 'postgres://admin:s3cret@db.internal:6432/postgres\n');
  const fromFile = resolveServer({ BERTH_POSTGRES_MAIN_URL_FILE: file }, 'postgres', 'main', ['postgres:', 'postgresql:'], 5432);
  assert.deepEqual(fromFile, { name: 'main', adminUrl: 'postgres://admin:s3cret@db.internal:6432/postgres', advertisedHost: 'db.internal', advertisedPort: 6432 });
  const advertised = resolveServer(
    { BERTH_MYSQL_MAIN_URL: 'mysql://root:pw@10.0.0.5/', BERTH_MYSQL_MAIN_HOST: 'mysql.example.com', BERTH_MYSQL_MAIN_PORT: '13306' },
    'mysql',
    'main',
    ['mysql:'],
    3306,
  );
  assert.deepEqual([advertised.advertisedHost, advertised.advertisedPort], ['mysql.example.com', 13306]);
  assert.equal(resolveServer({ BERTH_MYSQL_MAIN_URL: 'mysql://root@[::1]/' }, 'mysql', 'main', ['mysql:'], 3306).advertisedHost, '::1');

  const failure = (env: Record<string, string>) => {
    try {
      resolveServer(env, 'postgres', 'main', ['postgres:', 'postgresql:'], 5432);
    } catch (err) {
      assert.ok(err instanceof PermanentError);
      assert.ok(!err.message.includes('s3cret'), err.message);
      return err.message;
    }
    assert.fail('expected a PermanentError');
  };
  assert.match(failure({}), /BERTH_POSTGRES_MAIN_URL/);
  assert.match(failure({ BERTH_POSTGRES_MAIN_URL: 'x', BERTH_POSTGRES_MAIN_URL_FILE: file }), /either/);
  assert.match(failure({ BERTH_POSTGRES_MAIN_URL_FILE: join(dir, 'missing') }), /cannot read BERTH_POSTGRES_MAIN_URL_FILE \(ENOENT\)/);
  assert.match(failure({ BERTH_POSTGRES_MAIN_URL: 'mysql://admin:s3cret@h/' }), /must be a postgres:\/\//);
  assert.match(failure({ BERTH_POSTGRES_MAIN_URL: 'not a url s3cret' }), /not a valid URL/);
  assert.match(failure({ BERTH_POSTGRES_MAIN_URL: 'postgres://admin:s3cret@h/', BERTH_POSTGRES_MAIN_PORT: '99999' }), /_PORT/);
});

test('credentials advertise _HOST/_PORT while Berth verifies the login through the admin URL (read from a file)', async () => {
  const pgFile = join(dir, 'pg-url');
  writeFileSync(pgFile, PG_ADMIN_URL);
  const d = direct({
    BERTH_POSTGRES_LOCAL_URL_FILE: pgFile,
    BERTH_POSTGRES_LOCAL_HOST: 'pg.apps.example',
    BERTH_POSTGRES_LOCAL_PORT: '6543',
    BERTH_MYSQL_LOCAL_URL: MYSQL_ADMIN_URL,
    BERTH_MYSQL_LOCAL_HOST: 'mysql.apps.example',
  });
  try {
    const plan = d.plan(PG.small);
    const id = tracker.instance();
    const state: JsonObject = {};
    await d.postgres.provision(instanceOp(plan, id, state));
    const b = tracker.binding(id);
    const creds = (await d.postgres.bind(bindingOp(plan, id, state, b, {}))).credentials as Credentials;
    assert.equal(creds.host, 'pg.apps.example');
    assert.equal(creds.port, '6543');
    assert.match(creds.uri!, /^postgresql:\/\/berth_b_[a-z2-7]+:[A-Za-z0-9_-]+@pg\.apps\.example:6543\/berth_i_[a-z2-7]+$/);
    // Connect as an app on this machine would, with the address swapped back.
    await pgAs({ ...creds, uri: creds.uri!.replace('pg.apps.example:6543', '127.0.0.1:5432') }, (c) => c.query('SELECT 1'));
    await d.postgres.deprovision(instanceOp(plan, id, state));

    const myPlan = d.plan('0d6bd1a4-3c3e-4d0e-9a37-7f2c4f0b1a21');
    const mid = tracker.instance();
    const mState: JsonObject = {};
    await d.mysql.provision(instanceOp(myPlan, mid, mState));
    const mb = tracker.binding(mid);
    const mcreds = (await d.mysql.bind(bindingOp(myPlan, mid, mState, mb, {}))).credentials as Credentials;
    assert.equal(mcreds.host, 'mysql.apps.example');
    assert.equal(mcreds.port, '3306');
    await mysqlAs({ ...mcreds, uri: mcreds.uri!.replace('mysql.apps.example', '127.0.0.1') }, (c) => c.query('SELECT 1'));
    await d.mysql.deprovision(instanceOp(myPlan, mid, mState));
  } finally {
    await d.postgres.close();
  }
});

test('unreachable servers are transient failures (retried); a refused admin login is permanent', async () => {
  const d = direct({
    BERTH_POSTGRES_LOCAL_URL: 'postgres://postgres@127.0.0.1:1/postgres',
    BERTH_POSTGRES_ELSEWHERE_URL: 'postgres://berth_no_such_admin@127.0.0.1:5432/postgres',
    BERTH_MYSQL_LOCAL_URL: 'mysql://berth_no_such_admin:x@127.0.0.1:3306/',
  });
  try {
    const transient = await d.postgres.provision(instanceOp(d.plan(PG.small), tracker.instance(), {})).catch((e: unknown) => e);
    assert.ok(transient instanceof Error && !(transient instanceof PermanentError), String(transient));
    const refused = await d.postgres.provision(instanceOp(d.plan(PG.elsewhere), tracker.instance(), {})).catch((e: unknown) => e);
    assert.ok(refused instanceof PermanentError, String(refused));
    assert.match(refused.message, /postgres server "elsewhere"/);
    const myRefused = await d.mysql.provision(instanceOp(d.plan('0d6bd1a4-3c3e-4d0e-9a37-7f2c4f0b1a21'), tracker.instance(), {})).catch((e: unknown) => e);
    assert.ok(myRefused instanceof PermanentError, String(myRefused));
  } finally {
    await d.postgres.close();
  }
});

test('the sample catalog loads without any server configured, and its database services work once one is', async () => {
  const config = loadConfig({});
  const registry = new ProvisionerRegistry(builtInProvisioners(config, log, new KubernetesAccess(config)));
  const catalog = loadCatalog(join(REPO, 'catalog.yaml'), registry.parseConfig);
  const pgService = catalog.services.find((s) => s.name === 'postgresql')!;
  const myService = catalog.services.find((s) => s.name === 'mysql')!;
  assert.ok(pgService && myService);
  assert.deepEqual(pgService.plans.map((p) => p.provisioner.kind), ['postgres', 'postgres']);

  const state = await createTestDatabase('berth_test_dbsample');
  const berth = await startTestBerth({
    databaseUrl: state.url,
    env: { BERTH_POSTGRES_SHARED_URL: PG_ADMIN_URL, BERTH_MYSQL_SHARED_URL: MYSQL_ADMIN_URL },
  });
  try {
    for (const [service, check] of [
      [pgService, (c: Credentials) => pgAs(c, (x) => x.query('CREATE TABLE t (x int); INSERT INTO t VALUES (1)'))],
      [myService, (c: Credentials) => mysqlAs(c, (x) => x.query('CREATE TABLE t (x INT)'))],
    ] as const) {
      const plan = service.plans[0]!;
      const id = tracker.instance();
      const p = await berth.client.provision(id, {
        service_id: service.id,
        plan_id: plan.id,
        organization_guid: 'o',
        space_guid: 's',
        ...(service === pgService ? { parameters: { extensions: ['pgcrypto'] } } : {}),
      });
      assert.equal(p.status, 202, p.text);
      assert.equal((await berth.client.waitForInstance(id, p.body.operation, 60_000)).body?.state, 'succeeded');
      const b = tracker.binding(id);
      const bound = await berth.client.bind(id, b, { service_id: service.id, plan_id: plan.id });
      assert.equal(bound.status, 201, bound.text);
      await check(bound.body.credentials);
      const del = await berth.client.deprovision(id, service.id, plan.id);
      assert.equal((await berth.client.waitForInstance(id, del.body.operation, 60_000)).body?.state, 'succeeded');
    }
  } finally {
    await berth.stop();
    await state.drop();
  }
});
