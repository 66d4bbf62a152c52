// Killing Berth (SIGKILL) while it has requests in flight loses nothing it
// acknowledged: every provision answered 201/202 exists after a restart and
// its operation ends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnBerth } from '../support/berth.ts';
import { createTestDatabase } from '../support/postgres.ts';
import { CATALOG, MODULES } from './suite.ts';

test('kill -9 during a burst of provisions loses no acknowledged instance', async () => {
  const db = await createTestDatabase();
  const env = { DATABASE_URL: db.url, CATALOG_PATH: CATALOG, BERTH_PROVISIONER_MODULES: MODULES, BERTH_LEASE_SECONDS: '2', BERTH_POLL_INTERVAL_MS: '50' };
  let berth = await spawnBerth(env);
  try {
    const ids = Array.from({ length: 80 }, (_, i) => `k-${i}`);
    const answers = new Map<string, number>();
    const inflight = ids.map(async (id, i) => {
      await new Promise((r) => setTimeout(r, i * 10));
      const body = i % 2
        ? { service_id: 'svc-gated', plan_id: 'plan-fast', organization_guid: 'o', space_guid: 's' }
        : { service_id: 'svc-ups', plan_id: 'plan-ups', organization_guid: 'o', space_guid: 's', parameters: { credentials: { n: i } } };
      try {
        const r = await berth.client.provision(id, body, i % 2 === 1);
        answers.set(id, r.status);
      } catch {
        answers.set(id, 0); // the connection died with the process
      }
    });
    // Kill once some requests have been answered, while later ones are still arriving.
    while (answers.size < 20) await new Promise((r) => setTimeout(r, 2));
    berth.child.kill('SIGKILL');
    assert.equal(await berth.exited, 'SIGKILL');
    await Promise.all(inflight);
    const acknowledged = [...answers].filter(([, s]) => s === 201 || s === 202).map(([id]) => id);
    assert.ok(acknowledged.length >= 20, 'some requests were answered before the kill');
    assert.ok([...answers.values()].includes(0) || answers.size < ids.length || acknowledged.length < ids.length, 'the kill landed while requests were in flight');
    assert.ok([...answers.values()].every((s) => [0, 201, 202].includes(s)), `only 201/202 or a dropped connection: ${[...answers.values()]}`);

    berth = await spawnBerth(env);
    for (const id of acknowledged) {
      const done = await berth.client.waitForInstance(id, undefined, 60_000);
      assert.equal(done.body.state, 'succeeded', `${id}: ${done.text}`);
      assert.equal((await berth.client.request('GET', `/v2/service_instances/${id}`)).status, 200, id);
    }
    // Requests cut off mid-flight either never happened or finish too.
    for (const [id, status] of answers) {
      if (status !== 0) continue;
      const lo = await berth.client.lastOperation(id);
      if (lo.status === 404) continue;
      const done = await berth.client.waitForInstance(id, undefined, 60_000);
      assert.notEqual(done.body.state, 'in progress', id);
    }
  } finally {
    berth.child.kill('SIGKILL');
    await berth.exited;
    await db.drop();
  }
});
