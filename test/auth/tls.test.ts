// Issue 11 point 3: HTTPS from certificate files, a renewed certificate picked
// up without a restart (the files swapped as the kubelet updates a mounted
// cert-manager Secret), plain HTTP refused on the TLS port unless a plain-HTTP
// listener is asked for, and client certificates as a credential.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { TEST_CREDENTIALS } from '../support/berth.ts';
import { startLoggedBerth, type LoggedBerth } from '../server/support.ts';
import { httpsGet, issue, makeCa, MountedSecret, type Ca, type Leaf } from './support.ts';

const basic = 'Basic ' + Buffer.from(`${TEST_CREDENTIALS.username}:${TEST_CREDENTIALS.password}`).toString('base64');

/** Polls until `probe` returns true; the deadline is generous (a loaded machine), and only a failure reports it. */
async function eventually(what: string, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await probe())) {
    if (Date.now() > deadline) assert.fail(`not within 30 s: ${what}`);
    await delay(100);
  }
}

describe('HTTPS', () => {
  let dir: string;
  let ca: Ca;
  let first: Leaf;
  let second: Leaf;
  let stranger: Leaf;
  const started: LoggedBerth[] = [];
  const agents: Agent[] = [];
  const agent = (opts: ConstructorParameters<typeof Agent>[0] = {}) => {
    const a = new Agent({ ca: ca.pem, ...opts });
    agents.push(a);
    return a;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-tls-'));
    ca = makeCa(dir, 'server-ca');
    first = issue(ca, 'first', 'server');
    // A later expiry than the first: the expiry gauge tells them apart.
    second = issue(ca, 'second', 'server', 'second', 3);
    // Valid PEM, but not this key's certificate.
    stranger = issue(ca, 'stranger', 'server');
  });
  after(async () => {
    for (const a of agents) a.destroy();
    for (const t of started) await t.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async (env: Record<string, string>) => {
    const t = await startLoggedBerth({ BERTH_FILES_RELOAD_SECONDS: '0.1', ...env });
    started.push(t);
    return t;
  };

  it('serves HTTPS with the configured certificate; a renewed one reaches new connections without a restart, open ones keep theirs', async () => {
    const secret = new MountedSecret(join(dir, 'mounted'), { 'tls.crt': first.cert, 'tls.key': first.key, 'ca.crt': ca.pem });
    const t = await start({ BERTH_TLS_CERT_FILE: secret.path('tls.crt'), BERTH_TLS_KEY_FILE: secret.path('tls.key') });
    assert.match(t.berth.url, /^https:\/\//);
    assert.equal(t.berth.httpUrl, undefined);

    const keepAlive = agent({ keepAlive: true, maxSockets: 1 });
    const before = await httpsGet(`${t.berth.url}/v2/catalog`, { agent: keepAlive, headers: { Authorization: basic } });
    assert.equal(before.status, 200);
    assert.ok(Array.isArray(before.body.services));
    assert.equal(before.serialNumber, first.serialNumber);

    secret.update({ 'tls.crt': second.cert, 'tls.key': second.key, 'ca.crt': ca.pem });
    let renewed: Awaited<ReturnType<typeof httpsGet>> | undefined;
    await eventually('a new connection gets the renewed certificate', async () => {
      renewed = await httpsGet(`${t.berth.url}/v2/catalog`, { agent: agent(), headers: { Authorization: basic } });
      return renewed.serialNumber === second.serialNumber;
    });
    assert.equal(renewed!.status, 200);
    assert.ok(t.lines.some((l) => l.msg === 'TLS certificate reloaded: new connections use it' && l.certificate.serialNumber === second.serialNumber));
    const metrics = await httpsGet(`${t.berth.url}/metrics`, { agent: agent() });
    const expiry = /^berth_tls_certificate_expiry_timestamp_seconds (\S+)$/m.exec(String(metrics.body));
    assert.equal(Number(expiry?.[1]), Date.parse(new X509Certificate(second.cert).validTo) / 1000, 'the expiry gauge follows the renewal');

    // The connection opened before the renewal is still the same one, with the certificate it was set up with.
    const again = await httpsGet(`${t.berth.url}/v2/service_instances/none/last_operation`, { agent: keepAlive, headers: { Authorization: basic } });
    assert.equal(again.socket, before.socket, 'the keep-alive connection was reused');
    assert.equal(again.status, 404, JSON.stringify(again.body));
    assert.equal(again.serialNumber, first.serialNumber);
  });

  it('a renewed certificate that does not match its key is logged and the serving one kept', async () => {
    const secret = new MountedSecret(join(dir, 'mismatch'), { 'tls.crt': first.cert, 'tls.key': first.key });
    const t = await start({ BERTH_TLS_CERT_FILE: secret.path('tls.crt'), BERTH_TLS_KEY_FILE: secret.path('tls.key') });
    secret.update({ 'tls.crt': stranger.cert, 'tls.key': first.key });
    await eventually('the unusable renewal is logged', async () => t.lines.some((l) => l.level === 40 && /not usable/.test(l.msg)));
    const warning = t.lines.find((l) => l.level === 40 && /not usable/.test(l.msg))!;
    assert.match(warning.reason, /the key does not belong to the certificate/);
    const r = await httpsGet(`${t.berth.url}/v2/catalog`, { agent: agent(), headers: { Authorization: basic } });
    assert.equal(r.status, 200);
    assert.equal(r.serialNumber, first.serialNumber, 'still the previous certificate');
    const logged = JSON.stringify(t.lines);
    for (const pem of [first.key, stranger.key]) {
      const body = pem.split('\n').slice(1, -2).join('');
      assert.ok(!logged.includes(body.slice(0, 40)), 'no key material in the log');
    }

    // A good pair afterwards is picked up: the failure did not stop the watching.
    secret.update({ 'tls.crt': second.cert, 'tls.key': second.key });
    await eventually('the next good renewal is used', async () => (await httpsGet(`${t.berth.url}/v2/catalog`, { agent: agent(), headers: { Authorization: basic } })).serialNumber === second.serialNumber);
  });

  it('plain HTTP to the HTTPS port gets no HTTP answer; BERTH_HTTP_PORT adds a plain listener beside HTTPS', async () => {
    const t = await start({ BERTH_TLS_CERT_FILE: first.certFile, BERTH_TLS_KEY_FILE: first.keyFile });
    const port = new URL(t.berth.url).port;
    const plain = await new Promise<string>((resolve) => {
      const req = httpGet(`http://127.0.0.1:${port}/v2/catalog`, { headers: { Authorization: basic, 'X-Broker-API-Version': '2.17' } }, (res) => {
        res.resume();
        resolve(`answered ${res.statusCode}`);
      });
      req.on('error', (err: NodeJS.ErrnoException) => resolve(`refused: ${err.code}`));
    });
    assert.match(plain, /^refused: /, plain);

    const both = await start({ BERTH_TLS_CERT_FILE: first.certFile, BERTH_TLS_KEY_FILE: first.keyFile, BERTH_HTTP_PORT: '0' });
    assert.match(both.berth.url, /^https:/);
    assert.match(both.berth.httpUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
    const overTls = await httpsGet(`${both.berth.url}/v2/catalog`, { agent: agent(), headers: { Authorization: basic } });
    assert.equal(overTls.status, 200);
    const overHttp = await fetch(`${both.berth.httpUrl}/v2/catalog`, { headers: { Authorization: basic, 'X-Broker-API-Version': '2.17' } });
    assert.equal(overHttp.status, 200);
    assert.ok(Array.isArray(((await overHttp.json()) as { services: unknown[] }).services));
    // The plain listener checks credentials the same way.
    assert.equal((await fetch(`${both.berth.httpUrl}/v2/catalog`, { headers: { 'X-Broker-API-Version': '2.17' } })).status, 401);
  });

  it('connections stuck before the handshake count toward BERTH_MAX_CONNECTIONS and give way to a real client', async () => {
    const t = await start({ BERTH_TLS_CERT_FILE: first.certFile, BERTH_TLS_KEY_FILE: first.keyFile, BERTH_MAX_CONNECTIONS: '4', BERTH_HEADERS_TIMEOUT_SECONDS: '60', BERTH_REQUEST_TIMEOUT_SECONDS: '60' });
    const port = Number(new URL(t.berth.url).port);
    const silent: Socket[] = [];
    const closed: Promise<void>[] = [];
    for (let i = 0; i < 6; i++) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      closed.push(new Promise((r) => s.once('close', () => r())));
      await new Promise<void>((r) => s.once('connect', () => r()));
      silent.push(s);
    }
    // Beyond the cap, the oldest silent ones were closed to make room.
    const evicted = await Promise.race([Promise.all(closed.slice(0, 2)).then(() => true), delay(30_000, false, { ref: false })]);
    assert.ok(evicted, 'the two oldest silent connections were closed');
    const r = await httpsGet(`${t.berth.url}/v2/catalog`, { agent: agent(), headers: { Authorization: basic } });
    assert.equal(r.status, 200);
    for (const s of silent) s.destroy();
  });

  it('a client certificate from BERTH_TLS_CLIENT_CA_FILE authenticates (subject logged); one from another CA does not', async () => {
    const clientCa = makeCa(dir, 'client-ca');
    const otherCa = makeCa(dir, 'other-ca');
    const platform = issue(clientCa, 'platform', 'client', 'cf-cloud-controller');
    const impostor = issue(otherCa, 'impostor', 'client', 'cf-cloud-controller');
    const secret = new MountedSecret(join(dir, 'with-client-ca'), { 'tls.crt': first.cert, 'tls.key': first.key, 'ca.crt': clientCa.pem });
    const t = await start({ BERTH_TLS_CERT_FILE: secret.path('tls.crt'), BERTH_TLS_KEY_FILE: secret.path('tls.key'), BERTH_TLS_CLIENT_CA_FILE: secret.path('ca.crt') });

    // Express route and fast path both.
    for (const path of ['/v2/catalog', '/v2/service_instances/none']) {
      const withCert = await httpsGet(`${t.berth.url}${path}`, { agent: agent({ cert: platform.cert, key: platform.key }) });
      assert.notEqual(withCert.status, 401, `${path}: ${JSON.stringify(withCert.body)}`);
      const wrongCa = await httpsGet(`${t.berth.url}${path}`, { agent: agent({ cert: impostor.cert, key: impostor.key }) });
      assert.equal(wrongCa.status, 401, path);
      assert.equal(wrongCa.body.error, 'Unauthorized');
    }
    const logged = t.lines.filter((l) => l.msg === 'authenticated by client certificate');
    assert.ok(logged.length >= 1);
    assert.equal(logged[0]!.subject.CN, 'cf-cloud-controller');
    assert.equal(logged[0]!.serialNumber, platform.serialNumber);

    // Without a certificate, the other credentials still work: it adds a credential, it replaces none.
    const noCert = agent();
    assert.equal((await httpsGet(`${t.berth.url}/v2/catalog`, { agent: noCert, headers: { Authorization: basic } })).status, 200);
    assert.equal((await httpsGet(`${t.berth.url}/v2/catalog`, { agent: noCert })).status, 401);

    // After a renewal, client certificates are still asked for and verified.
    secret.update({ 'tls.crt': second.cert, 'tls.key': second.key, 'ca.crt': clientCa.pem });
    await eventually('the renewed certificate is served', async () => (await httpsGet(`${t.berth.url}/v2/catalog`, { agent: agent(), headers: { Authorization: basic } })).serialNumber === second.serialNumber);
    const renewed = await httpsGet(`${t.berth.url}/v2/catalog`, { agent: agent({ cert: platform.cert, key: platform.key }) });
    assert.equal(renewed.serialNumber, second.serialNumber);
    assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
    assert.equal((await httpsGet(`${t.berth.url}/v2/catalog`, { agent: agent({ cert: impostor.cert, key: impostor.key }) })).status, 401);
  });
});
