// last_operation after the worker running an operation stopped: killed (its
// lease not yet expired, and after it expired) or shut down (lease handed
// back). Until another worker resumes it, the operation must not go on
// reporting the dead worker's step as if it were still being done.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnBerth, type BerthProcess } from '../support/berth.ts';
import {
  bindBody,
  checkInvariants,
  createDatabases,
  provisionBody,
  query,
  recordingEnv,
  sleep,
  waitForOperation,
  waitForStep,
  type Databases,
} from './helpers.ts';

const WAITING = /^Waiting to be resumed \(its worker stopped\); the last step was: Running step create-volume$/;

describe('durability: last_operation while an operation waits to be resumed', () => {
  let dbs: Databases;
  let reader: BerthProcess;
  const started: BerthProcess[] = [];

  const spawn = async (extra: Record<string, string>) => {
    const p = await spawnBerth(recordingEnv(dbs.berth.url, dbs.recording.url, extra));
    started.push(p);
    return p;
  };

  /** Polls the reader (which runs no operations) until last_operation's description matches. */
  async function descriptionBecomes(poll: () => Promise<{ status: number; text: string; body: any }>, pattern: RegExp): Promise<string> {
    const until = Date.now() + 60_000;
    let last = '';
    for (;;) {
      const r = await poll();
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.state, 'in progress', r.text);
      last = r.body.description;
      if (pattern.test(last)) return last;
      if (Date.now() > until) assert.fail(`last_operation still says "${last}"`);
      await sleep(100);
    }
  }

  before(async () => {
    dbs = await createDatabases();
    // Answers requests only: nothing resumes the operations until the test starts a worker.
    reader = await spawn({ BERTH_WORKER_CONCURRENCY: '0' });
  });

  after(async () => {
    for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) process.kill(p.pid, 'SIGTERM');
    await Promise.all(started.map((p) => p.exited));
    await dbs?.drop();
  });

  it('says so after its worker was killed, before and after its lease expired, and after a shutdown handed it back', async () => {
    // A lease long enough for the "killed" case to be seen while the dead worker's lease is still valid.
    const worker = await spawn({ BERTH_LEASE_SECONDS: '8' });
    const killed = 'resume-killed';
    const p = await worker.client.provision(killed, provisionBody('slow'));
    assert.equal(p.status, 202, p.text);
    await waitForStep(dbs.recording.url, { instanceId: killed, step: 'create-volume' });
    // (On a starved machine a renewal may already be half a lease late, which is reported as waiting too.)
    assert.match((await reader.client.lastOperation(killed, p.body.operation)).body.description, /Running step create-volume$/);
    process.kill(worker.pid, 'SIGKILL');
    await worker.exited;
    await descriptionBecomes(() => reader.client.lastOperation(killed, p.body.operation), WAITING);
    const [lease] = await query<{ live: boolean }>(dbs.berth.url, `SELECT lease_expires_at > now() AS live FROM operations WHERE id = $1`, [p.body.operation]);
    assert.equal(lease?.live, true, 'seen before the dead worker\'s lease expired');
    // And once it expired, while no worker has taken it over.
    while ((await query(dbs.berth.url, `SELECT 1 FROM operations WHERE id = $1 AND lease_expires_at > now()`, [p.body.operation])).length > 0) await sleep(200);
    await descriptionBecomes(() => reader.client.lastOperation(killed), WAITING);

    // A worker shutting down hands its operations back (grace 0: at once).
    const leaving = await spawn({ BERTH_SHUTDOWN_GRACE_SECONDS: '0' });
    // (It may take over the killed worker's operation too; it hands both back.)
    const handedBack = 'resume-handed-back';
    const q = await leaving.client.provision(handedBack, provisionBody('slow'));
    assert.equal(q.status, 202, q.text);
    await waitForStep(dbs.recording.url, { instanceId: handedBack, step: 'create-volume' });
    process.kill(leaving.pid, 'SIGTERM');
    assert.equal(await leaving.exited, 0);
    // (Under load the shutdown may land in the next step.)
    await descriptionBecomes(() => reader.client.lastOperation(handedBack, q.body.operation), /^Waiting to be resumed \(its worker stopped\); the last step was: Running step create-(volume|server)$/);

    // A worker resumes both; the description follows it again and both end.
    const resumer = await spawn({ BERTH_SHUTDOWN_GRACE_SECONDS: '0' });
    for (const [id, op] of [[killed, p.body.operation], [handedBack, q.body.operation]] as const) {
      assert.deepEqual(await waitForOperation(() => reader.client, { instanceId: id, operation: op }), { state: 'succeeded', description: 'Provisioned' });
    }

    // Bindings' last_operation says the same.
    const bind = await resumer.client.bind(killed, 'b1', bindBody('slow'));
    assert.equal(bind.status, 202, bind.text);
    await waitForStep(dbs.recording.url, { instanceId: killed, bindingId: 'b1', step: 'create-credential' });
    process.kill(resumer.pid, 'SIGTERM');
    assert.equal(await resumer.exited, 0);
    await descriptionBecomes(
      () => reader.client.bindingLastOperation(killed, 'b1', bind.body.operation),
      /^Waiting to be resumed \(its worker stopped\); the last step was: Running step create-(credential|grant)$/,
    );
    await spawn({});
    assert.deepEqual(await waitForOperation(() => reader.client, { instanceId: killed, bindingId: 'b1', operation: bind.body.operation }), {
      state: 'succeeded',
      description: 'Bound',
    });
    await checkInvariants(dbs.berth.url, dbs.recording.url);
  });
});
