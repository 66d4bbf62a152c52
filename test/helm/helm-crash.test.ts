// kill -9 of Berth in the middle of a helm install: after a restart the
// operation completes, with exactly one release.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnBerth } from '../support/berth.ts';
import { createTestDatabase } from '../support/postgres.ts';
import { sharedCluster } from '../support/kube/shared.ts';
import { brokerKubeconfig, helmAdmin, HELM_CATALOG } from './support.ts';
import { idHash } from '../../src/kubernetes/names.ts';

test('kill -9 during helm install, restart: the operation completes with one release', async () => {
  const kube = await sharedCluster();
  const db = await createTestDatabase();
  const env = {
    DATABASE_URL: db.url,
    CATALOG_PATH: HELM_CATALOG,
    KUBECONFIG: await brokerKubeconfig(kube),
    BERTH_HELM_BIN: kube.helmBin,
    BERTH_LEASE_SECONDS: '2',
    BERTH_POLL_INTERVAL_MS: '100',
  };
  const id = 'pg-crash-1';
  const namespace = `berth-${idHash(id)}`;
  let berth = await spawnBerth(env);
  try {
    const p = await berth.client.provision(id, { service_id: 'svc-pg', plan_id: 'plan-pg-small', organization_guid: 'o', space_guid: 's' });
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
    const releases = JSON.parse(await helmAdmin(kube, ['list', '-n', namespace, '-o', 'json', '--deployed', '--failed', '--pending'])) as Array<{ name: string; status: string }>;
    // A golden value: the release name must not change between Berth versions.
    assert.deepEqual(releases.map((r) => [r.name, r.status]), [['b-emq7zcy4huf2gs2happu', 'deployed']]);

    const d = await berth.client.deprovision(id, 'svc-pg', 'plan-pg-small');
    assert.equal((await berth.client.waitForInstance(id, d.body.operation, 240_000)).body.state, 'succeeded');
  } finally {
    berth.child.kill('SIGKILL');
    await berth.exited;
    await db.drop();
  }
});
