// Issue 11 point 4, the static half: bearer tokens from BERTH_BEARER_TOKENS
// and BERTH_BEARER_TOKENS_FILE (rotation: several at once, the file re-read
// when its mounted Secret changes), checked by the same auth check as basic
// auth (same throttle, same 401 body), and an install with no password at all.
// The TokenReview half against the real API server is token-review.test.ts.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { writeKubeconfig } from '../support/kube/api.ts';
import { TEST_CREDENTIALS } from '../support/berth.ts';
import { startLoggedBerth, type LoggedBerth } from '../server/support.ts';
import { makeCa, MountedSecret } from './support.ts';

const TOKEN_A = 'token-a-0123456789abcdef';
const TOKEN_B = 'token-b-fedcba9876543210';
const basic = 'Basic ' + Buffer.from(`${TEST_CREDENTIALS.username}:${TEST_CREDENTIALS.password}`).toString('base64');

async function eventually(what: string, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await probe())) {
    if (Date.now() > deadline) assert.fail(`not within 30 s: ${what}`);
    await delay(100);
  }
}

describe('static bearer tokens', () => {
  const started: LoggedBerth[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'berth-bearer-'));
  const start = async (env: Record<string, string | undefined>) => {
    const t = await startLoggedBerth({ BERTH_FILES_RELOAD_SECONDS: '0.1', ...env });
    started.push(t);
    return t;
  };
  after(async () => {
    for (const t of started) await t.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const status = async (t: LoggedBerth, path: string, authorization: string | undefined) =>
    (await t.client.request('GET', path, { headers: { Authorization: authorization } })).status;

  it('every configured token is accepted (rotation), on the fast path and Express alike; basic auth keeps working', async () => {
    const t = await start({ BERTH_BEARER_TOKENS: `${TOKEN_A}, ${TOKEN_B}` });
    // Berth's own /berth/v1 endpoint takes the same credentials.
    for (const path of ['/v2/catalog', '/v2/service_instances/none/last_operation', '/v2/service_instances/none', '/berth/v1/service_instances/none/resources']) {
      const ok = path === '/v2/catalog' ? 200 : 404;
      assert.equal(await status(t, path, `Bearer ${TOKEN_A}`), ok, path);
      assert.equal(await status(t, path, `Bearer ${TOKEN_B}`), ok, path);
      assert.equal(await status(t, path, `bearer  ${TOKEN_B}`), ok, `${path}: the scheme is case-insensitive`);
      assert.equal(await status(t, path, basic), ok, path);
    }
    const wrong = await t.client.request('GET', '/v2/catalog', { headers: { Authorization: `Bearer ${TOKEN_A}x` } });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error, 'Unauthorized');
    assert.match(wrong.body.description, /bearer token sent is not accepted/);
    // A token is no password: "Basic" with a token, or a token as a password, is refused.
    assert.equal(await status(t, '/v2/catalog', `Basic ${Buffer.from(`x:${TOKEN_A}`).toString('base64')}`), 401);
    assert.equal(await status(t, '/v2/catalog', `Bearer ${TEST_CREDENTIALS.password}`), 401);
    const logged = JSON.stringify(t.lines);
    assert.ok(!logged.includes(TOKEN_A) && !logged.includes(TOKEN_B.slice(0, 12)), 'no token in the log');
    assert.ok(t.lines.some((l) => l.level === 40 && /refused bearer token/.test(l.msg)));
  });

  it('refused tokens count toward the per-client throttle', async () => {
    const t = await start({ BERTH_BEARER_TOKENS: TOKEN_A, BERTH_AUTH_FAILURE_LIMIT: '2', BERTH_AUTH_FAILURE_WINDOW_SECONDS: '120' });
    assert.equal(await status(t, '/v2/catalog', 'Bearer guess-0000000000000'), 401);
    assert.equal(await status(t, '/v2/service_instances/x', 'Bearer guess-1111111111111'), 401);
    assert.equal(await status(t, '/v2/catalog', `Bearer ${TOKEN_A}`), 429);
  });

  it('a bearer-only install (DATABASE_URL, no username/password); the tokens file is re-read when its Secret changes', async () => {
    const secret = new MountedSecret(join(dir, 'tokens'), { tokens: `# platform tokens\n${TOKEN_A}\n` });
    const t = await start({ BROKER_USERNAME: undefined, BROKER_PASSWORD: undefined, BERTH_BEARER_TOKENS_FILE: secret.path('tokens') });
    assert.equal(t.berth.credentials.length, 0, 'no basic credentials');
    assert.equal(await status(t, '/v2/catalog', `Bearer ${TOKEN_A}`), 200);
    assert.equal(await status(t, '/v2/catalog', basic), 401);

    // Rotation: first both, then only the new one.
    secret.update({ tokens: `${TOKEN_A}\n${TOKEN_B}\n` });
    await eventually('the added token is accepted', async () => (await status(t, '/v2/catalog', `Bearer ${TOKEN_B}`)) === 200);
    assert.equal(await status(t, '/v2/catalog', `Bearer ${TOKEN_A}`), 200);
    secret.update({ tokens: `${TOKEN_B}\n` });
    await eventually('the removed token is refused', async () => (await status(t, '/v2/catalog', `Bearer ${TOKEN_A}`)) === 401);
    assert.equal(await status(t, '/v2/catalog', `Bearer ${TOKEN_B}`), 200);

    // A broken file (a token too short) is logged by line, and the tokens in use stay.
    secret.update({ tokens: `${TOKEN_B}\nshort\n` });
    await eventually('the broken file is logged', async () => t.lines.some((l) => l.level === 40 && /tokens file changed but cannot be used/.test(l.msg)));
    const warning = t.lines.find((l) => /tokens file changed but cannot be used/.test(l.msg))!;
    assert.match(warning.reason, /line 2 must be at least 12 characters/);
    assert.ok(!JSON.stringify(t.lines).includes(TOKEN_B));
    assert.equal(await status(t, '/v2/catalog', `Bearer ${TOKEN_B}`), 200);
  });

  it('TokenReview with an API server that does not answer: 503 (not 401), nothing cached, the static token unaffected', async () => {
    const ca = makeCa(dir, 'nowhere-ca');
    const kubeconfig = writeKubeconfig(join(dir, 'nowhere.kubeconfig'), { server: 'https://127.0.0.1:1', caPem: ca.pem, user: 'nobody', token: 'x' });
    const t = await start({ BERTH_BEARER_TOKENS: TOKEN_A, BERTH_TOKENREVIEW: 'true', BERTH_TOKENREVIEW_ALLOWED: 'system:serviceaccount:cf:platform', KUBECONFIG: kubeconfig });
    const r = await t.client.request('GET', '/v2/catalog', { headers: { Authorization: 'Bearer some.service-account.token' } });
    assert.equal(r.status, 503, r.text);
    assert.equal(r.body.error, 'ServiceUnavailable');
    assert.match(r.body.description, /cannot check bearer tokens/);
    assert.equal(r.headers.get('retry-after'), '5');
    assert.equal(await status(t, '/v2/service_instances/x', 'Bearer some.service-account.token'), 503, 'asked again, not cached');
    assert.equal(await status(t, '/berth/v1/service_instances/x/resources', 'Bearer some.service-account.token'), 503, 'Berth\'s own endpoint waits for the review too');
    assert.equal(await status(t, '/v2/catalog', `Bearer ${TOKEN_A}`), 200, 'a static token needs no review');
    assert.ok(t.lines.some((l) => l.level === 50 && /TokenReview failed/.test(l.msg)));
    assert.ok(!JSON.stringify(t.lines).includes('some.service-account.token'));
  });
});
