// The typed OSB client (src/osb-client/) against a real Berth (in-process, embedded
// database, the sample catalog): every endpoint, errors as typed values with the
// broker's words untruncated, Retry-After, and the headers it sends (basic and
// bearer auth, API version, originating identity, custom CA over TLS).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { OsbClient, OsbError, OsbTransportError, parseRetryAfter } from '../../src/osb-client/index.ts';
import { TEST_CREDENTIALS, startTestBerth, type TestBerth } from '../support/berth.ts';

const UPS = { service_id: '4f6e6cf6-ffdd-425f-a2c7-3c9258ad2468', plan_id: '86064792-7ea2-467b-af93-ac9694d96d52' };
const ORG = { organization_guid: 'org-1', space_guid: 'space-1' };

async function settled(read: () => Promise<{ state: string }>) {
  for (;;) {
    const op = await read();
    if (op.state !== 'in progress') return op;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('OSB client against a real Berth', () => {
  let t: TestBerth;
  let broker: OsbClient;
  before(async () => {
    t = await startTestBerth();
    broker = new OsbClient({ url: t.berth.url, auth: TEST_CREDENTIALS });
  });
  after(async () => {
    broker.close();
    await t.stop();
  });

  it('reads the catalog, typed', async () => {
    const { services } = await broker.catalog();
    const ups = services.find((s) => s.name === 'user-provided');
    assert.ok(ups, 'the sample catalog has user-provided');
    assert.equal(ups.plans[0]!.name, 'standard');
    assert.equal(typeof ups.plans[0]!.schemas?.service_instance?.create?.parameters, 'object');
  });

  it('runs an instance and a binding through every endpoint', async () => {
    const id = randomUUID();
    const bindingId = randomUUID();
    const p = await broker.provision(id, { ...UPS, ...ORG, context: { platform: 'test' }, parameters: { credentials: { uri: 'x://y' } } });
    assert.ok(['created', 'accepted'].includes(p.outcome), JSON.stringify(p));
    if (p.outcome === 'accepted') {
      const op = await settled(() => broker.instanceLastOperation(id, { operation: p.operation, ...UPS }));
      assert.equal(op.state, 'succeeded');
    }
    const again = await broker.provision(id, { ...UPS, ...ORG, context: { platform: 'test' }, parameters: { credentials: { uri: 'x://y' } } });
    assert.ok(['exists', 'accepted'].includes(again.outcome), 'an identical re-PUT is idempotent');
    const fetched = await broker.fetchInstance(id);
    assert.equal(fetched.plan_id, UPS.plan_id);
    assert.equal(fetched.status, 200);

    const u = await broker.update(id, { service_id: UPS.service_id, parameters: { credentials: { uri: 'x://z' } } });
    if (u.outcome === 'accepted') assert.equal((await settled(() => broker.instanceLastOperation(id, { operation: u.operation }))).state, 'succeeded');

    const b = await broker.bind(id, bindingId, { ...UPS });
    let credentials = b.credentials;
    if (b.outcome === 'accepted') {
      assert.equal((await settled(() => broker.bindingLastOperation(id, bindingId, { operation: b.operation }))).state, 'succeeded');
      credentials = (await broker.fetchBinding(id, bindingId)).credentials;
    }
    assert.deepEqual(credentials, { uri: 'x://z' });
    assert.deepEqual((await broker.fetchBinding(id, bindingId)).credentials, { uri: 'x://z' });

    const ub = await broker.unbind(id, bindingId, UPS);
    if (ub.outcome === 'accepted') {
      const op = await settled(() => broker.bindingLastOperation(id, bindingId, { operation: ub.operation }));
      assert.ok(['succeeded', 'gone'].includes(op.state));
    }
    assert.equal((await broker.unbind(id, bindingId, UPS)).outcome, 'gone', 'a second unbind is 410, an outcome, not an error');

    const d = await broker.deprovision(id, UPS);
    if (d.outcome === 'accepted') {
      const op = await settled(() => broker.instanceLastOperation(id, { operation: d.operation }));
      assert.ok(['succeeded', 'gone'].includes(op.state));
    }
    assert.equal((await broker.deprovision(id, UPS)).outcome, 'gone');
    assert.equal((await broker.instanceLastOperation(id)).state, 'gone', 'last_operation 410 is state gone');
  });

  it('surfaces a 400 as an OsbError with the broker description untruncated', async () => {
    const long = 'k'.repeat(500);
    const err = await broker.provision(randomUUID(), { ...UPS, ...ORG, parameters: { credentials: {}, [long]: 1 } }).then(
      () => assert.fail('expected a 400'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof OsbError, String(err));
    assert.equal(err.status, 400);
    assert.equal(typeof err.error, 'string');
    const raw = JSON.parse(err.text);
    assert.equal(err.description, raw.description, 'the description is the body field, byte for byte');
    assert.ok(err.description!.length > 0);
  });

  it('surfaces 404 on fetch and 401 with wrong credentials, and 412 for an unsupported API version', async () => {
    await assert.rejects(broker.fetchInstance(randomUUID()), (e: unknown) => e instanceof OsbError && e.status === 404);
    const wrong = new OsbClient({ url: t.berth.url, auth: { username: TEST_CREDENTIALS.username, password: 'not-the-password' } });
    await assert.rejects(wrong.catalog(), (e: unknown) => e instanceof OsbError && e.status === 401 && e.error === 'Unauthorized' && /not accepted/.test(e.description!));
    wrong.close();
    const old = new OsbClient({ url: t.berth.url, auth: TEST_CREDENTIALS, apiVersion: '2.12' });
    await assert.rejects(old.catalog(), (e: unknown) => e instanceof OsbError && e.status === 412);
    old.close();
  });

  it("Berth's own resources endpoint: what the provisioner made (nothing, for user-provided), 404 InstanceNotFound, 401", async () => {
    const id = randomUUID();
    await broker.provision(id, { ...UPS, ...ORG, parameters: { credentials: { uri: 'smtp://mail:25' } } });
    const bindingId = randomUUID();
    await broker.bind(id, bindingId, UPS);
    const r = await broker.provisionedResources(id);
    assert.ok(r);
    assert.equal(r.instance_id, id);
    assert.equal(r.kind, 'user-provided');
    assert.deepEqual(r.binding_ids, [bindingId]);
    assert.deepEqual(r.resources, []);
    assert.ok(!Number.isNaN(Date.parse(r.taken_at)));
    // Not OSB: no X-Broker-API-Version needed, the same credentials required.
    const plain = await fetch(`${t.berth.url}/berth/v1/service_instances/${id}/resources`, { headers: { Authorization: `Basic ${Buffer.from(`${TEST_CREDENTIALS.username}:${TEST_CREDENTIALS.password}`).toString('base64')}` } });
    assert.equal(plain.status, 200);
    const anonymous = await fetch(`${t.berth.url}/berth/v1/service_instances/${id}/resources`);
    assert.equal(anonymous.status, 401);
    assert.equal(((await anonymous.json()) as { error: string }).error, 'Unauthorized');
    await assert.rejects(broker.provisionedResources(randomUUID()), (e: unknown) => e instanceof OsbError && e.status === 404 && e.error === 'InstanceNotFound' && /does not exist/.test(e.description!));
    await broker.unbind(id, bindingId, UPS);
    await broker.deprovision(id, UPS);
    await assert.rejects(broker.provisionedResources(id), (e: unknown) => e instanceof OsbError && e.status === 404);
  });

  it('a refused connection is an OsbTransportError, not an OsbError', async () => {
    const nowhere = new OsbClient({ url: 'http://127.0.0.1:1', auth: TEST_CREDENTIALS });
    await assert.rejects(nowhere.catalog(), (e: unknown) => e instanceof OsbTransportError && e.kind === 'network');
    nowhere.close();
  });
});

describe('OSB client on the wire', () => {
  let seen: { method?: string; url?: string; headers: IncomingHttpHeaders }[] = [];
  let answer: (res: import('node:http').ServerResponse) => void = (res) => res.end('{}');
  const server = createHttpServer((req, res) => {
    seen.push({ method: req.method, url: req.url, headers: req.headers });
    req.resume();
    req.on('end', () => answer(res));
  });
  let url = '';
  before(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => server.close());

  it('sends bearer auth, the API version, a request identity and the originating identity', async () => {
    seen = [];
    answer = (res) => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ services: [] }));
    };
    const c = new OsbClient({ url, auth: { bearerToken: 'tok-123' }, apiVersion: '2.16', originatingIdentity: { platform: 'kubernetes', value: { username: 'alice' } } });
    await c.catalog();
    await c.catalog({ originatingIdentity: null, requestIdentity: 'req-1', headers: { 'X-Extra': 'yes' } });
    c.close();
    assert.equal(seen[0]!.headers.authorization, 'Bearer tok-123');
    assert.equal(seen[0]!.headers['x-broker-api-version'], '2.16');
    assert.match(String(seen[0]!.headers['x-broker-api-request-identity']), /^[0-9a-f-]{36}$/);
    const [platform, value] = String(seen[0]!.headers['x-broker-api-originating-identity']).split(' ');
    assert.equal(platform, 'kubernetes');
    assert.deepEqual(JSON.parse(Buffer.from(value!, 'base64').toString()), { username: 'alice' });
    assert.equal(seen[1]!.headers['x-broker-api-originating-identity'], undefined, 'null sends none');
    assert.equal(seen[1]!.headers['x-broker-api-request-identity'], 'req-1');
    assert.equal(seen[1]!.headers['x-extra'], 'yes');
  });

  it('sends accepts_incomplete and the catalog ids on the query, and reads Retry-After from errors and polls', async () => {
    seen = [];
    answer = (res) => {
      res.statusCode = 422;
      res.setHeader('Retry-After', '7');
      res.end(JSON.stringify({ error: 'ConcurrencyError', description: 'd'.repeat(2000) }));
    };
    const c = new OsbClient({ url });
    const err = await c.deprovision('i 1', { service_id: 's', plan_id: 'p' }).catch((e: unknown) => e);
    assert.ok(err instanceof OsbError);
    assert.equal(err.status, 422);
    assert.equal(err.error, 'ConcurrencyError');
    assert.equal(err.description!.length, 2000, 'untruncated');
    assert.equal(err.retryAfterSeconds, 7);
    assert.equal(seen[0]!.url, '/v2/service_instances/i%201?service_id=s&plan_id=p&accepts_incomplete=true');
    answer = (res) => {
      res.setHeader('Retry-After', '3');
      res.end(JSON.stringify({ state: 'in progress', description: 'Installing' }));
    };
    const op = await c.instanceLastOperation('i', { operation: 'op-1' });
    assert.deepEqual([op.state, op.description, op.retryAfterSeconds], ['in progress', 'Installing', 3]);
    await c.provision('i', { service_id: 's', plan_id: 'p' }, { acceptsIncomplete: false }).catch(() => undefined);
    assert.equal(seen.at(-1)!.url, '/v2/service_instances/i');
    c.close();
    assert.equal(parseRetryAfter(new Date(Date.now() + 5000).toUTCString()) !== undefined, true);
  });

  it('provisionedResources: a broker without the endpoint (any 404 but InstanceNotFound) is undefined, not an error', async () => {
    answer = (res) => {
      res.statusCode = 404;
      res.end('{"description":"not found"}');
    };
    const client = new OsbClient({ url });
    assert.equal(await client.provisionedResources('x'), undefined);
    answer = (res) => {
      res.statusCode = 500;
      res.end('{"description":"boom"}');
    };
    await assert.rejects(client.provisionedResources('x'), (e: unknown) => e instanceof OsbError && e.status === 500);
    client.close();
    answer = (res) => res.end('{}');
  });

  it('times out with an OsbTransportError of kind timeout', async () => {
    answer = () => undefined; // never answers
    const c = new OsbClient({ url, timeoutMs: 200 });
    await assert.rejects(c.catalog(), (e: unknown) => e instanceof OsbTransportError && e.kind === 'timeout');
    c.close();
    server.closeAllConnections();
  });

  it('trusts a custom CA for an https: broker', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-osb-ca-'));
    const o = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    o(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=test-ca']);
    o(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 's.key', '-out', 's.csr', '-subj', '/CN=127.0.0.1']);
    const ext = join(dir, 'ext');
    execFileSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1\\n' > ${ext}`]);
    o(['x509', '-req', '-in', 's.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 's.crt', '-days', '1', '-extfile', 'ext']);
    const tls = createHttpsServer({ key: readFileSync(join(dir, 's.key')), cert: readFileSync(join(dir, 's.crt')) }, (_req, res) => res.end('{"services":[]}'));
    tls.listen(0, '127.0.0.1');
    await once(tls, 'listening');
    const tlsUrl = `https://127.0.0.1:${(tls.address() as { port: number }).port}`;
    try {
      const untrusting = new OsbClient({ url: tlsUrl });
      await assert.rejects(untrusting.catalog(), (e: unknown) => e instanceof OsbTransportError && e.kind === 'network');
      untrusting.close();
      const trusting = new OsbClient({ url: tlsUrl, caPem: readFileSync(join(dir, 'ca.crt'), 'utf8') });
      assert.deepEqual(await trusting.catalog(), { services: [] });
      trusting.close();
    } finally {
      tls.close();
    }
  });
});
