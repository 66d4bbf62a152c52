// Issue 16 point 5: SIGTERM at any moment (a helm command running or not, a
// second SIGTERM during the shutdown) takes the graceful path: the operation's
// lease is handed back and Berth exits 0. A fake `helm` (BERTH_HELM_BIN) that
// blocks stands in for a slow install, so no cluster is needed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { REPO, spawnBerth, type BerthProcess } from '../support/berth.ts';
import { startKubeApiStandIn, type KubeApiStandIn } from '../support/kube-api-stand-in.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

const SERVICE = 'svc-helm-fake';
const PLAN = 'plan-helm-fake';

function writeFixtures(dir: string): { catalog: string; helm: string } {
  const catalog = join(dir, 'catalog.yaml');
  writeFileSync(
    catalog,
    `services:
  - id: ${SERVICE}
    name: helm-fake
    description: a helm plan whose helm never finishes
    bindable: false
    plans:
      - id: ${PLAN}
        name: slow
        description: slow
        provisioner:
          kind: helm
          chart: ${join(REPO, 'test/fixtures/charts/tiny')}
          namespace: { strategy: fixed, name: berth-fake }
`,
  );
  // Berth runs helm with HOME set to its private helm home: the marker lands there.
  const helm = join(dir, 'helm');
  writeFileSync(helm, '#!/bin/sh\ncat >/dev/null\necho "$$" > "$HOME/fake-helm-started"\nexec sleep 600\n');
  chmodSync(helm, 0o755);
  return { catalog, helm };
}

async function operationRow(url: string, id: string) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query('SELECT finished_at, lease_owner, lease_expires_at FROM operations WHERE id = $1', [id]);
    return r.rows[0];
  } finally {
    await c.end();
  }
}

describe('SIGTERM takes the graceful path at any moment', () => {
  let db: TestDatabase;
  let dir: string;
  // Before helm runs in a namespace Berth asks whether it may manage releases there.
  let kubeApi: KubeApiStandIn;
  const processes: BerthProcess[] = [];

  before(async () => {
    db = await createTestDatabase('berth_sig');
    dir = mkdtempSync(join(tmpdir(), 'berth-sigterm-'));
    kubeApi = await startKubeApiStandIn(join(dir, 'kubeconfig'));
  });

  after(async () => {
    for (const p of processes) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        process.kill(p.pid, 'SIGKILL');
        await p.exited;
      }
    }
    await db?.drop();
    await kubeApi?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a SIGTERM while helm runs, and a second one during the shutdown, hand the lease back and exit 0', async () => {
    const f = writeFixtures(dir);
    const dataDir = join(dir, 'data');
    const berth = await spawnBerth({
      DATABASE_URL: db.url,
      CATALOG_PATH: f.catalog,
      KUBECONFIG: kubeApi.kubeconfigPath,
      BERTH_HELM_BIN: f.helm,
      BERTH_DATA_DIR: dataDir,
      BERTH_SHUTDOWN_GRACE_SECONDS: '2',
      // A long lease: the operation must be free at once because it was handed back, not because its lease ran out.
      BERTH_LEASE_SECONDS: '600',
      BERTH_POLL_INTERVAL_MS: '50',
    });
    processes.push(berth);
    const p = await berth.client.provision('sigterm-helm', { service_id: SERVICE, plan_id: PLAN, organization_guid: 'org', space_guid: 'space' });
    assert.equal(p.status, 202, p.text);
    const marker = join(dataDir, 'helm', 'fake-helm-started');
    for (let i = 0; !existsSync(marker); i++) {
      assert.ok(i < 300, `helm never started:\n${berth.output().slice(-3000)}`);
      await sleep(100);
    }

    process.kill(berth.pid, 'SIGTERM');
    await sleep(300);
    if (berth.child.exitCode === null && berth.child.signalCode === null) process.kill(berth.pid, 'SIGTERM');
    assert.equal(await berth.exited, 0, berth.output().slice(-3000));
    assert.match(berth.output(), /operation handed back at shutdown/);
    assert.deepEqual(await operationRow(db.url, p.body.operation), { finished_at: null, lease_owner: null, lease_expires_at: null });
  });
});
