// Three Berth processes on one database behind a round-robin client.
// - 200 concurrent provisions across 50 instance ids, with identical repeats and
//   conflicting ones: each instance is created exactly once, every answer
//   follows the OSB idempotency rules, and every operation ends.
// - Per-instance serialisation across replicas: while one replica's worker
//   creates an instance, mutating requests sent to the others get 422
//   ConcurrencyError, except a delete, which halts the create and deletes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnBerth, TEST_CREDENTIALS, type BerthProcess } from '../support/berth.ts';
import { OsbClient } from '../support/osb-client.ts';
import { CONCURRENCY_DESCRIPTION } from '../../src/osb/errors.ts';
import {
  bindBody,
  checkInvariants,
  createDatabases,
  liveResources,
  provisionBody,
  query,
  RECORDING_PLANS,
  RECORDING_SERVICE_ID,
  recordingEnv,
  RoutedClient,
  stepRuns,
  waitForOperation,
  waitForStep,
  type Databases,
} from './helpers.ts';

const REPLICAS = 3;
const INSTANCES = 50;
const REQUESTS = 200;

describe('durability: several replicas on one database', () => {
  let dbs: Databases;
  const replicas: BerthProcess[] = [];
  let route: RoutedClient;

  before(async () => {
    dbs = await createDatabases();
    // No replica dies in this suite, so the lease only has to outlast a replica starved of CPU: with the 2 s lease of
    // the other durability suites, a 2-core machine under load (CI beside other runs) let a lease lapse while its
    // holder was still running steps, and the overlap checks below failed for that reason alone. Lease expiry itself
    // is proven by deadline-lease, crash-points and chaos.
    const env = recordingEnv(dbs.berth.url, dbs.recording.url, { LOG_LEVEL: 'warn', BERTH_LEASE_SECONDS: '15' });
    // Started together, as a Deployment would: they race to migrate the empty database.
    replicas.push(...(await Promise.all(Array.from({ length: REPLICAS }, () => spawnBerth(env)))));
    route = new RoutedClient(replicas.map((r) => r.url));
  });

  after(async () => {
    for (const r of replicas) {
      if (r.child.exitCode === null && r.child.signalCode === null) process.kill(r.pid, 'SIGTERM');
    }
    const codes = await Promise.all(replicas.map((r) => r.exited));
    await dbs?.drop();
    assert.deepEqual(codes, replicas.map(() => 0), 'every replica shut down cleanly');
  });

  it(`creates each of ${INSTANCES} instances exactly once from ${REQUESTS} concurrent provisions`, async (t) => {
    // Per instance: identical requests (parameters A) and one conflicting request (parameters B), shuffled.
    const requests: Array<{ id: string; variant: 'A' | 'B' }> = [];
    for (let i = 0; i < REQUESTS; i++) {
      const id = `replica-${i % INSTANCES}`;
      requests.push({ id, variant: Math.floor(i / INSTANCES) === 3 ? 'B' : 'A' });
    }
    for (let i = requests.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [requests[i], requests[j]] = [requests[j]!, requests[i]!];
    }
    const params = { A: { size: 1, step_delay_ms: 40 }, B: { size: 2, step_delay_ms: 40 } };
    const answers = await Promise.all(
      requests.map(async (r) => ({ ...r, reply: await route.client().provision(r.id, provisionBody('async', params[r.variant])) })),
    );

    const byId = new Map<string, typeof answers>();
    for (const a of answers) byId.set(a.id, [...(byId.get(a.id) ?? []), a]);
    const operations = new Map<string, string>();
    for (const [id, list] of byId) {
      const statuses = list.map((a) => `${a.variant}:${a.reply.status}`).join(' ');
      for (const a of list) assert.ok([200, 202, 409].includes(a.reply.status), `${id}: ${a.reply.status} ${a.reply.text}`);
      const winners = new Set(list.filter((a) => a.reply.status !== 409).map((a) => a.variant));
      assert.equal(winners.size, 1, `${id}: one set of attributes won (${statuses})`);
      const [winner] = winners;
      for (const a of list) {
        if (a.variant === winner) assert.notEqual(a.reply.status, 409, `${id}: a repeat of the winning request is not a conflict (${statuses})`);
        else {
          assert.equal(a.reply.status, 409, `${id}: a request with other attributes is a conflict (${statuses})`);
          assert.equal(a.reply.body.error, 'Conflict');
        }
      }
      const ops = new Set(list.filter((a) => a.reply.status === 202).map((a) => a.reply.body.operation as string));
      assert.equal(ops.size, 1, `${id}: every 202 names the same operation (${statuses})`);
      operations.set(id, [...ops][0]!);
      for (const a of list) if (a.reply.status === 200) assert.deepEqual(Object.keys(a.reply.body).sort(), ['dashboard_url'], `${id}: 200 after it was made`);
    }
    assert.equal(operations.size, INSTANCES);

    for (const [id, operation] of operations) {
      const end = await waitForOperation(() => route.client(), { instanceId: id, operation });
      assert.deepEqual(end, { state: 'succeeded', description: 'Provisioned' }, id);
    }

    const perInstance = await query<{ instance_id: string; n: number }>(
      dbs.berth.url,
      `SELECT instance_id, count(*)::int AS n FROM operations WHERE kind = 'provision' GROUP BY 1`,
    );
    assert.equal(perInstance.length, INSTANCES);
    assert.deepEqual(perInstance.filter((r) => r.n !== 1), [], 'one provision operation per instance');
    const created = await query<{ instance_id: string; n: number }>(
      dbs.recording.url,
      `SELECT instance_id, count(*)::int AS n FROM step_runs WHERE outcome = 'created' AND instance_id LIKE 'replica-%' GROUP BY 1`,
    );
    assert.equal(created.length, INSTANCES);
    assert.deepEqual(created.filter((r) => r.n !== 2), [], 'each instance had its volume and server created once');
    const pids = await query<{ pid: number; n: number }>(dbs.recording.url, `SELECT pid, count(DISTINCT operation_id)::int AS n FROM step_runs GROUP BY 1 ORDER BY 1`);
    t.diagnostic(`operations per replica: ${pids.map((p) => p.n).join(', ')}`);
    await checkInvariants(dbs.berth.url, dbs.recording.url);
  });

  it('serialises mutating requests on one instance across replicas; a delete halts a create', async () => {
    const [a, b, c] = replicas.map((r) => new OsbClient(r.url, TEST_CREDENTIALS)) as [OsbClient, OsbClient, OsbClient];
    const id = 'replica-halt';
    const p = await a.provision(id, provisionBody('slow'));
    assert.equal(p.status, 202, p.text);
    const first = await waitForStep(dbs.recording.url, { instanceId: id, step: 'create-volume' });

    const upd = await b.update(id, { service_id: RECORDING_SERVICE_ID, parameters: { size: 3 } });
    assert.deepEqual([upd.status, upd.body], [422, { error: 'ConcurrencyError', description: CONCURRENCY_DESCRIPTION }]);
    // A bind that cannot be polled is refused; one that can is queued behind the create (standing-failures.test.ts).
    const bind = await c.bind(id, 'b1', bindBody('slow'), false);
    assert.equal(bind.status, 422, bind.text);
    const repeat = await c.provision(id, provisionBody('slow'));
    assert.deepEqual([repeat.status, repeat.body.operation], [202, p.body.operation]);

    const d = await b.deprovision(id, RECORDING_SERVICE_ID, RECORDING_PLANS.slow);
    assert.equal(d.status, 202, d.text);
    const again = await c.deprovision(id, RECORDING_SERVICE_ID, RECORDING_PLANS.slow);
    assert.deepEqual([again.status, again.body.operation], [202, d.body.operation]);
    const provision = await waitForOperation(() => route.client(), { instanceId: id, operation: p.body.operation });
    assert.deepEqual(provision, { state: 'failed', description: 'Provisioning was halted because a deprovision was requested.' });
    const deprovision = await waitForOperation(() => route.client(), { instanceId: id, operation: d.body.operation });
    assert.deepEqual(deprovision, { state: 'succeeded', description: 'Deprovisioned' });

    const runs = await stepRuns(dbs.recording.url, id);
    const createRuns = runs.filter((r) => r.operation_id === p.body.operation);
    assert.equal(createRuns[0]?.pid, first.pid);
    assert.equal(createRuns.at(-1)?.outcome, 'aborted', `the create stopped where it was: ${JSON.stringify(createRuns)}`);
    assert.ok(!createRuns.some((r) => r.step === 'create-server' && r.outcome === 'created'), 'the halted create did not go on to make the server');
    const firstDelete = runs.findIndex((r) => r.operation_id === d.body.operation);
    assert.ok(firstDelete > runs.findLastIndex((r) => r.operation_id === p.body.operation), 'the delete ran only after the create had stopped');
    assert.deepEqual(await liveResources(dbs.recording.url, id), []);
    await checkInvariants(dbs.berth.url, dbs.recording.url);
  });
});
