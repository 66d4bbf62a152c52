// Synchronous operations that fail because of the request itself are answered
// with a 4xx that says what to change, never 500 (issue 16 point 17): unusable
// user-provided parameters are refused before anything is stored, and a bind
// whose Kubernetes context names a namespace that does not exist is answered
// 400 naming it, after Berth undid what the bind made (the platform does no
// cleanup after a 4xx). A failure that is not the client's stays 500 (see
// test/database-provisioners/honest-bind.test.ts). The Kubernetes API is a
// stand-in on 127.0.0.1 that answers 404 to everything but the access check,
// as kube-apiserver does for a Secret in a namespace that does not exist.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, startTestBerth, type TestBerth } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { startKubeApiStandIn, type KubeApiStandIn } from '../support/kube-api-stand-in.ts';
import { DbBerth, PG, pgRoleExists } from '../database-provisioners/support.ts';
import { pgNames } from '../../src/provisioners/sql/names.ts';

// A user-provided plan without a parameters schema: only the provisioner knows what it needs.
const UPS = { service_id: 'svc-ups', plan_id: 'plan-ups' };
const org = { organization_guid: 'org', space_guid: 'space' };
const missingNamespace = { platform: 'kubernetes', namespace: 'berth-no-such-namespace' };

const standInKubeconfig = () => join(mkdtempSync(join(tmpdir(), 'berth-kube-stand-in-')), 'kubeconfig');

describe('user-provided: request-caused failures answer 4xx', () => {
  let kube: KubeApiStandIn;
  let db: TestDatabase;
  let t: TestBerth;

  before(async () => {
    kube = await startKubeApiStandIn(standInKubeconfig());
    db = await createTestDatabase('berth_reqfail');
    t = await startTestBerth({
      databaseUrl: db.url,
      catalogPath: join(REPO, 'test/fixtures/catalog-helm.yaml'),
      env: { KUBECONFIG: kube.kubeconfigPath, BERTH_KUBERNETES_SECRETS: 'true' },
    });
  });
  after(async () => {
    await t?.stop();
    await db?.drop();
    await kube?.close();
  });

  const rows = async (table: 'instances' | 'operations', instanceId: string) =>
    Number((await t.berth.stores.knex(table).where(table === 'instances' ? { id: instanceId } : { instance_id: instanceId }).count({ n: '*' }))[0]!.n);

  test('a provision with unusable parameters is answered 400 saying what to send, and nothing is stored', async () => {
    const id = 'ups-unusable';
    for (const parameters of [{}, { credentials: 'user:pass' }, { credentials: ['a'] }, { credentials: { uri: 'x' }, syslog_drain_url: 5 }]) {
      const r = await t.client.provision(id, { ...UPS, ...org, parameters }, false);
      assert.equal(r.status, 400, `${JSON.stringify(parameters)}: ${r.text}`);
      assert.equal(r.body.error, 'BadRequest');
      assert.match(r.body.description, /parameters\.(credentials|syslog_drain_url)/);
    }
    assert.equal(await rows('instances', id), 0, 'no instance row');
    assert.equal(await rows('operations', id), 0, 'no operation');
    assert.equal((await t.client.lastOperation(id)).status, 404);
    // Nothing was stored, so other attributes under the same id are a fresh provision (not 409).
    assert.equal((await t.client.provision(id, { ...UPS, ...org, parameters: { credentials: { uri: 'https://x.example' } } }, false)).status, 201);
  });

  test('an update to unusable parameters is answered 400 and changes nothing', async () => {
    const id = 'ups-update-unusable';
    const credentials = { uri: 'https://x.example' };
    assert.equal((await t.client.provision(id, { ...UPS, ...org, parameters: { credentials } }, false)).status, 201);
    const r = await t.client.update(id, { service_id: UPS.service_id, parameters: { credentials: null } }, false);
    assert.equal(r.status, 400, r.text);
    assert.match(r.body.description, /parameters\.credentials must be a JSON object/);
    assert.equal(await rows('operations', id), 1, 'only the provision');
    const b = await t.client.bind(id, 'b', UPS, false);
    assert.equal(b.status, 201, b.text);
    assert.deepEqual(b.body.credentials, credentials);
  });

  test('a bind into a namespace that does not exist is answered 400 naming it; last_operation reports it failed', async () => {
    const id = 'ups-missing-ns';
    const credentials = { uri: 'https://x.example' };
    assert.equal((await t.client.provision(id, { ...UPS, ...org, parameters: { credentials } }, false)).status, 201);
    const b = await t.client.bind(id, 'b', { ...UPS, context: missingNamespace }, false);
    assert.equal(b.status, 400, b.text);
    assert.equal(b.body.error, 'BadRequest');
    assert.match(b.body.description, /Namespace "berth-no-such-namespace" from the bind request's context does not exist/);
    assert.ok(kube.requests.some((r) => r.startsWith('POST /api/v1/namespaces/berth-no-such-namespace/secrets')), kube.requests.join('\n'));
    assert.equal((await t.client.fetchBinding(id, 'b')).status, 404, 'no credentials are served');
    const lo = await t.client.bindingLastOperation(id, 'b');
    assert.equal(lo.status, 200, lo.text);
    assert.equal(lo.body.state, 'failed');
    assert.match(lo.body.description, /berth-no-such-namespace/);
    // The refused bind left no binding behind: the same id binds again, here without a Secret.
    const again = await t.client.bind(id, 'b', UPS, false);
    assert.equal(again.status, 201, again.text);
    assert.deepEqual(again.body.credentials, credentials);
  });
});

describe('postgres: a bind into a namespace that does not exist', () => {
  let kube: KubeApiStandIn;
  let h: DbBerth;

  before(async () => {
    kube = await startKubeApiStandIn(standInKubeconfig());
    h = await DbBerth.start({ KUBECONFIG: kube.kubeconfigPath, BERTH_KUBERNETES_SECRETS: 'true' });
  });
  after(async () => {
    await h?.stop();
    await kube?.close();
  });

  test('is answered 400 naming the namespace, and the login it created is removed', async () => {
    const id = await h.provisioned(PG.service, PG.small);
    const { id: bindingId, reply } = await h.bind(id, PG.service, PG.small, undefined, { context: missingNamespace });
    assert.equal(reply.status, 400, reply.text);
    assert.match(reply.body.description, /Namespace "berth-no-such-namespace"/);
    assert.equal(await pgRoleExists(pgNames.bindingRole(id, bindingId)), false, 'the binding role was dropped: the platform does not clean up after a 4xx');
    assert.equal((await h.client.fetchBinding(id, bindingId)).status, 404);
    assert.equal((await h.client.bindingLastOperation(id, bindingId)).body?.state, 'failed');
    // Without the Kubernetes context the same binding id binds.
    const again = await h.bind(id, PG.service, PG.small, bindingId);
    assert.equal(again.reply.status, 201, again.reply.text);
    assert.equal(await pgRoleExists(pgNames.bindingRole(id, bindingId)), true);
    assert.equal((await h.unbind(id, bindingId, PG.service, PG.small)).status, 200);
    assert.equal((await h.deprovision(id, PG.service, PG.small)).body?.state, 'succeeded');
  });
});

describe('a request-caused failure whose create cannot be undone', () => {
  let api: Server;
  let db: TestDatabase;
  let t: TestBerth;

  before(async () => {
    // Writes: the namespace does not exist. Reads (the undo looks for the binding Secret): the API server is failing.
    api = createServer((req, res) => {
      req.resume();
      res.setHeader('content-type', 'application/json');
      if (req.method === 'GET') {
        res.statusCode = 503;
        res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'etcd is unavailable', code: 503 }));
        return;
      }
      res.statusCode = 404;
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', message: 'namespaces "berth-no-such-namespace" not found', code: 404 }));
    });
    api.listen(0, '127.0.0.1');
    await once(api, 'listening');
    const kubeconfig = standInKubeconfig();
    writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "http://127.0.0.1:${(api.address() as { port: number }).port}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`,
    );
    db = await createTestDatabase('berth_reqfail');
    t = await startTestBerth({ databaseUrl: db.url, catalogPath: join(REPO, 'test/fixtures/catalog-helm.yaml'), env: { KUBECONFIG: kubeconfig, BERTH_KUBERNETES_SECRETS: 'true' } });
  });
  after(async () => {
    await t?.stop();
    await db?.drop();
    api?.close();
  });

  test('is answered 500, so that the platform cleans up what is left', async () => {
    const id = 'ups-no-undo';
    assert.equal((await t.client.provision(id, { ...UPS, ...org, parameters: { credentials: { uri: 'https://x.example' } } }, false)).status, 201);
    const b = await t.client.bind(id, 'b', { ...UPS, context: missingNamespace }, false);
    assert.equal(b.status, 500, b.text);
    assert.equal(b.body.error, 'OperationFailed');
    assert.match(b.body.description, /berth-no-such-namespace/);
    const row = await t.berth.stores.knex('bindings').where({ instance_id: id, id: 'b' }).first('state');
    assert.equal(row?.state, 'create_failed', 'kept for the orphan mitigation unbind');
  });
});
