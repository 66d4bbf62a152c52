// Issue 16 points 12 and 27d: brute force against basic auth. Refused
// credentials are throttled per client (429 with Retry-After, on every route,
// the fast path included), logged at warn once per window, and the 401 says
// whether credentials were missing or refused without saying which part was
// wrong. Operator-chosen passwords have a minimum length.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { REPO, TEST_CREDENTIALS } from '../support/berth.ts';
import { baseEnv, startLoggedBerth, type LoggedBerth } from './support.ts';

const basic = (user: string, password: string) => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
const WRONG_PASSWORD = 'guess-number-one';

describe('basic auth against brute force', () => {
  const started: LoggedBerth[] = [];
  const start = async (env: Record<string, string> = {}) => {
    const t = await startLoggedBerth(env);
    started.push(t);
    return t;
  };
  after(async () => {
    for (const t of started) await t.stop();
  });

  it('401 says whether credentials were missing or refused, and not which part was wrong', async () => {
    const t = await start();
    const none = await t.client.request('GET', '/v2/catalog', { headers: { Authorization: undefined } });
    const wrongPassword = await t.client.request('GET', '/v2/catalog', { headers: { Authorization: basic(TEST_CREDENTIALS.username, WRONG_PASSWORD) } });
    const wrongUser = await t.client.request('GET', '/v2/catalog', { headers: { Authorization: basic('nobody', TEST_CREDENTIALS.password) } });
    for (const r of [none, wrongPassword, wrongUser]) {
      assert.equal(r.status, 401, r.text);
      assert.equal(r.body.error, 'Unauthorized');
      assert.match(r.headers.get('www-authenticate') ?? '', /^Basic/);
    }
    assert.notEqual(none.body.description, wrongPassword.body.description, 'missing and refused credentials are told apart');
    assert.match(none.body.description, /send HTTP basic credentials/);
    assert.match(wrongPassword.body.description, /not accepted/);
    assert.equal(wrongUser.body.description, wrongPassword.body.description, 'the description does not say which part was wrong');
  });

  it('refused credentials are logged at warn once per window, without the credentials', async () => {
    const t = await start({ BERTH_AUTH_FAILURE_LIMIT: '10' });
    for (let i = 0; i < 5; i++) {
      const r = await t.client.request('GET', '/v2/catalog', { headers: { Authorization: basic(TEST_CREDENTIALS.username, WRONG_PASSWORD) } });
      assert.equal(r.status, 401);
    }
    const warnings = t.lines.filter((l) => l.level === 40 && /refused basic-auth credentials/.test(l.msg));
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.equal(warnings[0]!.client, '127.0.0.1');
    const all = JSON.stringify(t.lines);
    assert.ok(!all.includes(WRONG_PASSWORD) && !all.includes(basic(TEST_CREDENTIALS.username, WRONG_PASSWORD).slice(6)), 'no credentials in the log');
  });

  it('a client that failed too often gets 429 with Retry-After on every route, even with the right credentials', async () => {
    const t = await start({ BERTH_AUTH_FAILURE_LIMIT: '3', BERTH_AUTH_FAILURE_WINDOW_SECONDS: '120' });
    const ok = await t.client.provision('throttle-1', {
      service_id: '4f6e6cf6-ffdd-425f-a2c7-3c9258ad2468',
      plan_id: '86064792-7ea2-467b-af93-ac9694d96d52',
      organization_guid: 'org',
      space_guid: 'space',
      parameters: { credentials: { url: 'https://x' } },
    }, false);
    assert.equal(ok.status, 201, ok.text);
    for (let i = 0; i < 3; i++) {
      const r = await t.client.request('GET', '/v2/catalog', { headers: { Authorization: basic(TEST_CREDENTIALS.username, `${WRONG_PASSWORD}-${i}`) } });
      assert.equal(r.status, 401, r.text);
    }
    // The catalog and last_operation are served by the fast path, the instance fetch by Express.
    for (const path of ['/v2/catalog', '/v2/service_instances/throttle-1/last_operation', '/v2/service_instances/throttle-1']) {
      for (const auth of [basic(TEST_CREDENTIALS.username, 'yet-another-guess'), t.client.auth]) {
        const r = await t.client.request('GET', path, { headers: { Authorization: auth } });
        assert.equal(r.status, 429, `${path}: ${r.status} ${r.text}`);
        assert.equal(r.body.error, 'TooManyRequests');
        assert.match(r.body.description, /failed authentication attempts/);
        const retryAfter = Number(r.headers.get('retry-after'));
        assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 120, `Retry-After: ${r.headers.get('retry-after')}`);
      }
    }
    assert.equal(t.lines.filter((l) => l.level === 40 && /gets 429/.test(l.msg)).length, 1, 'the throttling is logged once');
    // Unauthenticated operator endpoints are not affected.
    assert.equal((await fetch(`${t.berth.url}/healthz`)).status, 200);
  });
});

describe('minimum password length', () => {
  const env = (extra: Record<string, string>) => baseEnv('postgres://postgres@127.0.0.1:5432/unused', extra);

  it('refuses short operator-chosen passwords, naming the variable and never the password', () => {
    for (const [extra, name] of [
      [{ BROKER_PASSWORD: 'x' }, 'BROKER_PASSWORD'],
      [{ BROKER_CREDENTIALS: JSON.stringify([{ username: 'a', password: 'long-enough-password' }, { username: 'b', password: 'tiny1' }]) }, 'BROKER_CREDENTIALS[1].password'],
    ] as const) {
      assert.throws(
        () => loadConfig(env(extra)),
        (err: unknown) =>
          err instanceof ConfigError && err.message.includes(name) && err.message.includes('BERTH_MIN_PASSWORD_LENGTH') && !/\btiny1\b/.test(err.message),
      );
    }
    assert.equal(loadConfig(env({ BROKER_PASSWORD: 'abcd', BERTH_MIN_PASSWORD_LENGTH: '4' })).credentials[0]!.password, 'abcd');
    assert.equal(loadConfig(env({})).credentials[0]!.password, TEST_CREDENTIALS.password);
  });

  it('berth serve does not start with a one-character password', () => {
    const r = spawnSync(process.execPath, [join(REPO, 'src/cli.ts'), 'serve'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, BROKER_USERNAME: 'platform', BROKER_PASSWORD: 'x', BERTH_DATA_DIR: env({}).BERTH_DATA_DIR },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /BROKER_PASSWORD must be at least 12 characters long \(BERTH_MIN_PASSWORD_LENGTH\)/);
  });
});
