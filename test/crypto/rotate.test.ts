// `berth keys rotate`: re-seals every stored secret under the first key and
// reports how many rows per table, after which the old key can be removed and
// everything still reads. Berth runs in this process on the real Postgres
// server; the command runs as a child process, as an operator would run it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import knexFactory from 'knex';
import { join } from 'node:path';
import { REPO, startTestBerth, TEST_CREDENTIALS, type TestBerth } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { CATALOG, MODULES } from '../conformance/suite.ts';
import { SecretBox } from '../../src/secret-box.ts';
import { SECRET_TABLES } from '../../src/store/reseal.ts';
import { instanceCell, org } from './support.ts';

const UPS = { service_id: 'svc-ups', plan_id: 'plan-ups' };
const FAST = { service_id: 'svc-gated', plan_id: 'plan-fast' };
const OLD = SecretBox.generateKeySpec('old');
const NEW = SecretBox.generateKeySpec('new');

function berthCommand(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(REPO, 'src/cli.ts'), ...args],
      { env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'silent', BROKER_USERNAME: TEST_CREDENTIALS.username, BROKER_PASSWORD: TEST_CREDENTIALS.password, ...env } },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('berth keys rotate', () => {
  let db: TestDatabase;
  let t: TestBerth | undefined;
  const start = async (keys: string) => {
    t = await startTestBerth({ databaseUrl: db.url, catalogPath: CATALOG, env: { BERTH_PROVISIONER_MODULES: MODULES, BERTH_ENCRYPTION_KEYS: keys } });
    return t;
  };
  const stop = async () => {
    await t?.stop();
    t = undefined;
  };
  const connect = () => knexFactory({ client: 'pg', connection: db.url, pool: { min: 0, max: 1 } });
  /** Rows per table with at least one ciphertext, and every ciphertext. */
  const sealed = async () => {
    const knex = connect();
    try {
      const rows = new Map<string, number>();
      const all: string[] = [];
      for (const { table, columns } of SECRET_TABLES) {
        const list = (await knex(table).select(columns)) as Array<Record<string, string | null>>;
        const withSecrets = list.filter((r) => columns.some((c) => r[c] !== null));
        rows.set(table, withSecrets.length);
        for (const r of withSecrets) for (const c of columns) if (r[c] !== null) all.push(r[c]!);
      }
      return { rows, all };
    } finally {
      await knex.destroy();
    }
  };

  before(async () => {
    db = await createTestDatabase();
    const b = await start(OLD);
    const p = await b.client.provision('rot-ups', { ...UPS, ...org, parameters: { credentials: { password: 'rotated-pw' } } }, false);
    assert.equal(p.status, 201, p.text);
    assert.equal((await b.client.bind('rot-ups', 'rot-b1', { ...UPS }, false)).status, 201);
    const f = await b.client.provision('rot-fast', { ...FAST, ...org, parameters: { size: 4 } });
    assert.equal((await b.client.waitForInstance('rot-fast', f.body.operation)).body.state, 'succeeded');
    const bf = await b.client.bind('rot-fast', 'rot-b2', { ...FAST, parameters: { role: 'writer' } });
    assert.equal((await b.client.waitForBinding('rot-fast', 'rot-b2', bf.body.operation)).body.state, 'succeeded');
    await stop();
  });

  after(async () => {
    await stop();
    await db?.drop();
  });

  it('without rotation, removing the old key leaves rows Berth cannot read', async () => {
    const b = await start(NEW);
    const r = await b.client.fetchBinding('rot-ups', 'rot-b1');
    assert.equal(r.status, 500, r.text);
    assert.match(r.body.description, /key "old"/);
    await stop();
  });

  it('re-seals every row under the first key, reports the rows per table, and then the old key can go', async () => {
    const before = await sealed();
    assert.ok(before.all.every((c) => c.startsWith('v2:old:')));
    const run = await berthCommand(['keys', 'rotate'], { DATABASE_URL: db.url, BERTH_ENCRYPTION_KEYS: `${NEW},${OLD}` });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    for (const { table } of SECRET_TABLES) assert.match(run.stdout, new RegExp(`^  ${table}: ${before.rows.get(table)} rows$`, 'm'), run.stdout);
    assert.match(run.stdout, /sealed with key "new"; the other keys can be removed/);
    const after = await sealed();
    assert.equal(after.all.length, before.all.length);
    assert.deepEqual(after.all.filter((c) => !c.startsWith('v2:new:')), []);

    const again = await berthCommand(['keys', 'rotate'], { DATABASE_URL: db.url, BERTH_ENCRYPTION_KEYS: `${NEW},${OLD}` });
    assert.equal(again.code, 0, again.stderr);
    for (const { table } of SECRET_TABLES) assert.match(again.stdout, new RegExp(`^  ${table}: 0 rows$`, 'm'), 'nothing left to do');

    // Only the new key now: everything reads, and work goes on.
    const b = await start(NEW);
    const r = await b.client.fetchBinding('rot-ups', 'rot-b1');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.credentials.password, 'rotated-pw');
    const g = await b.client.request('GET', '/v2/service_instances/rot-fast');
    assert.equal(g.status, 200, g.text);
    assert.deepEqual(g.body.parameters, { size: 4 });
    assert.equal((await b.client.fetchBinding('rot-fast', 'rot-b2')).status, 200);
    const u = await b.client.unbind('rot-fast', 'rot-b2', FAST.service_id, FAST.plan_id);
    assert.equal((await b.client.waitForBinding('rot-fast', 'rot-b2', u.body.operation)).body.state, 'succeeded');
    assert.equal((await b.client.bind('rot-ups', 'rot-b3', { ...UPS }, false)).status, 201);
    await stop();
  });

  it('names the keys of rows it cannot open and says not to remove any key yet', async () => {
    const lost = new SecretBox(SecretBox.generateKeySpec('lost'));
    const knex = connect();
    try {
      await knex('instances').where({ id: 'rot-fast' }).update({ parameters_enc: lost.seal({ size: 4 }, instanceCell('rot-fast', 'parameters_enc')) });
    } finally {
      await knex.destroy();
    }
    const run = await berthCommand(['keys', 'rotate'], { DATABASE_URL: db.url, BERTH_ENCRYPTION_KEYS: NEW });
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stderr, /instances: 1 rows could not be decrypted \(sealed with keys not configured: lost\)/);
    assert.match(run.stderr, /do not remove any key yet/);
  });
});
