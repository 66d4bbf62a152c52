// Against a real kube-apiserver: a synchronous bind whose Kubernetes context
// names a namespace that does not exist is answered 400 naming the namespace
// (the request's fault, issue 16 point 17), not 500. The stand-in API server of
// test/durability/request-caused-failures.test.ts imitates this answer; this
// checks the real one gives it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { REPO, startTestBerth, type TestBerth } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { sharedCluster } from '../support/kube/shared.ts';

const UPS = { service_id: 'svc-ups', plan_id: 'plan-ups' };
const org = { organization_guid: 'org', space_guid: 'space' };

let db: TestDatabase;
let t: TestBerth;
before(async () => {
  const kube = await sharedCluster();
  db = await createTestDatabase('berth_kube_bind');
  t = await startTestBerth({
    databaseUrl: db.url,
    catalogPath: join(REPO, 'test/fixtures/catalog-helm.yaml'),
    env: { KUBECONFIG: kube.kubeconfigPath, BERTH_KUBERNETES_SECRETS: 'true' },
  });
});
after(async () => {
  await t?.stop();
  await db?.drop();
});

test('a bind into a namespace that does not exist: 400 naming it, and the binding id stays free', async () => {
  const namespace = `berth-missing-${randomBytes(4).toString('hex')}`;
  const credentials = { uri: 'https://x.example' };
  assert.equal((await t.client.provision('ups-1', { ...UPS, ...org, parameters: { credentials } }, false)).status, 201);
  const b = await t.client.bind('ups-1', 'b', { ...UPS, context: { platform: 'kubernetes', namespace } }, false);
  assert.equal(b.status, 400, b.text);
  assert.equal(b.body.error, 'BadRequest');
  assert.match(b.body.description, new RegExp(`Namespace "${namespace}" from the bind request's context does not exist`));
  assert.equal((await t.client.bindingLastOperation('ups-1', 'b')).body?.state, 'failed');
  const again = await t.client.bind('ups-1', 'b', UPS, false);
  assert.equal(again.status, 201, again.text);
});
