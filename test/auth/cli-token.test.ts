// The CLI's broker mode with a bearer token (--token / BERTH_BROKER_TOKEN)
// against an HTTPS Berth whose CA it is given (--ca-file / BERTH_BROKER_CA_FILE),
// through the real bin/berth.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PATH, runBerth } from '../cli/support.ts';
import { startLoggedBerth, type LoggedBerth } from '../server/support.ts';
import { issue, makeCa, type Ca } from './support.ts';

const TOKEN = 'cli-token-0123456789abcdef';

describe('berth (broker mode) with a bearer token over HTTPS', () => {
  let dir: string;
  let ca: Ca;
  let t: LoggedBerth;
  let env: Record<string, string>;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-cli-token-'));
    ca = makeCa(dir, 'ca');
    const server = issue(ca, 'server', 'server');
    t = await startLoggedBerth({ BERTH_TLS_CERT_FILE: server.certFile, BERTH_TLS_KEY_FILE: server.keyFile, BERTH_BEARER_TOKENS: TOKEN });
    env = { PATH, HOME: dir, XDG_CONFIG_HOME: join(dir, 'config'), BERTH_BROKER_URL: t.berth.url };
  });
  after(async () => {
    await t?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the token from the environment and the CA file: the marketplace is listed', async () => {
    const r = await runBerth(['marketplace', '-o', 'json'], { ...env, BERTH_BROKER_TOKEN: TOKEN, BERTH_BROKER_CA_FILE: ca.certFile });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Array.isArray(JSON.parse(r.stdout)));
    const flags = await runBerth(['marketplace', '--token', TOKEN, '--ca-file', ca.certFile, '-o', 'name'], env);
    assert.equal(flags.code, 0, flags.stderr);
  });

  it('a wrong token, a missing CA, and a token beside a password each get one sentence', async () => {
    const wrong = await runBerth(['marketplace'], { ...env, BERTH_BROKER_TOKEN: `${TOKEN}-old`, BERTH_BROKER_CA_FILE: ca.certFile });
    assert.equal(wrong.code, 4, wrong.stderr);
    assert.match(wrong.stderr, /refused the bearer token \(HTTP 401\).*check --token, BERTH_BROKER_TOKEN/);
    assert.ok(!wrong.stderr.includes(TOKEN));
    const untrusted = await runBerth(['marketplace'], { ...env, BERTH_BROKER_TOKEN: TOKEN });
    assert.equal(untrusted.code, 4, untrusted.stderr);
    assert.match(untrusted.stderr, /--ca-file/);
    const both = await runBerth(['marketplace'], { ...env, BERTH_BROKER_TOKEN: TOKEN, BERTH_BROKER_USERNAME: 'u', BERTH_BROKER_PASSWORD: 'p' });
    assert.equal(both.code, 2, both.stderr);
    assert.match(both.stderr, /either a bearer token .* or a username and password/);
  });
});
