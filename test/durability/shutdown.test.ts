// Graceful shutdown. On SIGTERM Berth stops claiming, lets in-flight
// operations finish within its grace period or hands them back (lease
// released) for the next process, closes its HTTP server and exits 0.
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
  waitForOperation,
  waitForStep,
  type Databases,
} from './helpers.ts';

describe('durability: graceful shutdown on SIGTERM', () => {
  let dbs: Databases;
  const processes: BerthProcess[] = [];
  const spawn = async (graceSeconds: number) => {
    // Long leases: a takeover here must come from the lease being handed back, not from it expiring.
    const p = await spawnBerth(
      recordingEnv(dbs.berth.url, dbs.recording.url, { LOG_LEVEL: 'info', BERTH_SHUTDOWN_GRACE_SECONDS: String(graceSeconds), BERTH_LEASE_SECONDS: '600' }),
    );
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

  it('hands a long operation back at the end of the grace period, exits 0, and the next process completes it', async () => {
    const first = await spawn(1);
    const id = 'sigterm-long';
    // Steps of five seconds: longer than the one-second grace period.
    const p = await first.client.provision(id, provisionBody('slow', { step_delay_ms: 5000 }));
    assert.equal(p.status, 202, p.text);
    await waitForStep(dbs.recording.url, { instanceId: id, step: 'create-volume' });

    process.kill(first.pid, 'SIGTERM');
    assert.equal(await first.exited, 0, first.output().slice(-3000));
    assert.match(first.output(), /operation handed back at shutdown/);

    const [op] = await query(dbs.berth.url, `SELECT finished_at, lease_owner, lease_expires_at FROM operations WHERE id = $1`, [p.body.operation]);
    assert.deepEqual(op, { finished_at: null, lease_owner: null, lease_expires_at: null }, 'the unfinished operation was handed back, its lease released');
    const firstRuns = await stepRuns(dbs.recording.url, id);
    assert.ok(firstRuns.every((r) => r.pid === first.pid));
    assert.equal(firstRuns.at(-1)?.outcome, 'aborted', `the first process stopped its step instead of waiting for it: ${JSON.stringify(firstRuns)}`);

    // The next process takes the operation over at once (the lease was handed back, not left to expire) and completes it.
    const second = await spawn(30);
    const end = await waitForOperation(() => second.client, { instanceId: id, operation: p.body.operation });
    assert.deepEqual(end, { state: 'succeeded', description: 'Provisioned' });
    const runs = await stepRuns(dbs.recording.url, id);
    const secondRuns = runs.slice(firstRuns.length);
    assert.ok(secondRuns.length > 0 && secondRuns.every((r) => r.pid === second.pid), 'the second process did the rest');
    assert.deepEqual(await liveResources(dbs.recording.url, id), ['server', 'volume']);
    await checkInvariants(dbs.berth.url, dbs.recording.url);
    assert.equal(second.child.exitCode, null, second.output().slice(-3000));
    process.kill(second.pid, 'SIGTERM');
    assert.equal(await second.exited, 0);
  });

  it('finishes an operation that fits in the grace period before exiting 0', async () => {
    const berth = await spawn(60);
    const id = 'sigterm-short';
    const p = await berth.client.provision(id, provisionBody('async', { step_delay_ms: 800 }));
    assert.equal(p.status, 202, p.text);
    await waitForStep(dbs.recording.url, { instanceId: id, step: 'create-volume' });

    process.kill(berth.pid, 'SIGTERM');
    assert.equal(await berth.exited, 0, berth.output().slice(-3000));
    const [op] = await query(dbs.berth.url, `SELECT state, description, lease_owner FROM operations WHERE id = $1`, [p.body.operation]);
    assert.deepEqual(op, { state: 'succeeded', description: 'Provisioned', lease_owner: null }, 'the operation was completed before the process exited');
    const runs = await stepRuns(dbs.recording.url, id);
    assert.deepEqual(
      runs.map((r) => [r.pid, r.step, r.outcome]),
      [
        [berth.pid, 'create-volume', 'created'],
        [berth.pid, 'create-server', 'created'],
      ],
    );
    await checkInvariants(dbs.berth.url, dbs.recording.url);
  });
});
