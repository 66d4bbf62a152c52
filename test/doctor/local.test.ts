// `berth doctor --local` with the configuration a real Berth runs with (real Postgres for
// its state and for the postgres plan): passes; and each injected fault is reported by the
// check it belongs to: a wrong encryption key, the database down, a postgres plan's server
// variable missing, a migration this Berth does not know. (Helm charts and cluster
// permissions: kube.test.ts.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, spawnBerth, TEST_CREDENTIALS, TEST_KEYS, type BerthProcess } from '../support/berth.ts';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { CATALOG, MODULES } from '../cli/support.ts';
import { SecretBox } from '../../src/secret-box.ts';
import { checkOf, doctorJson, failed, show } from './support.ts';

const USER_PROVIDED = { service: '4f6e6cf6-ffdd-425f-a2c7-3c9258ad2468', plan: '86064792-7ea2-467b-af93-ac9694d96d52' };
const SECRET = 'sk_local_doctor_secret';

describe('berth doctor --local', () => {
  const home = mkdtempSync(join(tmpdir(), 'berth-doctor-local-'));
  let db: TestDatabase;
  let broker: BerthProcess;
  let env: Record<string, string>;
  const instanceId = `doctor-local-${Date.now()}`;

  before(async () => {
    db = await createTestDatabase('berth_doctor_local');
    env = {
      CATALOG_PATH: CATALOG,
      BERTH_PROVISIONER_MODULES: MODULES,
      DATABASE_URL: db.url,
      BERTH_POSTGRES_SHARED_URL: ADMIN_URL,
      BERTH_KUBERNETES_SECRETS: 'false',
      BROKER_USERNAME: TEST_CREDENTIALS.username,
      BROKER_PASSWORD: TEST_CREDENTIALS.password,
      BERTH_ENCRYPTION_KEYS: TEST_KEYS,
      BERTH_DATA_DIR: join(home, 'data'),
    };
    broker = await spawnBerth({ ...env, LOG_LEVEL: 'warn', BERTH_POLL_INTERVAL_MS: '50' });
    // Rows with sealed secrets: a user-provided instance (its parameters) and a binding (its credentials).
    const p = await broker.client.provision(instanceId, { service_id: USER_PROVIDED.service, plan_id: USER_PROVIDED.plan, organization_guid: 'org', space_guid: 'space', parameters: { credentials: { key: SECRET } } });
    assert.equal(p.status, 201, p.text);
    const b = await broker.client.request('PUT', `/v2/service_instances/${instanceId}/service_bindings/b1`, { body: { service_id: USER_PROVIDED.service, plan_id: USER_PROVIDED.plan } });
    assert.equal(b.status, 201, b.text);
  });
  after(async () => {
    broker?.child.kill('SIGTERM');
    await broker?.exited;
    await db?.drop();
    rmSync(home, { recursive: true, force: true });
  });

  test('passes with the configuration Berth runs with: database migrated, every row opens, the postgres server answers', async () => {
    const { r, report } = await doctorJson(['--local'], env, home);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(failed(report), []);
    assert.match(checkOf(report, 'database').message, /PostgreSQL \d+/);
    assert.match(checkOf(report, 'migrations').message, /^all \d+ migrations applied/);
    const keys = checkOf(report, 'encryption-keys');
    assert.equal(keys.status, 'pass', keys.message);
    // instance parameters, operation requests, binding credentials and parameters: all under the key "test".
    assert.ok(Number((keys.details!.secretsPerKeyId as Record<string, number>).test) >= 3, keys.message);
    assert.equal(checkOf(report, 'plan:postgresql/small').status, 'pass');
    assert.match(checkOf(report, 'plan:postgresql/small').message, /postgres server "shared" reachable/);
    assert.equal(checkOf(report, 'tls-certificate').status, 'skip');
  });

  test('a wrong encryption key: the rows it cannot open, by table and id, and no secret value', async () => {
    const { r, report } = await doctorJson(['--local'], { ...env, BERTH_ENCRYPTION_KEYS: SecretBox.generateKeySpec('other') }, home);
    assert.equal(r.code, 1, show(r));
    assert.deepEqual(failed(report), ['encryption-keys']);
    const keys = checkOf(report, 'encryption-keys');
    assert.match(keys.message, /row\(s\) no configured key opens/);
    assert.match(keys.message, new RegExp(`instances ${instanceId}: parameters_enc \\(sealed with key "test", not configured\\)`));
    assert.match(keys.message, new RegExp(`bindings ${instanceId}/b1: .*credentials_enc`));
    assert.doesNotMatch(r.stdout, new RegExp(SECRET));
    // The same id with other key bytes: "does not open", not "not configured".
    const same = await doctorJson(['--local'], { ...env, BERTH_ENCRYPTION_KEYS: SecretBox.generateKeySpec('test') }, home);
    assert.match(checkOf(same.report, 'encryption-keys').message, /does not open with key "test"/);
  });

  test('the database down: the database check fails with the URL (no password), the checks that need it are skipped', async () => {
    const port = await freePort();
    const { r, report } = await doctorJson(['--local'], { ...env, DATABASE_URL: `postgres://berth:hunter2-db-password@127.0.0.1:${port}/berth` }, home);
    assert.equal(r.code, 1, show(r));
    assert.deepEqual(failed(report), ['database']);
    assert.match(checkOf(report, 'database').message, new RegExp(`cannot connect to postgres://berth:\\*\\*\\*@127\\.0\\.0\\.1:${port}/berth: .*ECONNREFUSED`));
    assert.doesNotMatch(r.stdout, /hunter2/);
    assert.equal(checkOf(report, 'migrations').status, 'skip');
    assert.equal(checkOf(report, 'encryption-keys').status, 'skip');
  });

  test("a postgres plan's server variable missing: that plan's check names the variable", async () => {
    const { BERTH_POSTGRES_SHARED_URL: _, ...without } = env;
    const { r, report } = await doctorJson(['--local'], without, home);
    assert.equal(r.code, 1, show(r));
    assert.deepEqual(failed(report), ['plan:postgresql/small']);
    assert.match(checkOf(report, 'plan:postgresql/small').message, /postgres server "shared" is not configured: set BERTH_POSTGRES_SHARED_URL/);
    const unreachable = await doctorJson(['--local'], { ...env, BERTH_POSTGRES_SHARED_URL: `postgres://postgres:pw-not-shown@127.0.0.1:${await freePort()}/postgres` }, home);
    assert.match(checkOf(unreachable.report, 'plan:postgresql/small').message, /cannot connect to postgres server "shared" \(postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/postgres\): .*ECONNREFUSED/);
    assert.doesNotMatch(unreachable.r.stdout, /pw-not-shown/);
  });

  test('a migration this Berth does not know (a newer Berth migrated the database): fails naming it', async () => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query(`INSERT INTO knex_migrations (name, batch, migration_time) VALUES ('20991231000000_from_the_future', 99, now())`);
      const { r, report } = await doctorJson(['--local'], env, home);
      assert.equal(r.code, 1, show(r));
      assert.deepEqual(failed(report), ['migrations']);
      assert.match(checkOf(report, 'migrations').message, /1 migration\(s\) this Berth does not know \(20991231000000_from_the_future\)/);
    } finally {
      await c.query(`DELETE FROM knex_migrations WHERE name = '20991231000000_from_the_future'`);
      await c.end();
    }
  });

  test('an invalid configuration is a failed check and says what is wrong', async () => {
    const { BERTH_ENCRYPTION_KEYS: _, ...without } = env;
    const { r, report } = await doctorJson(['--local'], without, home);
    assert.equal(r.code, 1, show(r));
    assert.match(checkOf(report, 'config').message, /BERTH_ENCRYPTION_KEYS is required when DATABASE_URL is set/);
  });
});
