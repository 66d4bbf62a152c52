// Binding Secrets against a stand-in Kubernetes API on 127.0.0.1 that answers
// what we tell it to: a permanent API error ends the bind at once with a short
// description (no retries), one caused by the request's data (an invalid
// Secret) is answered 400, and credential names that cannot be Secret keys
// are refused with 400 before the cluster is called.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException } from '@kubernetes/client-node';
import { REPO, startTestBerth, type TestBerth } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { isTransientKubernetesError, kubernetesFailure } from '../../src/kubernetes/errors.ts';
import { PermanentError } from '../../src/provisioners/provisioner.ts';
import { secretKeyProblem } from '../../src/kubernetes/binding-secrets.ts';

const UPS = { service_id: 'svc-ups', plan_id: 'plan-ups' };
const org = { organization_guid: 'org', space_guid: 'space' };
const kubeContext = { platform: 'kubernetes', namespace: 'app' };

/** A Status as kube-apiserver sends it for an invalid Secret, with the headers the client library used to leak. */
function invalidSecretStatus(): string {
  return JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    message:
      'Secret "berth-binding-x" is invalid: data[my key]: Invalid value: "my key": a valid config key must consist of ' +
      "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation " +
      "is '[-._a-zA-Z0-9]+')",
    reason: 'Invalid',
    details: {
      name: 'berth-binding-x',
      kind: 'Secret',
      causes: [{ reason: 'FieldValueInvalid', message: 'Invalid value: "my key": a valid config key must consist of alphanumeric characters', field: 'data[my key]' }],
    },
    code: 422,
  });
}

describe('binding Secrets: Kubernetes API errors', () => {
  let api: Server;
  let requests: Array<{ method: string; url: string }>;
  let db: TestDatabase;
  let t: TestBerth;

  before(async () => {
    requests = [];
    api = createServer((req, res) => {
      requests.push({ method: req.method ?? '', url: req.url ?? '' });
      req.resume();
      if (req.method === 'GET') {
        // No binding Secret exists (read when the refused bind is undone).
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 }));
        return;
      }
      res.writeHead(422, { 'content-type': 'application/json', 'audit-id': '0f9e1d2c-aaaa-bbbb-cccc-0123456789ab', 'x-kubernetes-pf-flowschema-uid': 'abc' });
      res.end(invalidSecretStatus());
    });
    api.listen(0, '127.0.0.1');
    await once(api, 'listening');
    const port = (api.address() as { port: number }).port;
    const dir = mkdtempSync(join(tmpdir(), 'berth-kubeconfig-'));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{ name: fake, cluster: { server: "http://127.0.0.1:' + port + '", insecure-skip-tls-verify: true } }]',
        'users: [{ name: fake, user: { token: not-a-real-token } }]',
        'contexts: [{ name: fake, context: { cluster: fake, user: fake } }]',
        'current-context: fake',
      ].join('\n'),
      { mode: 0o600 },
    );
    db = await createTestDatabase();
    t = await startTestBerth({
      databaseUrl: db.url,
      catalogPath: join(REPO, 'test/fixtures/catalog-helm.yaml'),
      env: { KUBECONFIG: kubeconfig, BERTH_KUBERNETES_SECRETS: 'true' },
    });
  });

  after(async () => {
    await t?.stop();
    await db?.drop();
    api?.close();
  });

  test('a 422 from the API server ends the bind at once with a short description, not after retries, answered 400', async () => {
    const id = 'ups-422';
    assert.equal((await t.client.provision(id, { ...UPS, ...org, parameters: { credentials: { uri: 'https://x.example', token: 't' } } }, false)).status, 201);
    const before = requests.length;
    const b = await t.client.bind(id, 'b1', { ...UPS, context: kubeContext }, false);
    // Synchronous: the answer carries the outcome (a transient classification would answer 504 "taking longer").
    // The Secret is invalid because of what the request carried: the client's to change, so 400 (not 500).
    assert.equal(b.status, 400, b.text);
    assert.equal(b.body.error, 'BadRequest');
    const description: string = b.body.description;
    assert.match(description, /^Kubernetes refused to write the binding Secret app\/berth-binding-\S+ as invalid \(data\[my key\]: Invalid value/);
    assert.match(description, /; change what it names\.$/);
    assert.ok(description.length < 400, `too long (${description.length}): ${description}`);
    for (const leak of ['HTTP-Code', 'Headers', 'audit-id', '{', 'Unknown API Status Code']) assert.ok(!description.includes(leak), `leaks ${leak}: ${description}`);
    const writes = requests.slice(before).filter((r) => r.method !== 'GET');
    assert.equal(writes.length, 1, 'exactly one write: a permanent error is not retried');
    const lo = await t.client.bindingLastOperation(id, 'b1');
    assert.equal(lo.body.state, 'failed', lo.text);
  });

  test('credential names that cannot be Secret keys: 400 before anything is queued or sent to the cluster', async () => {
    const id = 'ups-bad-keys';
    const credentials = { 'my key': 'a', 'a/b': 'b', fine_key: 'c' };
    assert.equal((await t.client.provision(id, { ...UPS, ...org, parameters: { credentials } }, false)).status, 201);
    const before = requests.length;
    const b = await t.client.bind(id, 'b1', { ...UPS, context: kubeContext }, false);
    assert.equal(b.status, 400, b.text);
    assert.match(b.body.description, /^Credential names "my key", "a\/b" cannot be keys of the binding Secret Berth writes into namespace "app"/);
    assert.match(b.body.description, /rename them, or bind without a Kubernetes context/);
    assert.equal(requests.length, before, 'the cluster was not called');
    assert.equal((await t.client.fetchBinding(id, 'b1')).status, 404, 'a 400 creates no binding');
    // Without a Kubernetes context no Secret is written, so the same credentials bind.
    const plain = await t.client.bind(id, 'b2', { ...UPS }, false);
    assert.equal(plain.status, 201, plain.text);
    assert.deepEqual(plain.body.credentials, credentials);
  });
});

describe('Kubernetes API error classification', () => {
  const apiError = (code: number, body: object | string = {}) =>
    new ApiException(code, 'Unknown API Status Code!', typeof body === 'string' ? body : JSON.stringify(body), { 'audit-id': 'x' });

  test('only the statuses a call names as the request\'s fault are marked caused by the request', () => {
    for (const code of [404, 422]) {
      const e = kubernetesFailure(apiError(code), 'write the binding Secret a/b', {}, [404, 422]);
      assert.ok(e instanceof PermanentError && e.causedByRequest, String(code));
      assert.ok(!(kubernetesFailure(apiError(code), 'write the binding Secret a/b') as PermanentError).causedByRequest, `${code} without requestStatuses`);
    }
    // Credentials, permissions and Berth's own defects stay the broker's (500): the client cannot fix them.
    for (const code of [400, 403]) {
      const e = kubernetesFailure(apiError(code), 'write the binding Secret a/b', {}, [404, 422]);
      assert.ok(e instanceof PermanentError && !e.causedByRequest, String(code));
    }
    for (const code of [401, 409, 429, 503]) assert.ok(!(kubernetesFailure(apiError(code), 'x', {}, [404, 422]) instanceof PermanentError), String(code));
  });

  test('4xx other than 401, 409 and 429 is permanent; 409, 429, 5xx and network errors are transient', () => {
    for (const code of [400, 403, 404, 405, 410, 413, 415, 422]) {
      assert.equal(isTransientKubernetesError(apiError(code)), false, String(code));
      assert.ok(kubernetesFailure(apiError(code), 'write Secret a/b') instanceof PermanentError, String(code));
    }
    // 401: the operation is tried again (a replica whose Pod was deleted has an invalidated token; another's works),
    // and ends with this description once its attempts are used up.
    const unauthorized = kubernetesFailure(apiError(401), 'write Secret a/b');
    assert.ok(!(unauthorized instanceof PermanentError));
    assert.match(unauthorized.message, /^Kubernetes did not accept Berth's credentials to write Secret a\/b; /);
    for (const code of [409, 429, 500, 502, 503, 504]) {
      assert.equal(isTransientKubernetesError(apiError(code)), true, String(code));
      assert.ok(!(kubernetesFailure(apiError(code), 'write Secret a/b') instanceof PermanentError), String(code));
    }
    const network = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    assert.equal(isTransientKubernetesError(network), true);
    assert.equal(kubernetesFailure(network, 'write Secret a/b').message, 'The Kubernetes API could not be reached to write Secret a/b (ECONNREFUSED).');
  });

  test('descriptions are one short sentence from the Status, never the exception text', () => {
    const forbidden = kubernetesFailure(
      apiError(403, { kind: 'Status', message: 'secrets "x" is forbidden: User "u" cannot create resource "secrets" in API group "" in the namespace "n"', reason: 'Forbidden', code: 403 }),
      'write the binding Secret n/x',
    );
    assert.equal(
      forbidden.message,
      'Berth may not write the binding Secret n/x (secrets "x" is forbidden: User "u" cannot create resource "secrets" in API group "" in the namespace "n"); ' +
        'grant it in deploy/rbac.yaml and deploy/admission-policy.yaml, or use a namespace Berth may write to.',
    );
    const long = kubernetesFailure(apiError(400, { message: 'x'.repeat(5000) }), 'do it');
    assert.ok(long.message.length < 400, String(long.message.length));
    const notJson = kubernetesFailure(apiError(415, '<html>nope</html>'), 'do it');
    assert.equal(notJson.message, 'Kubernetes refused to do it with HTTP 415 (HTTP 415); check the request against the cluster’s API.');
    for (const e of [forbidden, long, notJson]) assert.ok(!/Headers|HTTP-Code|audit-id/.test(e.message), e.message);
  });

  test('the Secret key rule is the API server\'s', () => {
    for (const ok of ['a', 'A-b_c.d', 'key.name', '.hidden', 'x'.repeat(253)]) assert.equal(secretKeyProblem(ok), undefined, ok);
    for (const bad of ['', 'my key', 'a/b', 'ü', '.', '..', '..x', 'x'.repeat(254), 'a:b']) assert.notEqual(secretKeyProblem(bad), undefined, bad);
  });
});
