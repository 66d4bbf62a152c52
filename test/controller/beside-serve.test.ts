// The small setup: `berth serve` with BERTH_CONTROLLER=true runs the controller in
// the same process, driving that Berth (its own URL and credentials).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnBerth, type BerthProcess } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { sharedCluster, type SharedCluster } from '../support/kube/shared.ts';
import { CONTROLLER_CATALOG, CONTROLLER_NAMESPACE, GATED_MODULE, SHARD_LABEL, installController, instance, kubectl, waitFor } from './support.ts';
import { randomBytes } from 'node:crypto';
import YAML from 'yaml';

describe('controller beside serve, in one process', () => {
  let kube: SharedCluster;
  let db: TestDatabase;
  let berth: BerthProcess;
  let ns: string;
  const shard = randomBytes(4).toString('hex');
  before(async () => {
    kube = await sharedCluster();
    const kubeconfig = await installController(kube);
    db = await createTestDatabase();
    berth = await spawnBerth({
      DATABASE_URL: db.url,
      CATALOG_PATH: CONTROLLER_CATALOG,
      BERTH_PROVISIONER_MODULES: GATED_MODULE,
      KUBECONFIG: kubeconfig,
      BERTH_CONTROLLER: 'true',
      BERTH_CONTROLLER_NAMESPACE: CONTROLLER_NAMESPACE,
      BERTH_CONTROLLER_LEASE_NAME: `berth-controller-${shard}`,
      BERTH_CONTROLLER_SELECTOR: `${SHARD_LABEL}=${shard}`,
      LOG_LEVEL: 'warn',
    });
    ns = await kube.createNamespace('ctl-one');
  });
  after(async () => {
    if (ns) await kube.deleteNamespace(ns).catch(() => undefined);
    try {
      berth?.child.kill('SIGTERM');
      if (berth) assert.equal(await berth.exited, 0, berth.output());
    } finally {
      await db?.drop();
    }
  });

  test('an instance reaches Ready through the controller inside berth serve', async () => {
    const si = instance('one', { offering: 'gated', plan: 'async' });
    const labelled = { ...si, metadata: { ...si.metadata, labels: { [SHARD_LABEL]: shard } } };
    await kubectl(kube, ['apply', '-n', ns, '-f', '-'], YAML.stringify(labelled));
    await waitFor(kube, ns, 'serviceinstance/one');
    await kubectl(kube, ['delete', '-n', ns, 'serviceinstance/one', '--timeout=60s']);
  });
});
