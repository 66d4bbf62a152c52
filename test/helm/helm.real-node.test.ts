// Berth's Helm services on a real node: the charts Berth ships, with images built
// from Debian packages, provisioned through the OSB API; real clients connect with
// the credentials Berth returns (through a port-forward) and run SQL / SET+GET.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { execa } from 'execa';
import pg from 'pg';
import { REPO, spawnBerth, startTestBerth, type TestBerth } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { realNodeCluster, type RealNodeCluster } from '../support/kube/shared.ts';
import { portForward } from '../support/kube/port-forward.ts';
import { brokerKubeconfig, helmAdmin } from './support.ts';
import { releaseName } from '../../src/provisioners/helm/helm-provisioner.ts';
import { idHash } from '../../src/kubernetes/names.ts';
import { bindingSecretName } from '../../src/kubernetes/binding-secrets.ts';

const CATALOG = path.join(REPO, 'test/fixtures/catalog-helm-real-node.yaml');
const PG = { service_id: 'svc-pg', plan_id: 'plan-pg-small' };
const REDIS = { service_id: 'svc-redis', plan_id: 'plan-redis' };
const org = { organization_guid: 'org', space_guid: 'space' };

/** A PersistentVolume on the node's disk, bound in advance to the claim the chart's StatefulSet makes for `instanceId`. */
async function volumeFor(kube: RealNodeCluster, core: CoreV1Api, instanceId: string): Promise<string> {
  const name = `pv-${idHash(instanceId)}`;
  const dir = path.join(kube.baseDir, 'volumes', name);
  mkdirSync(dir, { recursive: true });
  chownSync(dir, 999, 999); // the chart runs PostgreSQL as uid 999
  await core.createPersistentVolume({
    body: {
      metadata: { name },
      spec: {
        capacity: { storage: '64Mi' },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        hostPath: { path: dir, type: 'Directory' },
        claimRef: { namespace: `berth-${idHash(instanceId)}`, name: `data-${releaseName(instanceId)}-0` },
      },
    },
  });
  return name;
}

async function sql<T extends pg.QueryResultRow>(port: number, creds: Record<string, string>, text: string): Promise<T[]> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: creds.username, password: creds.password, database: creds.database });
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end();
  }
}

describe('helm services on a real node', () => {
  let kube: RealNodeCluster;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let db: TestDatabase;
  let t: TestBerth;
  let brokerKc: string;
  const volumes: string[] = [];
  const namespaces: string[] = [];

  before(async () => {
    kube = await realNodeCluster();
    core = kube.kubeConfig().makeApiClient(CoreV1Api);
    apps = kube.kubeConfig().makeApiClient(AppsV1Api);
    db = await createTestDatabase();
    brokerKc = await brokerKubeconfig(kube);
    t = await startTestBerth({
      databaseUrl: db.url,
      catalogPath: CATALOG,
      env: { KUBECONFIG: brokerKc, BERTH_HELM_BIN: kube.helmBin, BERTH_LEASE_SECONDS: '5' },
    });
  });

  after(async () => {
    await t?.stop();
    await db?.drop();
    for (const v of volumes) await core.deletePersistentVolume({ name: v }).catch(() => undefined);
    for (const ns of namespaces) await kube.deleteNamespace(ns).catch(() => undefined);
  });

  test('postgresql: succeeded only with the Pod Ready; SQL with the bound credentials; a plan update rolls the Pod and keeps the data', async () => {
    const id = 'rn-pg-1';
    const release = releaseName(id);
    const namespace = `berth-${idHash(id)}`;
    volumes.push(await volumeFor(kube, core, id));
    const p = await t.client.provision(id, { ...PG, ...org });
    assert.equal(p.status, 202, p.text);
    const done = await t.client.waitForInstance(id, p.body.operation, 240_000);
    assert.equal(done.body.state, 'succeeded', done.text);
    const pod = await core.readNamespacedPod({ name: `${release}-0`, namespace });
    assert.ok(pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'), 'the Pod is Ready when Berth says succeeded');
    assert.equal(pod.spec?.containers[0]?.image, 'localhost/postgresql:15');

    const bindOne = async (bindingId: string): Promise<Record<string, string>> => {
      const b = await t.client.bind(id, bindingId, { ...PG });
      assert.ok(b.status === 201 || b.status === 202, b.text);
      if (b.status === 202) {
        const r = await t.client.waitForBinding(id, bindingId, b.body.operation);
        assert.equal(r.body.state, 'succeeded', r.text);
      }
      return (await t.client.fetchBinding(id, bindingId)).body.credentials as Record<string, string>;
    };
    const creds = await bindOne('rn-pg-b1');
    // The second binding rotates the first (predecessor_binding_id): a login of its own, while the first keeps working
    // until it is unbound below. It also lands as a Service Binding Secret in an app namespace, for the in-cluster client.
    const appNs = await kube.createNamespace('app');
    namespaces.push(appNs);
    const b2 = await t.client.bind(id, 'rn-pg-b2', { ...PG, context: { platform: 'kubernetes', namespace: appNs }, predecessor_binding_id: 'rn-pg-b1' });
    if (b2.status === 202) assert.equal((await t.client.waitForBinding(id, 'rn-pg-b2', b2.body.operation)).body.state, 'succeeded');
    const other = (await t.client.fetchBinding(id, 'rn-pg-b2')).body.credentials as Record<string, string>;
    const svc = await core.readNamespacedService({ name: release, namespace });
    assert.equal(creds.host, svc.spec?.clusterIP, 'no cluster DNS on this node: the credentials carry the ClusterIP');
    // Each binding its own login, not the chart's admin one.
    const admin = await core.readNamespacedSecret({ name: `${release}-credentials`, namespace });
    const adminUser = Buffer.from(admin.data!.username!, 'base64').toString();
    assert.match(creds.username!, /^berth_b_[a-z2-7]{26}$/);
    assert.notEqual(creds.username, adminUser);
    assert.notEqual(creds.username, other.username);
    assert.notEqual(creds.password, Buffer.from(admin.data!.password!, 'base64').toString());
    assert.equal(creds.uri, `postgresql://${creds.username}:${creds.password}@${creds.host}:5432/${creds.database}`);

    let pf = await portForward(kube, namespace, `svc/${release}`, 'postgresql');
    try {
      await sql(pf.port, creds, 'CREATE TABLE orders (id int PRIMARY KEY, item text)');
      await sql(pf.port, creds, "INSERT INTO orders VALUES (1, 'kept across the rolling update')");
      // What one binding creates, the instance's other bindings use.
      assert.deepEqual(await sql(pf.port, other, 'SELECT count(*)::int AS n FROM orders'), [{ n: 1 }]);

      // An app Pod in the cluster, with the binding Secret Berth wrote as its environment, reaches the server
      // at the host and port the credentials carry (through kube-proxy) and reads the same table.
      const script = `const { Client } = require('/app/node_modules/pg');
        const e = process.env;
        const c = new Client({ host: e.host, port: Number(e.port), user: e.username, password: e.password, database: e.database });
        c.connect().then(() => c.query('SELECT item FROM orders')).then((r) => { console.log('in-cluster: ' + r.rows[0].item); return c.end(); })
          .catch((err) => { console.log('in-cluster failed: ' + err.message); process.exit(1); });`;
      // Pods need the namespace's default ServiceAccount, which the controller-manager makes.
      for (let i = 0; i < 100 && !(await core.listNamespacedServiceAccount({ namespace: appNs })).items.length; i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      await core.createNamespacedPod({
        namespace: appNs,
        body: {
          metadata: { name: 'app' },
          spec: {
            restartPolicy: 'Never',
            containers: [{
              name: 'app',
              image: 'localhost/berth:test',
              imagePullPolicy: 'Never',
              command: ['/usr/local/bin/node', '-e', script],
              envFrom: [{ secretRef: { name: bindingSecretName(id, 'rn-pg-b2') } }],
            }],
          },
        },
      });
      let app;
      for (const until = Date.now() + 120_000; Date.now() < until; await new Promise((r) => setTimeout(r, 250))) {
        app = await core.readNamespacedPod({ name: 'app', namespace: appNs });
        if (app.status?.phase === 'Succeeded' || app.status?.phase === 'Failed') break;
      }
      const appLog = await core.readNamespacedPodLog({ name: 'app', namespace: appNs });
      assert.equal(app?.status?.phase, 'Succeeded', appLog);
      assert.match(appLog, /in-cluster: kept across the rolling update/);

      // Unbind revokes: the open session ends, and the login is refused afterwards; other bindings keep working.
      const session = new pg.Client({ host: '127.0.0.1', port: pf.port, user: creds.username, password: creds.password, database: creds.database });
      session.on('error', () => undefined);
      await session.connect();
      const u = await t.client.unbind(id, 'rn-pg-b1', PG.service_id, PG.plan_id);
      assert.ok(u.status === 200 || u.status === 202, u.text);
      if (u.status === 202) assert.equal((await t.client.waitForBinding(id, 'rn-pg-b1', u.body.operation)).body.state, 'succeeded');
      await assert.rejects(session.query('SELECT 1'), /terminat|Connection terminated|not queryable/i);
      await session.end().catch(() => undefined);
      await assert.rejects(sql(pf.port, creds, 'SELECT 1'), /password authentication failed|does not exist/);
      assert.deepEqual(await sql(pf.port, other, 'SELECT count(*)::int AS n FROM orders'), [{ n: 1 }]);
    } finally {
      await pf.close();
    }

    // Plan update: new resources, so the StatefulSet rolls its Pod; the data is on the volume.
    const oldUid = pod.metadata?.uid;
    const up = await t.client.update(id, { service_id: 'svc-pg', plan_id: 'plan-pg-medium', previous_values: { plan_id: 'plan-pg-small' } });
    assert.equal(up.status, 202, up.text);
    const updated = await t.client.waitForInstance(id, up.body.operation, 240_000);
    assert.equal(updated.body.state, 'succeeded', updated.text);
    const rolled = await core.readNamespacedPod({ name: `${release}-0`, namespace });
    assert.notEqual(rolled.metadata?.uid, oldUid, 'a new Pod replaced the old one');
    assert.equal(rolled.spec?.containers[0]?.resources?.limits?.memory, '384Mi');
    assert.ok(rolled.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    const sts = await apps.readNamespacedStatefulSet({ name: release, namespace });
    assert.equal(sts.status?.currentRevision, sts.status?.updateRevision, 'the rollout is complete');

    // What `berth trace` shows (Berth's own endpoint): the release at revision 2, its StatefulSet, the Ready Pod.
    const traced = await t.client.request('GET', `/berth/v1/service_instances/${id}/resources`);
    assert.equal(traced.status, 200, traced.text);
    const [rel] = traced.body.resources;
    assert.equal(rel.kind, 'HelmRelease');
    assert.equal(rel.name, `${namespace}/${release}`);
    assert.equal(rel.state, 'ready');
    assert.match(rel.message, /^helm status deployed, revision 2; chart postgresql-/);
    const set = rel.children.find((c: { kind: string }) => c.kind === 'StatefulSet');
    assert.equal(set.state, 'ready', JSON.stringify(set));
    assert.match(set.message, /^1\/1 ready, 1 updated/);
    const tracedPod = set.children.find((c: { name: string }) => c.name === `${release}-0`);
    assert.equal(tracedPod.state, 'ready', JSON.stringify(tracedPod));
    assert.match(tracedPod.message, /^Ready; phase Running; on node /);
    assert.equal(tracedPod.children[0].kind, 'Container');
    assert.match(tracedPod.children[0].message, /^running since \S+, ready; 0 restart\(s\)/);
    pf = await portForward(kube, namespace, `svc/${release}`, 'postgresql');
    try {
      const rows = await sql<{ item: string }>(pf.port, other, 'SELECT item FROM orders WHERE id = 1');
      assert.deepEqual(rows, [{ item: 'kept across the rolling update' }]);
    } finally {
      await pf.close();
    }

    const u = await t.client.unbind(id, 'rn-pg-b2', PG.service_id, 'plan-pg-medium');
    if (u.status === 202) assert.equal((await t.client.waitForBinding(id, 'rn-pg-b2', u.body.operation)).body.state, 'succeeded');
    const d = await t.client.deprovision(id, PG.service_id, 'plan-pg-medium');
    assert.equal((await t.client.waitForInstance(id, d.body.operation, 240_000)).body.state, 'succeeded');
  });

  test('redis: SET and GET with the bound credentials', async () => {
    const id = 'rn-redis-1';
    const release = releaseName(id);
    const namespace = `berth-${idHash(id)}`;
    const p = await t.client.provision(id, { ...REDIS, ...org });
    assert.equal((await t.client.waitForInstance(id, p.body.operation, 240_000)).body.state, 'succeeded');
    const b = await t.client.bind(id, 'rn-redis-b1', { ...REDIS });
    if (b.status === 202) assert.equal((await t.client.waitForBinding(id, 'rn-redis-b1', b.body.operation)).body.state, 'succeeded');
    const creds = (await t.client.fetchBinding(id, 'rn-redis-b1')).body.credentials as Record<string, string>;
    assert.match(creds.username!, /^berth_b_[a-z2-7]{26}$/, 'an ACL user of its own, not the default user');
    assert.equal(creds.uri, `redis://${creds.username}:${creds.password}@${creds.host}:${creds.port}`);
    const pf = await portForward(kube, namespace, `svc/${release}`, 'redis');
    try {
      // The password goes through the environment, never argv.
      const cli = (args: string[]) =>
        execa('redis-cli', ['-h', '127.0.0.1', '-p', String(pf.port), ...(creds.username ? ['--user', creds.username] : []), ...args], {
          env: { REDISCLI_AUTH: creds.password },
        });
      assert.equal((await cli(['SET', 'greeting', 'hello from the real node'])).stdout, 'OK');
      assert.equal((await cli(['GET', 'greeting'])).stdout, 'hello from the real node');
      // Rotation: the successor is an ACL user of its own; both work until the predecessor is unbound.
      const r = await t.client.bind(id, 'rn-redis-b2', { ...REDIS, predecessor_binding_id: 'rn-redis-b1' });
      if (r.status === 202) assert.equal((await t.client.waitForBinding(id, 'rn-redis-b2', r.body.operation)).body.state, 'succeeded');
      const next = (await t.client.fetchBinding(id, 'rn-redis-b2')).body.credentials as Record<string, string>;
      assert.notEqual(next.username, creds.username);
      const cliAs = (who: Record<string, string>, args: string[]) =>
        execa('redis-cli', ['-h', '127.0.0.1', '-p', String(pf.port), '--user', who.username!, ...args], { env: { REDISCLI_AUTH: who.password } });
      assert.equal((await cliAs(next, ['GET', 'greeting'])).stdout, 'hello from the real node');
      assert.equal((await cli(['GET', 'greeting'])).stdout, 'hello from the real node', 'the predecessor still works');
      const u = await t.client.unbind(id, 'rn-redis-b1', REDIS.service_id, REDIS.plan_id);
      if (u.status === 202) assert.equal((await t.client.waitForBinding(id, 'rn-redis-b1', u.body.operation)).body.state, 'succeeded');
      // The ACL user is gone: the same credentials are refused.
      const refused = await cli(['PING']).catch((e: { stdout?: string; stderr?: string }) => e);
      assert.match(`${refused.stdout ?? ''} ${refused.stderr ?? ''}`, /WRONGPASS|invalid username-password/i);
      assert.equal((await cliAs(next, ['GET', 'greeting'])).stdout, 'hello from the real node', 'the successor outlives its predecessor');
    } finally {
      await pf.close();
    }
    const d = await t.client.deprovision(id, REDIS.service_id, REDIS.plan_id);
    assert.equal((await t.client.waitForInstance(id, d.body.operation, 240_000)).body.state, 'succeeded');
  });

  test('a container that crash-loops fails the provision, naming the container, CrashLoopBackOff and the last exit code', async () => {
    const id = 'rn-crash-1';
    const p = await t.client.provision(id, { service_id: 'svc-pg', plan_id: 'plan-pg-crashing', ...org });
    const done = await t.client.waitForInstance(id, p.body.operation, 240_000);
    assert.equal(done.body.state, 'failed', done.text);
    assert.match(done.body.description, /did not become ready within 60 s/);
    assert.match(done.body.description, /container postgresql: CrashLoopBackOff \(last exit code 1, Error(; \d+ restarts)?\)/);
    // trace's view of it: the Pod failed, its container crash-looping with the last exit code.
    const traced = await t.client.request('GET', `/berth/v1/service_instances/${id}/resources`);
    assert.equal(traced.status, 200, traced.text);
    const crashed = traced.body.resources[0].children[0].children[0];
    assert.equal(crashed.kind, 'Pod');
    assert.equal(crashed.state, 'failed', JSON.stringify(crashed));
    assert.match(crashed.children[0].message, /last run ended with exit code 1 \(Error\)/);
    const d = await t.client.deprovision(id, 'svc-pg', 'plan-pg-crashing');
    assert.equal((await t.client.waitForInstance(id, d.body.operation, 240_000)).body.state, 'succeeded');
  });

  test('an image that is not on the node fails the provision with ErrImageNeverPull', async () => {
    const id = 'rn-noimage-1';
    const p = await t.client.provision(id, { service_id: 'svc-pg', plan_id: 'plan-pg-no-image', ...org });
    const done = await t.client.waitForInstance(id, p.body.operation, 240_000);
    assert.equal(done.body.state, 'failed', done.text);
    assert.match(done.body.description, /container postgresql: ErrImageNeverPull/);
    assert.match(done.body.description, /localhost\/postgresql:no-such-tag/);
    const d = await t.client.deprovision(id, 'svc-pg', 'plan-pg-no-image');
    assert.equal((await t.client.waitForInstance(id, d.body.operation, 240_000)).body.state, 'succeeded');
  });

  test('kill -9 of Berth during an install: after a restart exactly one release, and the operation ends succeeded', async () => {
    const crashDb = await createTestDatabase();
    const env = {
      DATABASE_URL: crashDb.url,
      CATALOG_PATH: CATALOG,
      KUBECONFIG: brokerKc,
      BERTH_HELM_BIN: kube.helmBin,
      BERTH_LEASE_SECONDS: '2',
      BERTH_POLL_INTERVAL_MS: '100',
    };
    const id = 'rn-kill-1';
    const namespace = `berth-${idHash(id)}`;
    volumes.push(await volumeFor(kube, core, id));
    let berth = await spawnBerth(env);
    try {
      const p = await berth.client.provision(id, { ...PG, ...org });
      assert.equal(p.status, 202);
      for (;;) {
        const lo = await berth.client.lastOperation(id, p.body.operation);
        if (/Installing chart/.test(lo.body?.description ?? '')) break;
        assert.equal(lo.body.state, 'in progress', lo.text);
        await new Promise((r) => setTimeout(r, 20));
      }
      berth.child.kill('SIGKILL');
      await berth.exited;

      berth = await spawnBerth(env);
      const done = await berth.client.waitForInstance(id, p.body.operation, 240_000);
      assert.equal(done.body.state, 'succeeded', done.text);
      const releases = JSON.parse(
        await helmAdmin(kube, ['list', '-n', namespace, '-o', 'json', '--deployed', '--failed', '--pending', '--superseded', '--uninstalling']),
      ) as Array<{ name: string; status: string }>;
      assert.deepEqual(releases.map((r) => [r.name, r.status]), [[releaseName(id), 'deployed']]);
      const pod = await core.readNamespacedPod({ name: `${releaseName(id)}-0`, namespace });
      assert.ok(pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));

      const d = await berth.client.deprovision(id, PG.service_id, PG.plan_id);
      assert.equal((await berth.client.waitForInstance(id, d.body.operation, 240_000)).body.state, 'succeeded');
    } finally {
      berth.child.kill('SIGKILL');
      await berth.exited;
      await crashDb.drop();
    }
  });
});
