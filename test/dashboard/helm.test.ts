// A Helm instance's dashboard on the real test control plane (kube-apiserver with a kwok node): the page shows
// the release, its workloads and their readiness as the API server reports them, from the instance's
// dashboard_url. (The browser itself is exercised in browser.test.ts; this page is fetched as HTML.)
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { freePort, startTestBerth, type TestBerth } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { sharedCluster } from '../support/kube/shared.ts';
import { brokerKubeconfig, HELM_CATALOG } from '../helm/support.ts';

const PG = { service_id: 'svc-pg', plan_id: 'plan-pg-small' };

let db: TestDatabase;
let t: TestBerth;
let base: string;

before(async () => {
  const kube = await sharedCluster();
  db = await createTestDatabase();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  t = await startTestBerth({
    databaseUrl: db.url,
    catalogPath: HELM_CATALOG,
    env: { PORT: String(port), BERTH_DASHBOARD_URL: base, KUBECONFIG: await brokerKubeconfig(kube), BERTH_HELM_BIN: kube.helmBin },
  });
});
after(async () => {
  await t?.stop();
  await db?.drop();
});

test("a Helm instance's dashboard shows its release and workloads with their readiness", async () => {
  const id = `dash-${randomUUID()}`;
  const p = await t.client.provision(id, { ...PG, organization_guid: 'org', space_guid: 'space' });
  assert.equal(p.status, 202, p.text);
  try {
    assert.equal((await t.client.waitForInstance(id, p.body.operation, 240_000)).body.state, 'succeeded');
    const res = await fetch(p.body.dashboard_url);
    assert.equal(res.status, 200);
    const html = await res.text();
    const resources = /<section id="resources">([\s\S]*?)<\/section>/.exec(html)?.[1] ?? '';
    assert.match(resources, /Ready<\/span> <strong>HelmRelease<\/strong>/, resources);
    assert.match(resources, /Ready<\/span> <strong>StatefulSet<\/strong>[\s\S]*?1\/1 ready/, resources);
    assert.match(resources, /<strong>Pod<\/strong>/, resources);
    assert.match(html, /<dt>Kind<\/dt><dd>helm<\/dd>/);
    assert.match(html, /psql &#34;\$uri&#34;/);
  } finally {
    const d = await t.client.deprovision(id, PG.service_id, PG.plan_id);
    if (d.status === 202) await t.client.waitForInstance(id, d.body.operation, 240_000);
  }
});
