// A maintenance upgrade of a Helm plan on a real control plane: the catalog's plan moves from chart
// version 1.0.0 to 2.0.0 (with new values) along with its maintenance_info, Berth is restarted on it,
// and a platform's update carrying the new maintenance_info performs `helm upgrade`, seen with `helm get`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { REPO, startTestBerth, type TestBerth } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { sharedCluster, type SharedCluster } from '../support/kube/shared.ts';
import { brokerKubeconfig, helmAdmin } from './support.ts';
import { releaseName } from '../../src/provisioners/helm/helm-provisioner.ts';
import { idHash } from '../../src/kubernetes/names.ts';

const SERVICE = 'svc-upgradable';
const PLAN = 'plan-upgradable';
const CHARTS = join(REPO, 'test/fixtures/charts/upgradable');

function catalogFile(dir: string, version: string, chart: string, values: Record<string, unknown>): string {
  const file = join(dir, `catalog-${version}.yaml`);
  writeFileSync(
    file,
    JSON.stringify({
      services: [
        {
          id: SERVICE,
          name: 'upgradable',
          description: 'A chart with versions.',
          bindable: false,
          instances_retrievable: true,
          plan_updateable: true,
          plans: [
            {
              id: PLAN,
              name: 'standard',
              description: 'standard',
              maximum_polling_duration: 300,
              maintenance_info: { version },
              provisioner: { kind: 'helm', chart: join(CHARTS, chart), values, timeout: 120 },
            },
          ],
        },
      ],
    }),
  );
  return file;
}

describe('maintenance upgrades of a Helm plan', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-helm-upgrade-'));
  const V1 = catalogFile(dir, '1.0.0', '1.0.0', { greeting: 'hello' });
  const V2 = catalogFile(dir, '2.0.0', '2.0.0', { greeting: 'hello', feature: 'enabled' });
  const V3 = catalogFile(dir, '3.0.0', 'broken', { greeting: 'hello' });
  let kube: SharedCluster;
  let core: CoreV1Api;
  let db: TestDatabase;
  let t: TestBerth | undefined;
  const ids = ['upgrade-a', 'upgrade-b'];

  async function serve(catalogPath: string): Promise<TestBerth> {
    await t?.stop();
    t = await startTestBerth({
      databaseUrl: db.url,
      catalogPath,
      env: { KUBECONFIG: await brokerKubeconfig(kube), BERTH_HELM_BIN: kube.helmBin, BERTH_LEASE_SECONDS: '5' },
    });
    return t;
  }

  const where = (id: string) => ({ release: releaseName(id), namespace: `berth-${idHash(id)}` });
  const chartOf = async (id: string) => {
    const { release, namespace } = where(id);
    return JSON.parse(await helmAdmin(kube, ['get', 'metadata', release, '--namespace', namespace, '--output', 'json'])) as { version: string; revision: number };
  };
  const settingsOf = async (id: string) => {
    const { release, namespace } = where(id);
    const data = (await core.readNamespacedSecret({ name: `${release}-settings`, namespace })).data ?? {};
    return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
  };
  const versionOf = async (id: string) => (await t!.client.request('GET', `/v2/service_instances/${id}`)).body.maintenance_info?.version;
  async function update(id: string, body: object) {
    const first = await t!.client.update(id, { service_id: SERVICE, ...body });
    if (first.status !== 202) return { first, last: first };
    return { first, last: await t!.client.waitForInstance(id, first.body.operation, 240_000) };
  }

  before(async () => {
    kube = await sharedCluster();
    core = kube.kubeConfig().makeApiClient(CoreV1Api);
    db = await createTestDatabase();
    await serve(V1);
    for (const id of ids) {
      const p = await t!.client.provision(id, { service_id: SERVICE, plan_id: PLAN, organization_guid: 'org', space_guid: 'space' });
      assert.equal(p.status, 202, p.text);
      const done = await t!.client.waitForInstance(id, p.body.operation, 240_000);
      assert.equal(done.body.state, 'succeeded', done.text);
    }
  });

  after(async () => {
    for (const id of ids) {
      const d = await t?.client.deprovision(id, SERVICE, PLAN).catch(() => undefined);
      if (d?.status === 202) await t!.client.waitForInstance(id, d.body.operation, 240_000).catch(() => undefined);
    }
    try {
      await t?.stop();
    } finally {
      await db?.drop();
    }
  });

  test('chart 1.0.0 → 2.0.0: only the update with the new maintenance_info runs helm upgrade; helm get shows the new chart and values', async () => {
    assert.equal((await chartOf('upgrade-a')).version, '1.0.0');
    await serve(V2);
    assert.equal(await versionOf('upgrade-a'), '1.0.0');

    // An update without maintenance_info is not an upgrade: its helm upgrade keeps the chart and values the instance has.
    const plain = await update('upgrade-a', { parameters: { note: 'a parameter change' } });
    assert.equal(plain.last.body.state, 'succeeded', plain.last.text);
    assert.deepEqual(await chartOf('upgrade-a').then((m) => [m.version, m.revision]), ['1.0.0', 2]);
    assert.deepEqual(await settingsOf('upgrade-a'), { chart: '1.0.0', greeting: 'hello' });
    assert.equal(await versionOf('upgrade-a'), '1.0.0');

    const r = await update('upgrade-a', { maintenance_info: { version: '2.0.0' } });
    assert.equal(r.first.status, 202, r.first.text);
    assert.equal(r.last.body.state, 'succeeded', r.last.text);
    const after = await chartOf('upgrade-a');
    assert.equal(after.version, '2.0.0');
    assert.equal(after.revision, 3);
    const { release, namespace } = where('upgrade-a');
    const values = JSON.parse(await helmAdmin(kube, ['get', 'values', release, '--namespace', namespace, '--output', 'json']));
    assert.equal(values.feature, 'enabled');
    assert.deepEqual(await settingsOf('upgrade-a'), { chart: '2.0.0', greeting: 'hello', feature: 'enabled' });
    assert.equal(await versionOf('upgrade-a'), '2.0.0');
    // The other instance waits for its own upgrade.
    assert.equal((await chartOf('upgrade-b')).version, '1.0.0');
    assert.equal(await versionOf('upgrade-b'), '1.0.0');
  });

  test('a chart that does not render: the upgrade fails with helm\'s reason, instance_usable, the release untouched, the version kept', async () => {
    await serve(V3);
    const r = await update('upgrade-b', { maintenance_info: { version: '3.0.0' } });
    assert.equal(r.first.status, 202, r.first.text);
    assert.equal(r.last.body.state, 'failed', r.last.text);
    assert.equal(r.last.body.instance_usable, true);
    assert.match(r.last.body.description, /upgradable 3\.0\.0 needs a value \.Values\.required/);
    assert.match(r.last.body.description, /was not changed: it still runs its previous revision/);
    const chart = await chartOf('upgrade-b');
    assert.equal(chart.version, '1.0.0');
    assert.equal(chart.revision, 1);
    assert.deepEqual(await settingsOf('upgrade-b'), { chart: '1.0.0', greeting: 'hello' });
    assert.equal(await versionOf('upgrade-b'), '1.0.0');
  });
});
