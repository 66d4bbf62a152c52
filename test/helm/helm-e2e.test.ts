// End to end on a real kube-apiserver (with controller-manager, scheduler and
// a kwok node): Berth installs the charts it ships with the real helm binary.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { startTestBerth, type TestBerth } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { sharedCluster, type SharedCluster } from '../support/kube/shared.ts';
import { brokerKubeconfig, handToBerth, helmAdmin, HELM_CATALOG } from './support.ts';
import { bindingSecretName } from '../../src/kubernetes/binding-secrets.ts';
import { BINDING_ID_ANNOTATION, BINDING_LABEL, INSTANCE_ID_ANNOTATION, INSTANCE_LABEL, MANAGED_BY, idHash } from '../../src/kubernetes/names.ts';

const PG = { service_id: 'svc-pg', plan_id: 'plan-pg-small' };
const REDIS = { service_id: 'svc-redis', plan_id: 'plan-redis' };
const UPS = { service_id: 'svc-ups', plan_id: 'plan-ups' };
const org = { organization_guid: 'org', space_guid: 'space' };

describe('helm provisioner on a real control plane', () => {
  let kube: SharedCluster;
  let db: TestDatabase;
  let t: TestBerth;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let appNs: string;

  before(async () => {
    kube = await sharedCluster();
    core = kube.kubeConfig().makeApiClient(CoreV1Api);
    apps = kube.kubeConfig().makeApiClient(AppsV1Api);
    db = await createTestDatabase();
    appNs = await kube.createNamespace('app');
    // The redis plan's fixed namespace, prepared the way the README tells an operator to.
    await handToBerth(kube, 'berth-redis-test');
    t = await startTestBerth({
      databaseUrl: db.url,
      catalogPath: HELM_CATALOG,
      env: { KUBECONFIG: await brokerKubeconfig(kube), BERTH_HELM_BIN: kube.helmBin, BERTH_LEASE_SECONDS: '5' },
    });
  });

  after(async () => {
    await t?.stop();
    await db?.drop();
    await Promise.all([appNs, 'berth-redis-test'].filter(Boolean).map((ns) => kube?.deleteNamespace(ns, { wait: true }).catch(() => undefined)));
  });

  test('provision → ready → bind with a Kubernetes Secret → unbind → update → deprovision', async () => {
    const id = 'pg-e2e-1';
    // Golden values (test/unit/lib/hash-names.test.ts pins the scheme): names must not change between releases.
    const release = 'b-edl2rgez43offhng45kz';
    const namespace = 'berth-edl2rgez43offhng45kz';
    const p = await t.client.provision(id, { ...PG, ...org, parameters: { database: 'orders' } });
    assert.equal(p.status, 202, p.text);
    const done = await t.client.waitForInstance(id, p.body.operation, 240_000);
    assert.equal(done.body.state, 'succeeded', done.text);
    // Honest readiness: by the time Berth says succeeded, the StatefulSet is ready.
    const sts = await apps.readNamespacedStatefulSet({ name: release, namespace });
    assert.equal(sts.status?.readyReplicas, 1);

    const bindingId = 'app-binding-1';
    const b = await t.client.bind(id, bindingId, { ...PG, context: { platform: 'kubernetes', namespace: appNs }, bind_resource: { app_guid: 'orders-app' } });
    assert.equal(b.status, 202, b.text);
    assert.equal((await t.client.waitForBinding(id, bindingId, b.body.operation)).body.state, 'succeeded');
    const fetched = await t.client.fetchBinding(id, bindingId);
    const creds = fetched.body.credentials;
    const chartSecret = await core.readNamespacedSecret({ name: `${release}-credentials`, namespace });
    const chart = (k: string) => Buffer.from(chartSecret.data![k]!, 'base64').toString();
    assert.equal(creds.password, chart('password'));
    assert.equal(creds.username, 'app');
    assert.equal(creds.database, 'orders');
    assert.equal(creds.host, `${release}.${namespace}.svc.cluster.local`);
    assert.equal(creds.port, '5432');
    assert.equal(creds.uri, `postgresql://app:${encodeURIComponent(chart('password'))}@${creds.host}:5432/orders`);

    const secret = await core.readNamespacedSecret({ name: 'berth-binding-6m24wokm6kw7alkwcrj7', namespace: appNs });
    assert.equal(secret.type, 'servicebinding.io/postgresql');
    const entry = (k: string) => Buffer.from(secret.data![k]!, 'base64').toString();
    assert.equal(entry('type'), 'postgresql');
    assert.equal(entry('provider'), 'berth');
    for (const k of ['host', 'port', 'username', 'password', 'database', 'uri']) assert.equal(entry(k), creds[k], k);
    assert.equal(secret.metadata?.labels?.['app.kubernetes.io/managed-by'], 'berth');

    // Instance metadata (a fetched instance carries it from 2.17): where the release is and which chart runs.
    const fetchedInstance = await t.client.request('GET', `/v2/service_instances/${id}`);
    assert.deepEqual(fetchedInstance.body.metadata.labels, {
      'berth.dev/release': release,
      'berth.dev/namespace': namespace,
      'berth.dev/chart': 'postgresql',
      'berth.dev/chart-version': JSON.parse(await helmAdmin(kube, ['list', '-n', namespace, '-o', 'json']))[0].chart.replace(/^postgresql-/, ''),
    });
    assert.equal(fetchedInstance.body.metadata.attributes['berth.dev/revision'], '1');

    // A binding that lives through the updates below (no Kubernetes context: no Secret to write).
    const kept = await t.client.bind(id, 'kept', PG);
    assert.equal((await t.client.waitForBinding(id, 'kept', kept.body.operation)).body.state, 'succeeded');

    const u = await t.client.unbind(id, bindingId, PG.service_id, PG.plan_id);
    assert.equal(u.status, 202);
    assert.equal((await t.client.waitForBinding(id, bindingId, u.body.operation)).body.state, 'succeeded');
    await assert.rejects(core.readNamespacedSecret({ name: bindingSecretName(id, bindingId), namespace: appNs }), (e: any) => e.code === 404);

    // Invalid parameters: 400 and nothing changes (the release stays at its revision).
    const revisions = async () => JSON.parse(await helmAdmin(kube, ['history', release, '-n', namespace, '-o', 'json'])).length;
    const before = await revisions();
    const bad = await t.client.update(id, { service_id: 'svc-pg', parameters: { database: 'Not Valid' } });
    assert.equal(bad.status, 400);
    assert.equal(await revisions(), before);

    const up = await t.client.update(id, { service_id: 'svc-pg', plan_id: 'plan-pg-medium', previous_values: { plan_id: 'plan-pg-small' } });
    assert.equal(up.status, 202, up.text);
    assert.equal((await t.client.waitForInstance(id, up.body.operation, 240_000)).body.state, 'succeeded');
    const values = JSON.parse(await helmAdmin(kube, ['get', 'values', release, '-n', namespace, '-o', 'json']));
    assert.equal(values.resources.limits.memory, '2Gi', 'the upgrade applied the medium plan');
    assert.equal(values.auth.database, 'orders', 'parameters survive a plan change');
    assert.equal(await revisions(), before + 1);
    const afterPlanChange = await t.client.fetchBinding(id, 'kept');
    assert.equal(afterPlanChange.body.metadata, undefined, 'new resources, same Service and Secret: the credentials are current');
    assert.equal((await t.client.request('GET', `/v2/service_instances/${id}`)).body.metadata.attributes['berth.dev/revision'], String(before + 1));

    // Another database: what the binding hands out is no longer what the release serves.
    const moved = await t.client.update(id, { service_id: 'svc-pg', parameters: { database: 'sales' } });
    assert.equal((await t.client.waitForInstance(id, moved.body.operation, 240_000)).body.state, 'succeeded');
    const stale = await t.client.fetchBinding(id, 'kept');
    assert.equal(stale.body.credentials.database, 'orders');
    assert.match(stale.body.metadata.berth_credentials_stale.reason, /credential entries database, uri /);

    const d = await t.client.deprovision(id, PG.service_id, 'plan-pg-medium');
    assert.equal(d.status, 202);
    assert.equal((await t.client.waitForInstance(id, d.body.operation, 240_000)).body.state, 'succeeded');
    assert.equal((await t.client.lastOperation(id)).status, 410);
    await assert.rejects(core.readNamespace({ name: namespace }), (e: any) => e.code === 404);
    const releases = JSON.parse(await helmAdmin(kube, ['list', '-A', '-o', 'json', '--deployed', '--failed', '--pending', '--superseded', '--uninstalling'])) as Array<{ name: string }>;
    assert.ok(!releases.some((r) => r.name === release));
  });

  test('a chart whose Pods never become ready fails with the reason, and deprovision cleans up', async () => {
    const id = 'never-ready-1';
    const namespace = `berth-${idHash(id)}`;
    const p = await t.client.provision(id, { service_id: 'svc-broken', plan_id: 'plan-never', ...org });
    const done = await t.client.waitForInstance(id, p.body.operation, 120_000);
    assert.equal(done.body.state, 'failed');
    assert.match(done.body.description, /did not become ready within 15 s/);
    assert.match(done.body.description, /Unschedulable|node affinity|selector/);
    const d = await t.client.deprovision(id, 'svc-broken', 'plan-never');
    assert.equal((await t.client.waitForInstance(id, d.body.operation, 120_000)).body.state, 'succeeded');
    await assert.rejects(core.readNamespace({ name: namespace }), (e: any) => e.code === 404);
  });

  test('two instances never see each other\'s credentials', async () => {
    const ids = ['redis-a', 'redis-b'];
    const ops = await Promise.all(ids.map((id) => t.client.provision(id, { ...REDIS, ...org })));
    for (const [i, id] of ids.entries()) assert.equal((await t.client.waitForInstance(id, ops[i]!.body.operation, 240_000)).body.state, 'succeeded');
    const creds = [];
    for (const id of ids) {
      const b = await t.client.bind(id, 'b', REDIS);
      assert.equal((await t.client.waitForBinding(id, 'b', b.body.operation)).body.state, 'succeeded');
      creds.push((await t.client.fetchBinding(id, 'b')).body.credentials);
    }
    assert.notEqual(creds[0].password, creds[1].password);
    assert.notEqual(creds[0].host, creds[1].host);
    for (const id of ids) {
      await t.client.waitForBinding(id, 'b', (await t.client.unbind(id, 'b', REDIS.service_id, REDIS.plan_id)).body.operation);
      const d = await t.client.deprovision(id, REDIS.service_id, REDIS.plan_id);
      assert.equal((await t.client.waitForInstance(id, d.body.operation, 120_000)).body.state, 'succeeded');
    }
  });

  test('a Secret Berth did not create is never modified', async () => {
    const id = 'redis-owned';
    const p = await t.client.provision(id, { ...REDIS, ...org });
    assert.equal((await t.client.waitForInstance(id, p.body.operation, 240_000)).body.state, 'succeeded');
    const name = bindingSecretName(id, 'b');
    const theirs = await core.createNamespacedSecret({ namespace: appNs, body: { metadata: { name }, stringData: { mine: 'do not touch' } } });
    const b = await t.client.bind(id, 'b', { ...REDIS, context: { platform: 'kubernetes', namespace: appNs } });
    const done = await t.client.waitForBinding(id, 'b', b.body.operation);
    assert.equal(done.body.state, 'failed');
    assert.match(done.body.description, /not created by Berth/);
    const after = await core.readNamespacedSecret({ name, namespace: appNs });
    assert.equal(after.metadata?.resourceVersion, theirs.metadata?.resourceVersion);
    assert.deepEqual(Object.keys(after.data ?? {}), ['mine']);
    // Unbinding the failed binding leaves their Secret alone too.
    await t.client.waitForBinding(id, 'b', (await t.client.unbind(id, 'b', REDIS.service_id, REDIS.plan_id)).body.operation);
    assert.equal((await core.readNamespacedSecret({ name, namespace: appNs })).metadata?.resourceVersion, theirs.metadata?.resourceVersion);
    const d = await t.client.deprovision(id, REDIS.service_id, REDIS.plan_id);
    await t.client.waitForInstance(id, d.body.operation, 120_000);
  });

  test('user-provided credential names that cannot be Secret keys: 400 at bind, nothing written', async () => {
    const id = 'ups-bad-keys';
    const p = await t.client.provision(id, { ...UPS, ...org, parameters: { credentials: { 'my key': 'a', 'a/b': 'b', ok: 'c' } } }, false);
    assert.equal(p.status, 201, p.text);
    const b = await t.client.bind(id, 'b', { ...UPS, context: { platform: 'kubernetes', namespace: appNs } }, false);
    assert.equal(b.status, 400, b.text);
    assert.match(b.body.description, /^Credential names "my key", "a\/b" cannot be keys of the binding Secret/);
    await assert.rejects(core.readNamespacedSecret({ name: bindingSecretName(id, 'b'), namespace: appNs }), (e: any) => e.code === 404);
    assert.equal((await t.client.deprovision(id, UPS.service_id, UPS.plan_id, false)).status, 200);
  });

  test('a 422 from the API server fails the bind at once with a one-sentence description', async () => {
    const id = 'ups-422';
    const p = await t.client.provision(id, { ...UPS, ...org, parameters: { credentials: { username: 'u', password: 'p' } } }, false);
    assert.equal(p.status, 201, p.text);
    const name = bindingSecretName(id, 'b');
    // Berth's own Secret for this binding (as an earlier attempt could leave it) but of another type: Kubernetes
    // refuses to change a Secret's type, so bringing it up to date gets 422 Invalid every time.
    await core.createNamespacedSecret({
      namespace: appNs,
      body: {
        metadata: {
          name,
          labels: { ...MANAGED_BY, [INSTANCE_LABEL]: idHash(id), [BINDING_LABEL]: idHash(id, 'b') },
          annotations: { [INSTANCE_ID_ANNOTATION]: id, [BINDING_ID_ANNOTATION]: 'b' },
        },
        type: 'Opaque',
        stringData: { username: 'old' },
      },
    });
    try {
      const b = await t.client.bind(id, 'b', { ...UPS, context: { platform: 'kubernetes', namespace: appNs } }, false);
      // Synchronous: a transient classification would keep retrying and answer 504 "taking longer than expected".
      assert.ok(b.status >= 400 && b.status !== 504, `${b.status} ${b.text}`);
      const description: string = b.body.description;
      assert.match(description, new RegExp(`^Kubernetes refused to write the binding Secret ${appNs}/${name} as invalid \\(.*immutable.*\\); change what it names\\.$`));
      assert.ok(description.length < 400, description);
      for (const leak of ['HTTP-Code', 'Headers', '{', 'audit-id']) assert.ok(!description.includes(leak), `leaks ${leak}: ${description}`);
      assert.equal((await t.client.bindingLastOperation(id, 'b')).body.state, 'failed');
    } finally {
      await core.deleteNamespacedSecret({ name, namespace: appNs });
    }
    assert.equal((await t.client.deprovision(id, UPS.service_id, UPS.plan_id, false)).status, 200);
  });
});

describe('helm plans without a cluster', () => {
  test('npm start serves the catalog, and a provision fails fast naming the missing configuration', async () => {
    const db = await createTestDatabase();
    const t = await startTestBerth({ databaseUrl: db.url, catalogPath: HELM_CATALOG, env: { KUBECONFIG: '' } });
    try {
      assert.equal((await t.client.request('GET', '/v2/catalog')).status, 200);
      const p = await t.client.provision('no-cluster', { ...PG, ...org });
      assert.equal(p.status, 202);
      const done = await t.client.waitForInstance('no-cluster', p.body.operation, 30_000);
      assert.equal(done.body.state, 'failed');
      assert.match(done.body.description, /KUBECONFIG/);
    } finally {
      await t.stop();
      await db.drop();
    }
  });
});
