// `berth doctor --broker`: passes against a real Berth (child process, real Postgres for its
// state and for the postgres plan), and names each fault of a deliberately broken toy broker.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { spawnBerth, TEST_CREDENTIALS, type BerthProcess } from '../support/berth.ts';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { CATALOG, MODULES } from '../cli/support.ts';
import { checkOf, doctorJson, failed, show, startToyBroker } from './support.ts';
import { runBerth, PATH, BERTH_BIN } from '../cli/support.ts';
import { spawn } from 'node:child_process';
import { once } from 'node:events';

const home = mkdtempSync(join(tmpdir(), 'berth-doctor-home-'));
after(() => rmSync(home, { recursive: true, force: true }));

describe('berth doctor against a real Berth', () => {
  let db: TestDatabase;
  let broker: BerthProcess;
  let env: Record<string, string>;

  before(async () => {
    db = await createTestDatabase('berth_doctor');
    broker = await spawnBerth({
      CATALOG_PATH: CATALOG,
      BERTH_PROVISIONER_MODULES: MODULES,
      DATABASE_URL: db.url,
      BERTH_POSTGRES_SHARED_URL: ADMIN_URL,
      BERTH_POLL_INTERVAL_MS: '50',
      BERTH_KUBERNETES_SECRETS: 'false',
      LOG_LEVEL: 'warn',
    });
    env = { BERTH_BROKER_URL: broker.url, BERTH_BROKER_USERNAME: TEST_CREDENTIALS.username, BERTH_BROKER_PASSWORD: TEST_CREDENTIALS.password };
  });
  after(async () => {
    broker?.child.kill('SIGTERM');
    await broker?.exited;
    await db?.drop();
  });

  async function liveInstances(): Promise<number> {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      const { rows } = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM instances WHERE state <> 'deleted'`);
      return rows[0]!.n;
    } finally {
      await c.end();
    }
  }

  test('user-provided plan: every check passes, the round trip leaves nothing behind', async () => {
    const { r, report } = await doctorJson(['--plan', 'user-provided/standard', '-c', '{"credentials":{"key":"sk_doctor_1"}}'], env, home);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(failed(report), []);
    assert.equal(report.ok, true);
    for (const id of ['api-version', 'api-version-unsupported', 'api-version-missing', 'catalog', 'provision', 'provision-repeat', 'provision-conflict', 'bind', 'bind-repeat', 'unbind', 'unbind-repeat', 'deprovision', 'deprovision-repeat', 'error-unknown-last-operation', 'error-malformed-body', 'error-missing-fields', 'error-unknown-plan', 'cleanup']) {
      assert.equal(checkOf(report, id).status, 'pass', `${id}: ${checkOf(report, id).message}`);
    }
    assert.equal(checkOf(report, 'error-async-required').status, 'skip', 'the user-provided plan is synchronous');
    assert.equal(typeof checkOf(report, 'provision').durationMs, 'number');
    assert.doesNotMatch(r.stdout, /sk_doctor_1/, 'parameters are never printed');
    assert.equal(await liveInstances(), 0);
  });

  test('postgres plan: asynchronous provision with polling, 422 without accepts_incomplete, credentials from the bind; human report and exit 0', async () => {
    const r = await runBerth(['doctor', '--plan', 'postgresql/small'], { PATH, HOME: home, ...env });
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^berth doctor: broker http:\/\/127\.0\.0\.1:\d+, plan postgresql\/small\n/);
    assert.match(r.stdout, /\nPASS Provision: 202 Accepted in .*, succeeded after /);
    assert.match(r.stdout, /\nPASS Asynchronous polling \(provision\): \d+ polls? over .*, Retry-After 1 s/);
    assert.match(r.stdout, /\nPASS Identical provision while in progress: 202 Accepted with the same operation/);
    assert.match(r.stdout, /\nPASS Conflicting provision refused: 409 Conflict/);
    assert.match(r.stdout, /\nPASS Bind: 201 Created in .* with credentials/);
    assert.match(r.stdout, /\nPASS Asynchronous plan without accepts_incomplete: 422 AsyncRequired/);
    assert.doesNotMatch(r.stdout, /\x1b\[/, 'no colour when stdout is not a terminal');
    assert.match(r.stdout, /\n\d+ checks: \d+ passed, 0 warnings, 0 failed(, \d+ skipped)? in .*: passed\n$/);
    assert.equal(await liveInstances(), 0);
  });

  test('without --plan the round trip is skipped, not failed', async () => {
    const { r, report } = await doctorJson([], env, home);
    assert.equal(r.code, 0, show(r));
    assert.equal(checkOf(report, 'provision').status, 'skip');
    assert.match(checkOf(report, 'provision').message, /--plan OFFERING\/PLAN/);
  });

  test('usage errors exit 2; refused credentials exit 4', async () => {
    const unknownPlan = await runBerth(['doctor', '--plan', 'postgresql/huge'], { PATH, HOME: home, ...env });
    assert.equal(unknownPlan.code, 2, show(unknownPlan));
    assert.match(unknownPlan.stderr, /offering "postgresql" has no plan "huge"; its plans are small/);
    const format = await runBerth(['doctor', '-o', 'yaml'], { PATH, HOME: home, ...env });
    assert.equal(format.code, 2, show(format));
    const both = await runBerth(['doctor', '--local', '--plan', 'a/b'], { PATH, HOME: home, ...env });
    assert.equal(both.code, 2, show(both));
    const wrong = await runBerth(['doctor'], { PATH, HOME: home, ...env, BERTH_BROKER_PASSWORD: 'not-the-password' });
    assert.equal(wrong.code, 4, show(wrong));
    assert.match(wrong.stderr, /refused the credentials of "platform" \(HTTP 401\)/);
  });
});

describe('berth doctor against a broken toy broker', () => {
  test('names each fault: duplicate plan ids, no 412, last_operation never finishing, 200 for an unknown instance', async () => {
    const toy = await startToyBroker({ duplicatePlanIds: true, acceptsAnyVersion: true, neverFinishes: true, unknownLastOperation200: true });
    try {
      const { r, report } = await doctorJson(['--broker', toy.url, '--plan', 'toy/async', '--timeout', '3s'], {}, home);
      assert.equal(r.code, 1, show(r));
      assert.equal(report.ok, false);
      const catalog = checkOf(report, 'catalog');
      assert.equal(catalog.status, 'fail');
      assert.match(catalog.message, /services\[0\]\.plans\[2\]\.id: "toy-sync" is already used at services\[0\]\.plans\[1\]/);
      assert.match(checkOf(report, 'api-version-unsupported').message, /1\.0 is answered HTTP 200, not 412 Precondition Failed/);
      assert.equal(checkOf(report, 'api-version-missing').status, 'warn');
      assert.match(checkOf(report, 'provision').message, /accepted \(202\) but not finished after/);
      const polling = checkOf(report, 'async-polling');
      assert.equal(polling.status, 'fail');
      assert.match(polling.message, /still says "in progress" after .*"still thinking".*never finishes/);
      assert.match(checkOf(report, 'error-unknown-last-operation').message, /HTTP 200 \(state "succeeded"\); it must be 404/);
      assert.deepEqual(failed(report), ['api-version-unsupported', 'async-polling', 'catalog', 'error-unknown-last-operation', 'provision']);
      // The instance it could not finish was removed all the same.
      assert.equal(checkOf(report, 'cleanup').status, 'pass');
      assert.deepEqual(toy.live(), []);
    } finally {
      await toy.close();
    }
  });

  test('names wrong status codes of repeats: 201 for an identical repeat, 200 instead of 409 for a conflicting one', async () => {
    const toy = await startToyBroker({ noConflict: true });
    try {
      const { r, report } = await doctorJson(['--broker', toy.url, '--plan', 'toy/sync'], {}, home);
      assert.equal(r.code, 1, show(r));
      assert.match(checkOf(report, 'provision-repeat').message, /HTTP 201; an identical repeat of a finished provision must be 200 OK/);
      assert.match(checkOf(report, 'provision-conflict').message, /HTTP 200 for the same instance id with plan "async"; it must be 409 Conflict/);
      assert.deepEqual(failed(report), ['provision-conflict', 'provision-repeat']);
      assert.deepEqual(toy.live(), []);
    } finally {
      await toy.close();
    }
  });

  test('Ctrl-C while an operation never finishes: what was created is removed before it exits (130)', async () => {
    const toy = await startToyBroker({ neverFinishes: true });
    try {
      const child = spawn(BERTH_BIN, ['doctor', '--broker', toy.url, '--plan', 'toy/async', '--timeout', '5m'], { env: { PATH, HOME: home } });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const exited = once(child, 'exit');
      for (const until = Date.now() + 60_000; toy.live().length === 0; ) {
        assert.ok(Date.now() < until, `no instance was provisioned within 60 s:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      child.kill('SIGINT');
      const [code] = await exited;
      assert.equal(code, 130, out);
      assert.match(out, /interrupted; removing what the checks created…\nPASS Clean-up: removed the 1 instance\(s\) and 0 binding\(s\) earlier checks left behind/);
      assert.deepEqual(toy.live(), []);
    } finally {
      await toy.close();
    }
  });

  test('an https broker: its certificate from an unknown CA is exit 4 naming --ca-file; with --ca-file the checks run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-doctor-tls-'));
    const sh = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    sh('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=doctor test CA');
    sh('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    sh('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'san.ext');
    const toy = await startToyBroker({ tls: { key: readFileSync(join(dir, 'server.key'), 'utf8'), cert: readFileSync(join(dir, 'server.pem'), 'utf8') } });
    try {
      const untrusted = await runBerth(['doctor', '--broker', toy.url], { PATH, HOME: home });
      assert.equal(untrusted.code, 4, show(untrusted));
      assert.match(untrusted.stderr, /its TLS certificate is not trusted .*; pass the CA with --ca-file/);
      const { r, report } = await doctorJson(['--broker', toy.url, '--ca-file', join(dir, 'ca.pem'), '--plan', 'toy/sync'], {}, home);
      assert.equal(r.code, 0, show(r));
      assert.match(report.target, /^broker https:\/\/127\.0\.0\.1:\d+, plan toy\/sync$/);
      assert.equal(checkOf(report, 'provision').status, 'pass');
    } finally {
      await toy.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a broker that refuses the credentials: exit 4 and what to check', async () => {
    const toy = await startToyBroker({ credentials: { username: 'u', password: 'right' } });
    try {
      const r = await runBerth(['doctor', '--broker', toy.url, '--username', 'u'], { PATH, HOME: home, BERTH_BROKER_PASSWORD: 'wrong' });
      assert.equal(r.code, 4, show(r));
      assert.match(r.stderr, /refused the credentials of "u" \(HTTP 401\)/);
    } finally {
      await toy.close();
    }
  });
});
