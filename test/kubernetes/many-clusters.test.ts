// One Berth serving two real clusters (BERTH_CLUSTERS_FILE): "a" is the run's
// shared cluster (admin credentials), "b" a second kube-apiserver + etcd started
// here (no nodes: the chart has no Pods), where Berth's credentials are a
// ServiceAccount token allowed Secrets, Services and ConfigMaps in two
// namespaces only. context.clusterid routes Helm releases and binding Secrets;
// an instance stays in its cluster; an unknown id, or none without a default,
// is refused with 400; a permission missing in one cluster fails the operation
// naming that cluster, while the same bind into the other cluster works.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { REPO, startTestBerth, TEST_CREDENTIALS, TEST_KEYS, type TestBerth } from '../support/berth.ts';
import { checkOf, doctorJson, show } from '../doctor/support.ts';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { makeShared, sharedCluster, uniqueName, type SharedCluster } from '../support/kube/shared.ts';
import { startCluster, type RunningCluster } from '../support/kube/cluster.ts';
import { bindingSecretName } from '../../src/kubernetes/binding-secrets.ts';
import { releaseName } from '../../src/provisioners/helm/helm-provisioner.ts';

const CHART = { service_id: 'svc-chart', plan_id: 'plan-chart' };
const UPS = { service_id: 'svc-ups', plan_id: 'plan-ups' };
const PG = { service_id: 'svc-pg', plan_id: 'plan-pg' };
const org = { organization_guid: 'org', space_guid: 'space' };

function catalog(releaseNamespace: string): string {
  return `
services:
  - id: svc-chart
    name: no-workloads
    description: A chart with a Secret and a Service.
    bindable: true
    bindings_retrievable: true
    instances_retrievable: true
    plan_updateable: true
    plans:
      - id: plan-chart
        name: standard
        description: standard
        schemas:
          service_instance:
            create:
              parameters: &params
                $schema: http://json-schema.org/draft-07/schema#
                type: object
                additionalProperties: false
                properties: { greeting: { type: string } }
            update: { parameters: *params }
        provisioner:
          kind: helm
          chart: ${join(REPO, 'test/fixtures/charts/no-workloads')}
          namespace: { strategy: fixed, name: ${releaseNamespace} }
          parameters: { greeting: greeting }
          timeout: 60
          credentials:
            type: no-workloads
            entries:
              host: service:{release}-nw
              password: secret:{release}-nw:password
              greeting: secret:{release}-nw:greeting
  - id: svc-ups
    name: user-provided
    description: User-provided credentials.
    bindable: true
    bindings_retrievable: true
    plans:
      - id: plan-ups
        name: standard
        description: Stores credentials.
        provisioner: { kind: user-provided }
  - id: svc-pg
    name: postgresql
    description: A database on the machine's PostgreSQL server.
    bindable: true
    bindings_retrievable: true
    plans:
      - id: plan-pg
        name: shared
        description: A database.
        provisioner: { kind: postgres, server: local }
`;
}

describe('many clusters: context.clusterid routes Helm releases and binding Secrets', () => {
  let a: SharedCluster;
  let running: RunningCluster | undefined;
  let b: SharedCluster;
  let db: TestDatabase;
  let t: TestBerth;
  let dir: string;
  let catalogPath: string;
  let clustersFile: string;
  const releaseNs = uniqueName('mc-release');
  const appNs = uniqueName('mc-app');
  const lockedNs = uniqueName('mc-locked');
  const core = (c: SharedCluster) => c.kubeConfig().makeApiClient(CoreV1Api);
  const kubeCtx = (clusterid: string | undefined, namespace = appNs) => ({ platform: 'kubernetes', namespace, ...(clusterid !== undefined ? { clusterid } : {}) });

  /** Revisions of the release Helm records in the release namespace of `c` (its release Secrets). */
  async function revisions(c: SharedCluster, instanceId: string): Promise<number> {
    const list = await core(c).listNamespacedSecret({ namespace: releaseNs, labelSelector: `owner=helm,name=${releaseName(instanceId)}` });
    return list.items.length;
  }
  async function secretIn(c: SharedCluster, namespace: string, name: string): Promise<Record<string, string> | undefined> {
    try {
      const s = await core(c).readNamespacedSecret({ name, namespace });
      return Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    }
  }

  before(async () => {
    a = await sharedCluster();
    running = await startCluster({ controlPlaneOnly: true, log: () => {} });
    b = makeShared(running.info);
    db = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'berth-clusters-'));
    for (const ns of [releaseNs, appNs, lockedNs]) {
      await core(a).createNamespace({ body: { metadata: { name: ns } } });
      await core(b).createNamespace({ body: { metadata: { name: ns } } });
    }
    // In b, Berth may handle Secrets, Services and ConfigMaps in the release and app namespaces, only read Secrets in
    // lockedNs (so it can tell that a refused binding Secret is not there), and read namespaces.
    const sa = { namespace: 'berth-system', serviceAccount: 'berth' };
    const limited = await b.serviceAccountWithAccess({
      ...sa,
      namespaces: [releaseNs, appNs],
      rules: [{ apiGroups: [''], resources: ['secrets', 'services', 'configmaps'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] }],
    });
    await b.serviceAccountWithAccess({ ...sa, namespaces: [lockedNs], rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }] });
    await b.serviceAccountWithAccess({ ...sa, scope: 'cluster', rules: [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get'] }] });
    catalogPath = join(dir, 'catalog.yaml');
    writeFileSync(catalogPath, catalog(releaseNs));
    clustersFile = join(dir, 'clusters.yaml');
    writeFileSync(clustersFile, `clusters:\n  a: { kubeconfig: ${a.kubeconfigPath} }\n  b: { kubeconfig: ${limited.kubeconfigPath} }\n`);
    t = await startTestBerth({
      databaseUrl: db.url,
      catalogPath,
      env: { BERTH_CLUSTERS_FILE: clustersFile, BERTH_HELM_BIN: a.helmBin, BERTH_LEASE_SECONDS: '5', BERTH_POSTGRES_LOCAL_URL: ADMIN_URL },
    });
  });

  after(async () => {
    await t?.stop();
    await db?.drop();
    if (running) {
      const report = await running.stop();
      assert.deepEqual(report.leftRunning, [], 'the second cluster left no process behind');
    }
    await Promise.all([releaseNs, appNs, lockedNs].map((ns) => a?.deleteNamespace(ns, { wait: false }).catch(() => undefined)));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('an unknown clusterid is refused with 400 naming the configured ids; a Helm provision naming none too (no default)', async () => {
    const unknown = await t.client.provision('mc-unknown', { ...CHART, ...org, context: kubeCtx('c') });
    assert.equal(unknown.status, 400, unknown.text);
    assert.equal(unknown.body.error, 'BadRequest');
    assert.match(unknown.body.description, /context\.clusterid "c" is not a cluster this broker serves; its clusters are "a", "b"\./);
    const upsUnknown = await t.client.provision('mc-unknown-ups', { ...UPS, ...org, parameters: { credentials: { k: 'v' } }, context: kubeCtx('c') });
    assert.equal(upsUnknown.status, 400, upsUnknown.text);

    const none = await t.client.provision('mc-none', { ...CHART, ...org, context: { platform: 'cloudfoundry' } });
    assert.equal(none.status, 400, none.text);
    assert.match(none.body.description, /needs a Kubernetes cluster and its context names none: send context\.clusterid \(one of "a", "b"\)/);
    // A kind that needs no cluster is served without one (Cloud Foundry, Korifi).
    const ups = await t.client.provision('mc-ups-cf', { ...UPS, ...org, parameters: { credentials: { k: 'v' } } });
    assert.equal(ups.status, 201, ups.text);
  });

  test('Helm instances land in the cluster their clusterid names and stay there; bindings write Secrets where the bind says', async () => {
    const inA = 'mc-helm-a';
    const inB = 'mc-helm-b';
    const pa = await t.client.provision(inA, { ...CHART, ...org, context: kubeCtx('a') });
    const pb = await t.client.provision(inB, { ...CHART, ...org, context: kubeCtx('b') });
    assert.equal(pa.status, 202, pa.text);
    assert.equal(pb.status, 202, pb.text);
    assert.equal((await t.client.waitForInstance(inA, pa.body.operation)).body.state, 'succeeded');
    assert.equal((await t.client.waitForInstance(inB, pb.body.operation)).body.state, 'succeeded');
    assert.equal(await revisions(a, inA), 1);
    assert.equal(await revisions(b, inA), 0);
    assert.equal(await revisions(b, inB), 1);
    assert.equal(await revisions(a, inB), 0);

    // An update whose context names the other cluster upgrades the release where it is.
    const up = await t.client.update(inB, { service_id: CHART.service_id, parameters: { greeting: 'moin' }, context: kubeCtx('a') });
    assert.equal(up.status, 202, up.text);
    assert.equal((await t.client.waitForInstance(inB, up.body.operation)).body.state, 'succeeded');
    assert.equal(await revisions(b, inB), 2);
    assert.equal(await revisions(a, inB), 0);
    // ...and an unknown id is refused all the same.
    const badUpdate = await t.client.update(inB, { service_id: CHART.service_id, parameters: { greeting: 'x' }, context: kubeCtx('nowhere') });
    assert.equal(badUpdate.status, 400, badUpdate.text);

    // Binding the instance in b from b: credentials from b's release, the Secret in b's app namespace only.
    const bb = await t.client.bind(inB, 'bind-b', { ...CHART, context: kubeCtx('b') });
    assert.equal(bb.status, 202, bb.text);
    assert.equal((await t.client.waitForBinding(inB, 'bind-b', bb.body.operation)).body.state, 'succeeded');
    const creds = (await t.client.fetchBinding(inB, 'bind-b')).body.credentials;
    assert.equal(creds.greeting, 'moin');
    const name = bindingSecretName(inB, 'bind-b');
    assert.equal((await secretIn(b, appNs, name))?.greeting, 'moin');
    assert.equal(await secretIn(a, appNs, name), undefined);

    // Binding the instance in a from b (an app in the other cluster): the Secret goes to b, where its namespace is.
    const ab = await t.client.bind(inA, 'bind-a-from-b', { ...CHART, context: kubeCtx('b') });
    assert.equal(ab.status, 202, ab.text);
    assert.equal((await t.client.waitForBinding(inA, 'bind-a-from-b', ab.body.operation)).body.state, 'succeeded');
    const crossName = bindingSecretName(inA, 'bind-a-from-b');
    assert.equal((await secretIn(b, appNs, crossName))?.greeting, 'hello');
    assert.equal(await secretIn(a, appNs, crossName), undefined);

    // Unbinding removes each Secret from the cluster it was written to.
    for (const [id, bindingId, cluster] of [[inB, 'bind-b', b], [inA, 'bind-a-from-b', b]] as const) {
      const u = await t.client.unbind(id, bindingId, CHART.service_id, CHART.plan_id);
      assert.equal(u.status, 202, u.text);
      assert.equal((await t.client.waitForBinding(id, bindingId, u.body.operation)).body.state, 'succeeded');
      assert.equal(await secretIn(cluster, appNs, bindingSecretName(id, bindingId)), undefined);
    }

    // Deprovisioning uninstalls each release from its own cluster.
    for (const [id, cluster] of [[inA, a], [inB, b]] as const) {
      const d = await t.client.deprovision(id, CHART.service_id, CHART.plan_id);
      assert.equal(d.status, 202, d.text);
      const gone = await t.client.waitForInstance(id, d.body.operation);
      assert.equal(gone.body.state, 'succeeded', gone.text);
      assert.equal(await revisions(cluster, id), 0);
    }
  });

  test('a database instance (postgres): each binding Secret lands in the cluster its bind names', async () => {
    // Unique: its database's name derives from the id, on a server other runs may share.
    const id = uniqueName('mc-pg');
    const p = await t.client.provision(id, { ...PG, ...org, context: kubeCtx('b') });
    assert.ok(p.status === 201 || p.status === 202, p.text);
    if (p.status === 202) assert.equal((await t.client.waitForInstance(id, p.body.operation)).body.state, 'succeeded');
    for (const [bindingId, clusterid, here, there] of [['pg-a', 'a', a, b], ['pg-b', 'b', b, a]] as const) {
      const r = await t.client.bind(id, bindingId, { ...PG, context: kubeCtx(clusterid) });
      assert.ok(r.status === 201 || r.status === 202, r.text);
      if (r.status === 202) assert.equal((await t.client.waitForBinding(id, bindingId, r.body.operation)).body.state, 'succeeded');
      const creds = (await t.client.fetchBinding(id, bindingId)).body.credentials;
      const name = bindingSecretName(id, bindingId);
      assert.equal((await secretIn(here, appNs, name))?.password, creds.password, `Secret of ${bindingId} in cluster ${clusterid}`);
      assert.equal(await secretIn(there, appNs, name), undefined, `no Secret of ${bindingId} in the other cluster`);
    }
    for (const [bindingId, cluster] of [['pg-a', a], ['pg-b', b]] as const) {
      const u = await t.client.unbind(id, bindingId, PG.service_id, PG.plan_id);
      assert.ok(u.status === 200 || u.status === 202, u.text);
      if (u.status === 202) assert.equal((await t.client.waitForBinding(id, bindingId, u.body.operation)).body.state, 'succeeded');
      assert.equal(await secretIn(cluster, appNs, bindingSecretName(id, bindingId)), undefined);
    }
    const d = await t.client.deprovision(id, PG.service_id, PG.plan_id);
    assert.ok(d.status === 200 || d.status === 202, d.text);
    if (d.status === 202) assert.equal((await t.client.waitForInstance(id, d.body.operation)).body.state, 'succeeded');
  });

  test('user-provided bindings write their Secret into the cluster the bind names', async () => {
    const id = 'mc-ups';
    const p = await t.client.provision(id, { ...UPS, ...org, parameters: { credentials: { token: 's3cret' } }, context: kubeCtx('a') });
    assert.equal(p.status, 201, p.text);
    for (const [bindingId, clusterid, here, there] of [['ups-a', 'a', a, b], ['ups-b', 'b', b, a]] as const) {
      const r = await t.client.bind(id, bindingId, { ...UPS, context: kubeCtx(clusterid) });
      assert.equal(r.status, 201, r.text);
      const name = bindingSecretName(id, bindingId);
      assert.equal((await secretIn(here, appNs, name))?.token, 's3cret', `Secret of ${bindingId} in cluster ${clusterid}`);
      assert.equal(await secretIn(there, appNs, name), undefined, `no Secret of ${bindingId} in the other cluster`);
    }
    const unknown = await t.client.bind(id, 'ups-c', { ...UPS, context: kubeCtx('c') });
    assert.equal(unknown.status, 400, unknown.text);
    assert.match(unknown.body.description, /context\.clusterid "c" is not a cluster this broker serves/);
    for (const [bindingId, cluster] of [['ups-a', a], ['ups-b', b]] as const) {
      assert.equal((await t.client.unbind(id, bindingId, UPS.service_id, UPS.plan_id)).status, 200);
      assert.equal(await secretIn(cluster, appNs, bindingSecretName(id, bindingId)), undefined);
    }
  });

  test("a permission missing in one cluster fails the bind there, naming that cluster; the other cluster's credentials are not used", async () => {
    const id = 'mc-perm';
    const p = await t.client.provision(id, { ...CHART, ...org, context: kubeCtx('a') });
    assert.equal(p.status, 202, p.text);
    assert.equal((await t.client.waitForInstance(id, p.body.operation)).body.state, 'succeeded');

    const refused = await t.client.bind(id, 'locked-b', { ...CHART, context: kubeCtx('b', lockedNs) });
    assert.equal(refused.status, 202, refused.text);
    const failed = await t.client.waitForBinding(id, 'locked-b', refused.body.operation);
    assert.equal(failed.body.state, 'failed', failed.text);
    assert.match(failed.body.description, new RegExp(`^Cluster "b": Berth may not write the binding Secret ${lockedNs}/berth-binding-\\w+ \\(`));
    assert.match(failed.body.description, /User "system:serviceaccount:berth-system:berth" cannot create resource "secrets"/);
    assert.doesNotMatch(failed.body.description, /Cluster "a"/);
    assert.equal(await secretIn(a, lockedNs, bindingSecretName(id, 'locked-b')), undefined, "cluster a's credentials were not used instead");

    const allowed = await t.client.bind(id, 'locked-a', { ...CHART, context: kubeCtx('a', lockedNs) });
    assert.equal(allowed.status, 202, allowed.text);
    assert.equal((await t.client.waitForBinding(id, 'locked-a', allowed.body.operation)).body.state, 'succeeded');
    assert.equal((await secretIn(a, lockedNs, bindingSecretName(id, 'locked-a')))?.greeting, 'hello');

    const u = await t.client.unbind(id, 'locked-a', CHART.service_id, CHART.plan_id);
    assert.equal((await t.client.waitForBinding(id, 'locked-a', u.body.operation)).body.state, 'succeeded');
    const d = await t.client.deprovision(id, CHART.service_id, CHART.plan_id);
    const gone = await t.client.waitForInstance(id, d.body.operation);
    assert.equal(gone.body.state, 'succeeded', gone.text);
  });

  test('berth doctor --local checks each cluster with its own credentials', async () => {
    const env = {
      CATALOG_PATH: catalogPath,
      DATABASE_URL: db.url,
      BROKER_USERNAME: TEST_CREDENTIALS.username,
      BROKER_PASSWORD: TEST_CREDENTIALS.password,
      BERTH_ENCRYPTION_KEYS: TEST_KEYS,
      BERTH_DATA_DIR: join(dir, 'doctor-data'),
      BERTH_HELM_BIN: a.helmBin,
      BERTH_CLUSTERS_FILE: clustersFile,
      BERTH_POSTGRES_LOCAL_URL: ADMIN_URL,
    };
    const { r, report } = await doctorJson(['--local'], env, dir);
    assert.equal(r.code, 1, show(r));
    const inA = checkOf(report, 'kubernetes-permissions:a');
    assert.equal(inA.status, 'pass', inA.message);
    assert.match(inA.message, /^cluster "a": all \d+ permissions the plans need are granted/);
    // b's ServiceAccount has Secrets in two namespaces only: binding Secrets in any app namespace are not granted.
    const inB = checkOf(report, 'kubernetes-permissions:b');
    assert.equal(inB.status, 'fail', inB.message);
    assert.match(inB.message, /^cluster "b": 4 of 5 permissions missing; .*\ncreate secrets \(cluster-wide\): needed for binding Secrets in app namespaces/s);
    assert.ok(!report.checks.some((c) => c.id === 'kubernetes-permissions'), 'no check of KUBECONFIG, which is not set');
  });
});
