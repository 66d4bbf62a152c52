// Retries, permanent failures, deadlines, per-instance serialisation of
// requests, and orphan mitigation (DELETE after a failed or timed-out
// provision or bind cleans up), against Berth running in this process on the
// real Postgres server with the recording provisioner.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestBerth, type TestBerth } from '../support/berth.ts';
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
  stepRuns,
  waitForStep,
  type Databases,
} from './helpers.ts';

const MAX_ATTEMPTS = 3;
const RETRY_BASE_MS = 1000; // the engine's default base delay

describe('durability: failures, retries and orphan cleanup', () => {
  let dbs: Databases;
  let t: TestBerth;

  before(async () => {
    dbs = await createDatabases();
    t = await startTestBerth({
      env: recordingEnv(dbs.berth.url, dbs.recording.url, { LOG_LEVEL: 'silent', BERTH_MAX_ATTEMPTS: String(MAX_ATTEMPTS) }),
    });
  });

  // Checked after whichever tests ran (all, or one picked with --test-name-pattern): never order-bound.
  after(async () => {
    try {
      if (t) {
        const ops = await query(dbs.berth.url, `SELECT count(*)::int AS n FROM operations`);
        assert.ok(ops[0].n >= 1, 'the tests that ran left operations to check');
        await checkInvariants(dbs.berth.url, dbs.recording.url);
      }
    } finally {
      await t?.stop();
      await dbs?.drop();
    }
  });

  const waitInstance = async (id: string, operation: string) => {
    const r = await t.client.waitForInstance(id, operation, 60_000);
    assert.equal(r.status, 200, r.text);
    return r.body as { state: string; description: string };
  };
  const waitBinding = async (id: string, bindingId: string, operation: string) => {
    const r = await t.client.waitForBinding(id, bindingId, operation, 60_000);
    assert.equal(r.status, 200, r.text);
    return r.body as { state: string; description: string };
  };
  const deprovision = (id: string, plan: keyof typeof RECORDING_PLANS = 'async') => t.client.deprovision(id, RECORDING_SERVICE_ID, RECORDING_PLANS[plan]);
  const unbind = (id: string, bindingId: string, plan: keyof typeof RECORDING_PLANS = 'async') =>
    t.client.unbind(id, bindingId, RECORDING_SERVICE_ID, RECORDING_PLANS[plan]);

  it('retries a transient failure with backoff and creates the resource only once', async () => {
    const id = 'retry-transient';
    const r = await t.client.provision(id, provisionBody('async', { step_delay_ms: 10, fail_step: 'create-server', fail_mode: 'transient', fail_times: 2 }));
    assert.equal(r.status, 202, r.text);
    const end = await waitInstance(id, r.body.operation);
    assert.deepEqual(end, { state: 'succeeded', description: 'Provisioned' });

    const runs = (await stepRuns(dbs.recording.url, id)).filter((x) => x.step === 'create-server');
    assert.deepEqual(
      runs.map((x) => [x.attempt, x.outcome]),
      [
        [1, 'created, then transient-failure'],
        [2, 'exists, then transient-failure'],
        [3, 'exists'],
      ],
      'the retries found the server the first attempt created instead of creating another',
    );
    // Backoff: the engine schedules retry n no earlier than 0.75 * base * 2^(n-1) after the failure
    // (a lower bound the engine enforces through next_attempt_at, both timestamps from the same server clock).
    const gap1 = runs[1]!.at.getTime() - runs[0]!.ended_at!.getTime();
    const gap2 = runs[2]!.at.getTime() - runs[1]!.ended_at!.getTime();
    assert.ok(gap1 >= 0.75 * RETRY_BASE_MS - 50, `first retry waited (${gap1} ms)`);
    assert.ok(gap2 >= 0.75 * RETRY_BASE_MS * 2 - 50, `second retry waited longer (${gap2} ms)`);
    assert.deepEqual(await liveResources(dbs.recording.url, id), ['server', 'volume']);
  });

  it('fails after the attempt budget with a description naming the last error', async () => {
    const id = 'retry-exhausted';
    const r = await t.client.provision(id, provisionBody('async', { step_delay_ms: 0, fail_step: 'create-volume', fail_mode: 'transient', fail_times: 99 }));
    assert.equal(r.status, 202, r.text);
    const end = await waitInstance(id, r.body.operation);
    assert.equal(end.state, 'failed');
    assert.match(end.description, new RegExp(`^provision failed after ${MAX_ATTEMPTS} attempts: connection to the backend reset during step create-volume`));
    const runs = (await stepRuns(dbs.recording.url, id)).filter((x) => x.step === 'create-volume');
    assert.equal(runs.length, MAX_ATTEMPTS);
  });

  it('ends a permanent failure as failed with the provisioner\'s description; DELETE then removes what was made', async () => {
    const id = 'permanent-provision';
    const r = await t.client.provision(id, provisionBody('async', { step_delay_ms: 0, fail_step: 'create-server', fail_mode: 'permanent' }));
    assert.equal(r.status, 202, r.text);
    const end = await waitInstance(id, r.body.operation);
    assert.equal(end.state, 'failed');
    assert.equal(end.description, `The backend rejected step create-server of instance ${id}: quota exceeded (simulated permanent failure).`);
    const runs = await stepRuns(dbs.recording.url, id);
    assert.equal(runs.filter((x) => x.step === 'create-server').length, 1, 'a permanent failure is not retried');
    assert.deepEqual(await liveResources(dbs.recording.url, id), ['server', 'volume'], 'the failed provision left its resources behind');

    // A platform's orphan mitigation: DELETE the instance whose provision failed.
    const d = await deprovision(id);
    assert.equal(d.status, 202, d.text);
    assert.deepEqual(await waitInstance(id, d.body.operation), { state: 'succeeded', description: 'Deprovisioned' });
    assert.deepEqual(await liveResources(dbs.recording.url, id), [], 'the cleanup removed everything');
    assert.equal((await deprovision(id)).status, 410, 'a repeated DELETE is answered 410 Gone');
    assert.equal((await t.client.lastOperation(id)).status, 410);
  });

  it('fails a provision that outlives maximum_polling_duration, and DELETE cleans up after it', async () => {
    const id = 'deadline-provision';
    // The volume is created quickly; the server step would take far longer than the plan allows.
    const r = await t.client.provision(id, provisionBody('deadline', { step_delay_ms: 50, step_delays: { 'create-server': 60_000 } }));
    assert.equal(r.status, 202, r.text);
    const end = await waitInstance(id, r.body.operation);
    assert.equal(end.state, 'failed');
    // The description names the limit and the step the provisioner last reported (not the state it was claimed in).
    assert.match(end.description, /^provision did not finish within the plan's maximum_polling_duration of 4 s; the last step was: Running step create-server$/);
    const runs = await stepRuns(dbs.recording.url, id);
    assert.equal(runs.at(-1)?.outcome, 'aborted', `the step running at the deadline was stopped: ${JSON.stringify(runs)}`);
    assert.ok(!runs.some((x) => x.step === 'create-server' && x.outcome.startsWith('created')));
    assert.deepEqual(await liveResources(dbs.recording.url, id), ['volume'], 'the timed-out provision left its volume behind');
    const d = await deprovision(id, 'deadline');
    assert.equal(d.status, 202, d.text);
    assert.equal((await waitInstance(id, d.body.operation)).state, 'succeeded');
    assert.deepEqual(await liveResources(dbs.recording.url, id), []);
    const again = await deprovision(id, 'deadline');
    assert.equal(again.status, 410);
  });

  it('cleans up after a failed bind and after a timed-out bind when the platform unbinds', async () => {
    const id = 'bind-failures';
    const p = await t.client.provision(id, provisionBody('deadline', { step_delay_ms: 0 }));
    assert.equal(p.status, 202, p.text);
    assert.equal((await waitInstance(id, p.body.operation)).state, 'succeeded');

    const failed = await t.client.bind(id, 'b-permanent', bindBody('deadline', { fail_step: 'create-credential', fail_mode: 'permanent' }));
    assert.equal(failed.status, 202, failed.text);
    const fEnd = await waitBinding(id, 'b-permanent', failed.body.operation);
    assert.equal(fEnd.state, 'failed');
    assert.match(fEnd.description, /binding b-permanent: quota exceeded/);

    const slow = await t.client.bind(id, 'b-deadline', bindBody('deadline', { step_delay_ms: 0, step_delays: { 'create-grant': 60_000 } }));
    assert.equal(slow.status, 202, slow.text);
    const sEnd = await waitBinding(id, 'b-deadline', slow.body.operation);
    assert.equal(sEnd.state, 'failed');
    assert.match(sEnd.description, /^bind did not finish within the plan's maximum_polling_duration of 4 s; the last step was: Running step create-grant$/);

    assert.deepEqual(await liveResources(dbs.recording.url, id), ['server', 'volume', 'b-deadline/credential', 'b-permanent/credential']);
    assert.equal((await t.client.fetchBinding(id, 'b-permanent')).status, 404, 'a failed binding is not fetchable');

    for (const b of ['b-permanent', 'b-deadline']) {
      const u = await unbind(id, b, 'deadline');
      assert.equal(u.status, 202, u.text);
      assert.equal((await waitBinding(id, b, u.body.operation)).state, 'succeeded');
      assert.equal((await unbind(id, b, 'deadline')).status, 410, 'a repeated unbind is answered 410 Gone');
    }
    assert.deepEqual(await liveResources(dbs.recording.url, id), ['server', 'volume'], 'the unbinds removed what the failed binds made');
  });

  it('answers a second mutating request with 422 ConcurrencyError (a bind that cannot be polled too), except a delete during a create, which halts it', async () => {
    const id = 'halted-create';
    const p = await t.client.provision(id, provisionBody('slow'));
    assert.equal(p.status, 202, p.text);
    await waitForStep(dbs.recording.url, { instanceId: id, step: 'create-volume' });

    const upd = await t.client.update(id, { service_id: RECORDING_SERVICE_ID, parameters: { size: 2 } });
    assert.equal(upd.status, 422, upd.text);
    assert.deepEqual(upd.body, { error: 'ConcurrencyError', description: CONCURRENCY_DESCRIPTION });
    const bind = await t.client.bind(id, 'b1', bindBody('slow'), false);
    assert.equal(bind.status, 422, bind.text);
    // (A bind that can be polled is queued behind the provision instead: standing-failures.test.ts.)
    const same = await t.client.provision(id, provisionBody('slow'));
    assert.deepEqual([same.status, same.body.operation], [202, p.body.operation], 'an identical provision is the same operation');
    const different = await t.client.provision(id, provisionBody('slow', { size: 9 }));
    assert.equal(different.status, 409, different.text);

    const d = await deprovision(id, 'slow');
    assert.equal(d.status, 202, d.text);
    const again = await deprovision(id, 'slow');
    assert.deepEqual([again.status, again.body.operation], [202, d.body.operation], 'a repeated DELETE is the same operation');
    const provisionEnd = await waitInstance(id, p.body.operation);
    assert.deepEqual(provisionEnd, { state: 'failed', description: 'Provisioning was halted because a deprovision was requested.' });
    assert.deepEqual(await waitInstance(id, d.body.operation), { state: 'succeeded', description: 'Deprovisioned' });

    const runs = await stepRuns(dbs.recording.url, id);
    const provisionRuns = runs.filter((x) => x.operation_id === p.body.operation);
    assert.ok(provisionRuns.some((x) => x.outcome === 'aborted'), `the create stopped when halted: ${JSON.stringify(provisionRuns)}`);
    assert.ok(!provisionRuns.some((x) => x.step === 'create-server' && x.outcome === 'created'), 'the halted create did not go on to make the server');
    const firstDelete = runs.findIndex((x) => x.operation_id === d.body.operation);
    assert.ok(firstDelete > runs.findLastIndex((x) => x.operation_id === p.body.operation), 'the delete ran only after the create had stopped');
    assert.deepEqual(await liveResources(dbs.recording.url, id), []);
  });
});
