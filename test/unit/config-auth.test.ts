// The TLS and authentication settings (issue 11 points 3 and 4), parsed and
// checked once by config.ts: every mistake is one ConfigError sentence naming
// the variable, never a stack trace or a secret.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { issue, makeCa, type Leaf } from '../auth/support.ts';

const KEYS = 'k1:' + Buffer.alloc(32, 7).toString('base64');
const DB = { DATABASE_URL: 'postgres://u@127.0.0.1/db', BERTH_ENCRYPTION_KEYS: KEYS };
const PASSWORD = { BROKER_USERNAME: 'berth', BROKER_PASSWORD: 'a-long-enough-password' };

function configError(env: Record<string, string | undefined>): string {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

describe('TLS and authentication configuration', () => {
  let dir: string;
  let server: Leaf;
  let other: Leaf;
  let caFile: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-config-auth-'));
    const ca = makeCa(dir, 'ca');
    caFile = ca.certFile;
    server = issue(ca, 'server', 'server');
    other = issue(ca, 'other', 'server');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('HTTP by default; HTTPS with a certificate and its key, optionally client certificates and a plain listener', () => {
    const plain = loadConfig({ ...DB, ...PASSWORD });
    assert.equal(plain.tls, undefined);
    assert.equal(plain.httpPort, undefined);
    const tls = loadConfig({ ...DB, ...PASSWORD, BERTH_TLS_CERT_FILE: server.certFile, BERTH_TLS_KEY_FILE: server.keyFile, BERTH_TLS_CLIENT_CA_FILE: caFile, BERTH_HTTP_PORT: '8081' });
    assert.deepEqual(tls.tls, { certFile: server.certFile, keyFile: server.keyFile, clientCaFile: caFile });
    assert.equal(tls.httpPort, 8081);
    assert.equal(tls.filesReloadMs, 10_000);
  });

  it('TLS mistakes name the variable and the file, never the content', () => {
    assert.match(configError({ BERTH_TLS_CERT_FILE: server.certFile }), /BERTH_TLS_KEY_FILE is missing: BERTH_TLS_CERT_FILE and BERTH_TLS_KEY_FILE must be set together/);
    assert.match(configError({ BERTH_TLS_KEY_FILE: server.keyFile }), /BERTH_TLS_CERT_FILE is missing/);
    assert.match(configError({ BERTH_TLS_CERT_FILE: join(dir, 'nope.crt'), BERTH_TLS_KEY_FILE: server.keyFile }), /BERTH_TLS_CERT_FILE: cannot read .*nope\.crt \(ENOENT\)/);
    assert.match(configError({ BERTH_TLS_CERT_FILE: server.keyFile, BERTH_TLS_KEY_FILE: server.keyFile }), /BERTH_TLS_CERT_FILE: .* holds no PEM certificate/);
    const mismatch = configError({ BERTH_TLS_CERT_FILE: other.certFile, BERTH_TLS_KEY_FILE: server.keyFile });
    assert.match(mismatch, /the key does not belong to the certificate/);
    assert.ok(!mismatch.includes('PRIVATE KEY'));
    const notAKey = join(dir, 'not-a-key.pem');
    writeFileSync(notAKey, 'hello\n');
    assert.match(configError({ BERTH_TLS_CERT_FILE: server.certFile, BERTH_TLS_KEY_FILE: notAKey }), /BERTH_TLS_KEY_FILE: .*no usable PEM private key|do not form a usable/);
    assert.match(configError({ BERTH_TLS_CERT_FILE: server.certFile, BERTH_TLS_KEY_FILE: server.keyFile, BERTH_TLS_CLIENT_CA_FILE: notAKey }), /BERTH_TLS_CLIENT_CA_FILE: .* holds no PEM certificate/);
    assert.match(configError({ BERTH_TLS_CLIENT_CA_FILE: caFile }), /BERTH_TLS_CLIENT_CA_FILE needs HTTPS/);
    assert.match(configError({ BERTH_HTTP_PORT: '8081' }), /BERTH_HTTP_PORT adds a plain-HTTP listener beside HTTPS/);
    assert.match(configError({ PORT: '8443', BERTH_HTTP_PORT: '8443', BERTH_TLS_CERT_FILE: server.certFile, BERTH_TLS_KEY_FILE: server.keyFile }), /must differ from PORT/);
  });

  it('bearer tokens: several from the variable and the file, each as long as a password must be', () => {
    const file = join(dir, 'tokens');
    writeFileSync(file, '# rotated monthly\n\nfile-token-000000000001\n  file-token-000000000002  \n');
    const c = loadConfig({ ...DB, BERTH_BEARER_TOKENS: 'env-token-0000000001, env-token-0000000002', BERTH_BEARER_TOKENS_FILE: file });
    assert.deepEqual(c.bearer.tokens, ['env-token-0000000001', 'env-token-0000000002']);
    assert.deepEqual(c.bearer.fileTokens, ['file-token-000000000001', 'file-token-000000000002']);
    assert.equal(c.credentials.length, 0, 'a bearer-only install needs no username/password');

    const short = configError({ BERTH_BEARER_TOKENS: 'env-token-0000000001,tiny-secret' });
    assert.match(short, /BERTH_BEARER_TOKENS: token 2 must be at least 12 characters long \(BERTH_MIN_PASSWORD_LENGTH\)/);
    assert.ok(!short.includes('tiny-secret'), 'the token is not repeated');
    assert.match(configError({ BERTH_BEARER_TOKENS: 'has a space in it', BERTH_MIN_PASSWORD_LENGTH: '4' }), /token 1 has characters a bearer token cannot have/);
    writeFileSync(file, 'file-token-000000000001\nshort\n');
    assert.match(configError({ BERTH_BEARER_TOKENS_FILE: file }), /BERTH_BEARER_TOKENS_FILE: .*tokens line 2 must be at least 12 characters/);
    assert.match(configError({ BERTH_BEARER_TOKENS_FILE: join(dir, 'missing') }), /BERTH_BEARER_TOKENS_FILE: cannot read .*missing \(ENOENT\)/);
  });

  it('TokenReview: an allow-list is required, entries are ServiceAccounts or groups, and a cluster must be configured', () => {
    const c = loadConfig({
      ...DB,
      KUBECONFIG: '/dev/null',
      BERTH_TOKENREVIEW: 'true',
      BERTH_TOKENREVIEW_ALLOWED: 'system:serviceaccount:cf:cloud-controller, group:system:serviceaccounts:korifi',
      BERTH_TOKENREVIEW_AUDIENCE: 'berth',
    });
    assert.deepEqual(c.tokenReview, { users: ['system:serviceaccount:cf:cloud-controller'], groups: ['system:serviceaccounts:korifi'], audiences: ['berth'], cacheMs: 10_000 });
    assert.equal(loadConfig({ ...DB, KUBERNETES_SERVICE_HOST: '10.96.0.1', BERTH_TOKENREVIEW: 'true', BERTH_TOKENREVIEW_ALLOWED: 'group:g' }).tokenReview?.groups[0], 'g');
    assert.match(configError({ KUBECONFIG: '/dev/null', BERTH_TOKENREVIEW: 'true' }), /BERTH_TOKENREVIEW=true needs BERTH_TOKENREVIEW_ALLOWED/);
    assert.match(configError({ KUBECONFIG: '/dev/null', BERTH_TOKENREVIEW: 'true', BERTH_TOKENREVIEW_ALLOWED: 'cf/cloud-controller' }), /"cf\/cloud-controller" is neither system:serviceaccount:NAMESPACE:NAME nor group:GROUP/);
    assert.match(configError({ BERTH_TOKENREVIEW: 'true', BERTH_TOKENREVIEW_ALLOWED: 'group:g' }), /needs a cluster to ask: set KUBECONFIG/);
    assert.match(configError({ BERTH_TOKENREVIEW_ALLOWED: 'group:g' }), /apply only with BERTH_TOKENREVIEW=true/);
  });

  it('with DATABASE_URL, some credential is required, and any kind will do', () => {
    assert.match(configError({ ...DB }), /BROKER_USERNAME and BROKER_PASSWORD are required when DATABASE_URL is set, unless another credential is configured: BERTH_BEARER_TOKENS/);
    assert.doesNotThrow(() => loadConfig({ ...DB, BERTH_BEARER_TOKENS: 'env-token-0000000001' }));
    assert.doesNotThrow(() => loadConfig({ ...DB, KUBECONFIG: '/dev/null', BERTH_TOKENREVIEW: 'true', BERTH_TOKENREVIEW_ALLOWED: 'group:g' }));
    assert.doesNotThrow(() => loadConfig({ ...DB, BERTH_TLS_CERT_FILE: server.certFile, BERTH_TLS_KEY_FILE: server.keyFile, BERTH_TLS_CLIENT_CA_FILE: caFile }));
    // TLS alone is no credential.
    assert.throws(() => loadConfig({ ...DB, BERTH_TLS_CERT_FILE: server.certFile, BERTH_TLS_KEY_FILE: server.keyFile }), ConfigError);
  });
});
