// Deterministic crashes: Berth kills itself with SIGKILL at a named point
// (BERTH_FAILPOINTS, src/failpoints.ts) during a provision, then a fresh
// process (without the failpoint) takes over. Each point is a moment the
// random chaos test may or may not hit:
// - service.after-commit: the request committed but was never answered; the
//   platform's retry gets the same operation.
// - engine.after-claim: claimed, nothing done yet.
// - recording.after-create-volume: the provisioner created a resource but did
//   not get to record that; the re-run must find it, not create another.
// - engine.before-outcome: all work done, outcome not recorded; the re-run
//   must find everything in place.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnBerth, type BerthProcess } from '../support/berth.ts';
import {
  checkInvariants,
  createDatabases,
  liveResources,
  provisionBody,
  query,
  recordingEnv,
  stepRuns,
  untilAnswered,
  waitForOperation,
  type Databases,
} from './helpers.ts';

describe('durability: crashes at named points', () => {
  let dbs: Databases;
  const processes: BerthProcess[] = [];
  const spawn = async (failpoints?: string) => {
    const p = await spawnBerth(recordingEnv(dbs.berth.url, dbs.recording.url, failpoints ? { BERTH_FAILPOINTS: failpoints } : {}));
    processes.push(p);
    return p;
  };

  before(async () => {
    dbs = await createDatabases();
  });

  after(async () => {
    for (const p of processes) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        process.kill(p.pid, 'SIGKILL');
        await p.exited;
      }
    }
    await dbs?.drop();
  });

  /** Provisions `id` on a process armed with `point`, which dies there; a fresh process completes the work. */
  const crashAt = async (point: string, id: string) => {
    const doomed = await spawn(point);
    const body = provisionBody('async', { step_delay_ms: 20 });
    let first: number | undefined;
    try {
      first = (await doomed.client.provision(id, body)).status;
    } catch {
      first = undefined; // the process died before answering
    }
    assert.equal(await doomed.exited, 'SIGKILL', `the process died at ${point}`);
    const next = await spawn();
    const retry = await untilAnswered(() => next.client.provision(id, body));
    const ops = await query<{ id: string }>(dbs.berth.url, `SELECT id FROM operations WHERE instance_id = $1`, [id]);
    assert.equal(ops.length, 1, 'one provision operation, however often it was asked for');
    assert.ok(retry.status === 202 || retry.status === 200, `${retry.status} ${retry.text}`);
    if (retry.status === 202) assert.equal(retry.body.operation, ops[0]!.id, 'the retry names the operation the first request queued');
    const end = await waitForOperation(() => next.client, { instanceId: id, operation: ops[0]!.id });
    assert.deepEqual(end, { state: 'succeeded', description: 'Provisioned' });
    assert.deepEqual(await liveResources(dbs.recording.url, id), ['server', 'volume']);
    const runs = await stepRuns(dbs.recording.url, id);
    process.kill(next.pid, 'SIGTERM');
    assert.equal(await next.exited, 0);
    return { doomed, next, first, runs: runs.map((r) => [r.pid === doomed.pid ? 'doomed' : r.pid === next.pid ? 'next' : r.pid, r.step, r.outcome]) };
  };

  it('service.after-commit: the unanswered request is retried and gets the same operation', async () => {
    const { first, runs } = await crashAt('service.after-commit', 'crash-after-commit');
    assert.equal(first, undefined, 'the first request was never answered');
    assert.deepEqual(runs, [
      ['next', 'create-volume', 'created'],
      ['next', 'create-server', 'created'],
    ]);
  });

  it('engine.after-claim: the claimed operation is taken over when its lease expires', async () => {
    const { first, runs } = await crashAt('engine.after-claim', 'crash-after-claim');
    assert.equal(first, 202);
    assert.deepEqual(runs, [
      ['next', 'create-volume', 'created'],
      ['next', 'create-server', 'created'],
    ]);
  });

  it('recording.after-create-volume: the re-run finds the volume instead of creating another', async () => {
    const { runs } = await crashAt('recording.after-create-volume', 'crash-after-create');
    assert.deepEqual(runs, [
      ['doomed', 'create-volume', 'started'],
      ['next', 'create-volume', 'exists'],
      ['next', 'create-server', 'created'],
    ]);
  });

  it('engine.before-outcome: the work was done; the re-run finds it in place and records the outcome once', async () => {
    const { runs } = await crashAt('engine.before-outcome', 'crash-before-outcome');
    assert.deepEqual(runs, [
      ['doomed', 'create-volume', 'created'],
      ['doomed', 'create-server', 'created'],
      ['next', 'create-volume', 'exists'],
      ['next', 'create-server', 'exists'],
    ]);
    const audit = await query(dbs.berth.url, `SELECT outcome FROM audit_events WHERE instance_id = 'crash-before-outcome' ORDER BY id`);
    assert.deepEqual(audit.map((a) => a.outcome), ['accepted', 'succeeded']);
    await checkInvariants(dbs.berth.url, dbs.recording.url);
  });
});
