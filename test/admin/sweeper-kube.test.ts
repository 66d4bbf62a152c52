// The orphan sweeper on a real kube-apiserver with the real helm: planted namespaces, Helm releases and
// binding Secrets with Berth's labels and no instance are reported and deleted (named by id: the cluster is
// shared with the run's other test files); live instances' are left
// alone, as are objects with Berth's labels but not Berth's names; a live instance whose Helm release was
// uninstalled by hand is reported missing. Berth runs as cluster admin here: sweeping needs `list` on
// namespaces and Secrets cluster-wide, more than deploy/rbac.yaml grants (see the README).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { execa } from 'execa';
import { REPO, startTestBerth, type TestBerth } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { sharedCluster, type SharedCluster } from '../support/kube/shared.ts';
import { bindingSecretName } from '../../src/kubernetes/binding-secrets.ts';
import { BINDING_ID_ANNOTATION, BINDING_LABEL, INSTANCE_ID_ANNOTATION, INSTANCE_LABEL, MANAGED_BY, idHash } from '../../src/kubernetes/names.ts';
import { release } from '../support/gated-provisioner.ts';
import { ADMIN_TOKEN, MODULES } from './support.ts';

const TINY = join(REPO, 'test/fixtures/charts/tiny');
const HELM = { service_id: 'sweep-helm', plan_id: 'sweep-tiny' };
const GATED = { service_id: 'sweep-gated', plan_id: 'sweep-gated-plan' };

let kube: SharedCluster;
let core: CoreV1Api;
let db: TestDatabase;
let t: TestBerth;
let appNs: string;

before(async () => {
  kube = await sharedCluster();
  core = kube.kubeConfig().makeApiClient(CoreV1Api);
  db = await createTestDatabase();
  appNs = await kube.createNamespace('sweep-app');
  const dir = mkdtempSync(join(tmpdir(), 'berth-sweep-'));
  const catalog = join(dir, 'catalog.yaml');
  writeFileSync(
    catalog,
    `services:
  - id: sweep-helm
    name: tiny
    description: tiny
    bindable: false
    plans:
      - id: sweep-tiny
        name: tiny
        description: tiny
        provisioner: { kind: helm, chart: ${TINY}, values: { replicas: 1 }, timeout: 120 }
  - id: sweep-gated
    name: gated
    description: gated
    bindable: true
    plans:
      - id: sweep-gated-plan
        name: gated
        description: gated
        provisioner: { kind: gated }
`,
  );
  t = await startTestBerth({
    databaseUrl: db.url,
    catalogPath: catalog,
    env: {
      KUBECONFIG: kube.kubeconfigPath,
      BERTH_HELM_BIN: kube.helmBin,
      BERTH_PROVISIONER_MODULES: MODULES,
      BERTH_ADMIN_TOKENS: `alice:${ADMIN_TOKEN}`,
      BERTH_ADMIN_PORT: '0',
      BERTH_SWEEP_GRACE_SECONDS: '0',
    },
  });
});

after(async () => {
  release();
  await t?.stop();
  await db?.drop();
  await kube?.deleteNamespace(appNs, { wait: false }).catch(() => undefined);
});

async function admin(body: unknown): Promise<any> {
  const res = await fetch(`${t.berth.adminUrl}/admin/v1/sweep`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200, await res.clone().text());
  return res.json();
}

async function provisioned(plan: { service_id: string; plan_id: string }, id = `sweep-${randomUUID()}`): Promise<string> {
  const r = await t.client.provision(id, { ...plan, organization_guid: 'o', space_guid: 's' });
  assert.equal(r.status, 202, r.text);
  const done = await t.client.waitForInstance(id, r.body.operation, 240_000);
  assert.equal(done.body.state, 'succeeded', done.text);
  return id;
}

const helm = (args: string[]) => execa(kube.helmBin, args, { env: kube.helmEnv() });
const exists = async (read: () => Promise<{ metadata?: { deletionTimestamp?: Date } }>) => {
  try {
    return !(await read()).metadata?.deletionTimestamp;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return false;
    throw err;
  }
};

test('the sweeper finds planted namespaces, Helm releases and binding Secrets, reports a release uninstalled by hand, and deletes only the orphans', async () => {
  const live = await provisioned(HELM);
  const gone = await provisioned(HELM);
  await helm(['uninstall', `b-${idHash(gone)}`, '--namespace', `berth-${idHash(gone)}`, '--wait']);
  const gated = await provisioned(GATED);
  const bindingId = `b-${randomUUID()}`;
  const bound = await t.client.bind(gated, bindingId, { ...GATED, context: { platform: 'kubernetes', namespace: appNs } });
  assert.equal(bound.status, 202, bound.text);
  assert.equal((await t.client.waitForBinding(gated, bindingId, bound.body.operation, 120_000)).body.state, 'succeeded');
  const liveSecret = bindingSecretName(gated, bindingId);
  assert.equal(await exists(() => core.readNamespacedSecret({ name: liveSecret, namespace: appNs })), true, 'the bind wrote its Secret');

  // Planted: what a lost instance and binding leave behind.
  const lostInstance = `lost-${randomUUID()}`;
  const lostNamespace = `berth-${idHash(lostInstance)}`;
  await core.createNamespace({ body: { metadata: { name: lostNamespace, labels: { ...MANAGED_BY, [INSTANCE_LABEL]: idHash(lostInstance) }, annotations: { [INSTANCE_ID_ANNOTATION]: lostInstance } } } });
  const lostRelease = `b-${idHash(`lost-release-${randomUUID()}`)}`;
  await helm(['install', lostRelease, TINY, '--namespace', appNs, '--set', 'replicas=0']);
  const [lostI, lostB] = [`lost-${randomUUID()}`, `lost-${randomUUID()}`];
  const lostSecret = bindingSecretName(lostI, lostB);
  const secretOf = (name: string, i: string, b: string) => ({
    metadata: { name, labels: { ...MANAGED_BY, [INSTANCE_LABEL]: idHash(i), [BINDING_LABEL]: idHash(i, b) }, annotations: { [INSTANCE_ID_ANNOTATION]: i, [BINDING_ID_ANNOTATION]: b } },
    stringData: { password: 'x' },
  });
  await core.createNamespacedSecret({ namespace: appNs, body: secretOf(lostSecret, lostI, lostB) });
  // Berth's labels, not a name Berth gives: never Berth's to delete.
  await core.createNamespacedSecret({ namespace: appNs, body: secretOf('copied-by-someone', lostI, lostB) });

  const report = await admin({});
  const ids = report.orphans.map((o: any) => o.id);
  const expected = [`kubernetes/namespace/${lostNamespace}`, `kubernetes/helm-release/${appNs}/${lostRelease}`, `kubernetes/secret/${appNs}/${lostSecret}`];
  for (const id of expected) assert.ok(ids.includes(id), `${id} is reported: ${JSON.stringify(ids)}; problems: ${JSON.stringify(report.problems)}`);
  for (const notOrphan of [
    `kubernetes/namespace/berth-${idHash(live)}`,
    `kubernetes/helm-release/berth-${idHash(live)}/b-${idHash(live)}`,
    `kubernetes/namespace/berth-${idHash(gone)}`,
    `kubernetes/secret/${appNs}/${liveSecret}`,
    `kubernetes/secret/${appNs}/copied-by-someone`,
  ]) {
    assert.ok(!ids.includes(notOrphan), `${notOrphan} is no orphan`);
  }
  assert.deepEqual(report.problems.filter((p: any) => p.backend === 'kubernetes'), []);
  assert.deepEqual(
    report.missing.filter((m: any) => m.instanceId === gone).map((m: any) => [m.kind, m.name]),
    [["HelmRelease", `berth-${idHash(gone)}/b-${idHash(gone)}`]],
  );
  assert.ok(!report.missing.some((m: any) => m.instanceId === live), JSON.stringify(report.missing));

  // The cluster is shared with the other test files of the run, whose Berths' objects look like orphans
  // to this one: delete what this test planted, by id, as an operator does after reading the report.
  const cleanup = await admin({ delete: true, only: expected, reason: 'planted by the kube sweeper test' });
  for (const id of expected) assert.equal(cleanup.orphans.find((o: any) => o.id === id)?.deleted, true, `${id} deleted: ${JSON.stringify(cleanup.orphans)}`);
  assert.equal(await exists(() => core.readNamespace({ name: lostNamespace })), false);
  assert.equal(await exists(() => core.readNamespacedSecret({ name: lostSecret, namespace: appNs })), false);
  const releases = JSON.parse((await helm(['list', '--namespace', appNs, '--deployed', '--failed', '--pending', '--uninstalling', '--output', 'json'])).stdout) as Array<{ name: string }>;
  assert.ok(!releases.some((r) => r.name === lostRelease));
  // Nothing else went.
  assert.equal(await exists(() => core.readNamespace({ name: `berth-${idHash(live)}` })), true);
  assert.equal(await exists(() => core.readNamespace({ name: `berth-${idHash(gone)}` })), true);
  assert.equal(await exists(() => core.readNamespacedSecret({ name: liveSecret, namespace: appNs })), true);
  assert.equal(await exists(() => core.readNamespacedSecret({ name: 'copied-by-someone', namespace: appNs })), true);
  const liveRelease = JSON.parse((await helm(['list', '--namespace', `berth-${idHash(live)}`, '--output', 'json'])).stdout) as Array<{ name: string }>;
  assert.deepEqual(liveRelease.map((r) => r.name), [`b-${idHash(live)}`]);

  // Tidy up what the test made through Berth.
  for (const id of [live, gone]) {
    const r = await t.client.deprovision(id, HELM.service_id, HELM.plan_id);
    if (r.status === 202) await t.client.waitForInstance(id, r.body.operation, 240_000);
  }
});
