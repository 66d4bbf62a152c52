// `berth doctor --local` against the test cluster's real API server and real helm: a plan
// whose chart renders passes and one whose chart does not is named; with the rights of
// deploy/rbac.yaml's berth-broker ClusterRole every permission check passes
// (SelfSubjectAccessReview), and with one permission removed from it (create Secrets) the
// doctor names exactly that one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AuthorizationV1Api, CoreV1Api, KubeConfig, type V1PolicyRule } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { sharedCluster, uniqueName, type SharedCluster } from '../support/kube/index.ts';
import { REPO, TEST_CREDENTIALS, TEST_KEYS } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { PATH, runBerth } from '../cli/support.ts';
import { checkOf, doctorJson, failed, show } from './support.ts';

/** The rules deploy/rbac.yaml gives Berth cluster-wide, read from the file as shipped. */
function brokerRules(): V1PolicyRule[] {
  const docs = parseAllDocuments(readFileSync(join(REPO, 'deploy/rbac.yaml'), 'utf8')).map((d) => d.toJS() as { kind?: string; metadata?: { name?: string }; rules?: V1PolicyRule[] });
  const role = docs.find((d) => d?.kind === 'ClusterRole' && d.metadata?.name === 'berth-broker');
  assert.ok(role?.rules, 'deploy/rbac.yaml has the ClusterRole berth-broker');
  return role.rules;
}

/** RBAC reaches the authorizer through an informer: wait until the new identity may do what it was given. */
async function rightsArrived(kubeconfigPath: string): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const api = kc.makeApiClient(AuthorizationV1Api);
  for (const until = Date.now() + 30_000; ; ) {
    const r = await api.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { verb: 'create', resource: 'namespaces' } } } });
    if (r.status?.allowed) return;
    if (Date.now() > until) throw new Error('the ServiceAccount\'s ClusterRoleBinding did not reach the authorizer within 30 s');
    await sleep(200);
  }
}

describe('berth doctor --local with Helm plans and a real cluster', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-doctor-kube-'));
  let kube: SharedCluster;
  let db: TestDatabase;
  let env: Record<string, string>;
  const namespace = uniqueName('doctor');

  before(async () => {
    kube = await sharedCluster();
    db = await createTestDatabase('berth_doctor_kube');
    // A chart that cannot render: a value it reads through a map that is not there.
    const broken = join(dir, 'broken');
    mkdirSync(join(broken, 'templates'), { recursive: true });
    writeFileSync(join(broken, 'Chart.yaml'), 'apiVersion: v2\nname: broken\nversion: 0.1.0\n');
    writeFileSync(join(broken, 'templates', 'configmap.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  value: {{ .Values.missing.deep | quote }}\n');
    const catalog = join(dir, 'catalog.yaml');
    const helmPlan = (id: string, name: string, chart: string) => `      - id: ${id}\n        name: ${name}\n        description: ${name}\n        provisioner:\n          kind: helm\n          chart: ${chart}\n`;
    writeFileSync(
      catalog,
      `services:\n  - id: doctor-helm\n    name: charts\n    description: charts\n    bindable: true\n    plans:\n${helmPlan('doctor-tiny', 'tiny', join(REPO, 'test/fixtures/charts/tiny'))}${helmPlan('doctor-broken', 'broken', broken)}`,
    );
    env = {
      CATALOG_PATH: catalog,
      DATABASE_URL: db.url,
      BROKER_USERNAME: TEST_CREDENTIALS.username,
      BROKER_PASSWORD: TEST_CREDENTIALS.password,
      BERTH_ENCRYPTION_KEYS: TEST_KEYS,
      BERTH_DATA_DIR: join(dir, 'data'),
      BERTH_HELM_BIN: kube.helmBin,
      BERTH_KUBERNETES_SECRETS: 'true',
    };
    const migrated = await runBerth(['migrate'], { PATH, HOME: dir, ...env });
    assert.equal(migrated.code, 0, show(migrated));
  });
  after(async () => {
    await db?.drop();
    await kube?.deleteNamespace(namespace, { wait: false }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  test("with deploy/rbac.yaml's rights: permissions pass, the chart that renders passes, the one that does not is named", async () => {
    const sa = await kube.serviceAccountWithAccess({ namespace, serviceAccount: 'berth-full', rules: brokerRules(), scope: 'cluster' });
    await rightsArrived(sa.kubeconfigPath);
    const { r, report } = await doctorJson(['--local'], { ...env, KUBECONFIG: sa.kubeconfigPath }, dir);
    assert.equal(r.code, 1, show(r));
    assert.deepEqual(failed(report), ['plan:charts/broken']);
    assert.match(checkOf(report, 'plan:charts/broken').message, /helm template failed: .*nil pointer evaluating .*deep/);
    assert.equal(checkOf(report, 'plan:charts/tiny').status, 'pass', checkOf(report, 'plan:charts/tiny').message);
    const permissions = checkOf(report, 'kubernetes-permissions');
    assert.equal(permissions.status, 'pass', permissions.message);
    assert.match(permissions.message, /all 9 permissions the plans need are granted/);
  });

  test('with create Secrets removed from those rights: the permission check names it', async () => {
    const rules = brokerRules().map((rule) => (rule.resources?.includes('secrets') ? { ...rule, verbs: rule.verbs.filter((v) => v !== 'create') } : rule));
    const sa = await kube.serviceAccountWithAccess({ namespace, serviceAccount: 'berth-no-secret-create', rules, scope: 'cluster' });
    await rightsArrived(sa.kubeconfigPath);
    const { r, report } = await doctorJson(['--local'], { ...env, KUBECONFIG: sa.kubeconfigPath }, dir);
    assert.equal(r.code, 1, show(r));
    const permissions = checkOf(report, 'kubernetes-permissions');
    assert.equal(permissions.status, 'fail');
    assert.match(permissions.message, /^1 of 9 permissions missing; apply deploy\/rbac\.yaml .*\ncreate secrets \(cluster-wide\): needed for binding Secrets in app namespaces$/);
    assert.deepEqual(failed(report), ['kubernetes-permissions', 'plan:charts/broken']);
  });

  test('BERTH_TOKENREVIEW=true: creating TokenReviews is checked too', async () => {
    const tokenReview = { BERTH_TOKENREVIEW: 'true', BERTH_TOKENREVIEW_ALLOWED: 'system:serviceaccount:platform:catalog' };
    const rules = brokerRules().filter((r) => !r.resources?.includes('tokenreviews'));
    const without = await kube.serviceAccountWithAccess({ namespace, serviceAccount: 'berth-no-tokenreview', rules, scope: 'cluster' });
    await rightsArrived(without.kubeconfigPath);
    const refused = checkOf((await doctorJson(['--local'], { ...env, ...tokenReview, KUBECONFIG: without.kubeconfigPath }, dir)).report, 'kubernetes-permissions');
    assert.equal(refused.status, 'fail');
    assert.match(refused.message, /\ncreate tokenreviews\.authentication\.k8s\.io \(cluster-wide\): needed for checking platforms' ServiceAccount tokens/);
    const granted = await kube.serviceAccountWithAccess({
      namespace,
      serviceAccount: 'berth-tokenreview',
      rules: [...rules, { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] }],
      scope: 'cluster',
    });
    await rightsArrived(granted.kubeconfigPath);
    const allowed = checkOf((await doctorJson(['--local'], { ...env, ...tokenReview, KUBECONFIG: granted.kubeconfigPath }, dir)).report, 'kubernetes-permissions');
    assert.equal(allowed.status, 'pass', allowed.message);
    assert.match(allowed.message, /all 10 permissions/);
  });

  test("a plan's fixed namespace: missing, then not handed to Berth (the admission policy would refuse), then labelled", async () => {
    const fixed = uniqueName('doctor-fixed');
    const catalog = join(dir, 'fixed.yaml');
    writeFileSync(
      catalog,
      `services:\n  - id: doctor-fixed\n    name: fixed\n    description: fixed\n    bindable: true\n    plans:\n      - id: doctor-fixed-tiny\n        name: tiny\n        description: tiny\n        provisioner:\n          kind: helm\n          chart: ${join(REPO, 'test/fixtures/charts/tiny')}\n          namespace: { strategy: fixed, name: ${fixed} }\n`,
    );
    const sa = await kube.serviceAccountWithAccess({ namespace, serviceAccount: 'berth-fixed', rules: brokerRules(), scope: 'cluster' });
    await rightsArrived(sa.kubeconfigPath);
    const run = async () => checkOf((await doctorJson(['--local'], { ...env, CATALOG_PATH: catalog, KUBECONFIG: sa.kubeconfigPath }, dir)).report, 'kubernetes-permissions');
    try {
      const missing = await run();
      assert.equal(missing.status, 'fail');
      assert.match(missing.message, new RegExp(`namespace ${fixed} does not exist: create it and label it app\\.kubernetes\\.io/managed-by=berth \\(needed for fixed/tiny, which installs into it\\)`));
      const core = kube.kubeConfig().makeApiClient(CoreV1Api);
      await core.createNamespace({ body: { metadata: { name: fixed } } });
      const unlabelled = await run();
      assert.equal(unlabelled.status, 'fail');
      assert.match(unlabelled.message, new RegExp(`namespace ${fixed} is not handed to Berth, .*kubectl label namespace ${fixed} app\\.kubernetes\\.io/managed-by=berth`));
      const ns = await core.readNamespace({ name: fixed });
      await core.replaceNamespace({ name: fixed, body: { ...ns, metadata: { ...ns.metadata, labels: { ...ns.metadata?.labels, 'app.kubernetes.io/managed-by': 'berth' } } } });
      const labelled = await run();
      assert.equal(labelled.status, 'pass', labelled.message);
    } finally {
      await kube.deleteNamespace(fixed, { wait: false }).catch(() => undefined);
    }
  });
});
