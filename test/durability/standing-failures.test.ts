// What platforms that repeat their requests see (issue 15, section 6): Korifi re-sends the identical
// provision and bind PUT (and DELETE) on every reconcile and polls last_operation once after each, and
// it binds straight after creating. So a failed create or delete is the answer to its identical
// repeats until the platform moves on (DELETE after a failed create, an update after a failed
// delete), and a bind sent while its instance is still being provisioned is queued behind the
// provision instead of refused. Berth runs in this process on the real Postgres server with the
// recording provisioner, whose step log shows what really ran.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestBerth, type TestBerth } from '../support/berth.ts';
import { bindBody, checkInvariants, createDatabases, liveResources, provisionBody, RECORDING_PLANS, RECORDING_SERVICE_ID, recordingEnv, stepRuns, type Databases } from './helpers.ts';

describe('durability: failures stand for identical repeats; binds queue behind a provision', () => {
  let dbs: Databases;
  let t: TestBerth;

  before(async () => {
    dbs = await createDatabases();
    t = await startTestBerth({ env: recordingEnv(dbs.berth.url, dbs.recording.url, { LOG_LEVEL: 'silent', BERTH_MAX_ATTEMPTS: '2' }) });
  });

  after(async () => {
    try {
      if (t) await checkInvariants(dbs.berth.url, dbs.recording.url);
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
  const deprovision = (id: string) => t.client.deprovision(id, RECORDING_SERVICE_ID, RECORDING_PLANS.async);
  const runsOf = async (id: string, step: string, bindingId = '') => (await stepRuns(dbs.recording.url, id, bindingId)).filter((x) => x.step === step).length;

  it('an identical re-PUT of a failed provision answers with the failed operation until the platform deletes the instance', async () => {
    const id = 'standing-provision';
    const body = provisionBody('async', { step_delay_ms: 0, fail_step: 'create-server', fail_mode: 'permanent' });
    const first = await t.client.provision(id, body);
    assert.equal(first.status, 202, first.text);
    const end = await waitInstance(id, first.body.operation);
    assert.equal(end.state, 'failed');

    for (let i = 0; i < 3; i++) {
      const again = await t.client.provision(id, body);
      assert.deepEqual([again.status, again.body.operation], [202, first.body.operation], 'the repeat is answered with the failed operation');
      const polled = await t.client.lastOperation(id, again.body.operation);
      assert.deepEqual(polled.body, end, 'polling it says failed, and why');
      const unqualified = await t.client.lastOperation(id);
      assert.equal(unqualified.body.state, 'failed');
    }
    assert.equal(await runsOf(id, 'create-server'), 1, 'no repeat ran the provisioner again');
    assert.equal((await t.client.provision(id, provisionBody('async', { step_delay_ms: 0 }))).status, 409, 'a different request is still a conflict');
    assert.equal((await t.client.update(id, { service_id: RECORDING_SERVICE_ID, parameters: { step_delay_ms: 1 } })).status, 422, 'a failed create cannot be updated');

    // The platform's way out: DELETE (orphan mitigation), then provision again.
    const d = await deprovision(id);
    assert.equal(d.status, 202, d.text);
    assert.equal((await waitInstance(id, d.body.operation)).state, 'succeeded');
    const fresh = await t.client.provision(id, provisionBody('async', { step_delay_ms: 0 }));
    assert.equal(fresh.status, 202, fresh.text);
    assert.notEqual(fresh.body.operation, first.body.operation);
    assert.deepEqual(await waitInstance(id, fresh.body.operation), { state: 'succeeded', description: 'Provisioned' });
  });

  it('an identical re-PUT of a failed bind answers with the failed bind until the platform unbinds', async () => {
    const id = 'standing-bind';
    const p = await t.client.provision(id, provisionBody('async', { step_delay_ms: 0 }));
    assert.equal((await waitInstance(id, p.body.operation)).state, 'succeeded');
    const body = bindBody('async', { step_delay_ms: 0, fail_step: 'create-credential', fail_mode: 'permanent' });
    const first = await t.client.bind(id, 'b1', body);
    assert.equal(first.status, 202, first.text);
    const end = await waitBinding(id, 'b1', first.body.operation);
    assert.equal(end.state, 'failed');

    const again = await t.client.bind(id, 'b1', body);
    assert.deepEqual([again.status, again.body.operation], [202, first.body.operation]);
    assert.deepEqual((await t.client.bindingLastOperation(id, 'b1', again.body.operation)).body, end);
    assert.equal(await runsOf(id, 'create-credential', 'b1'), 1, 'the repeat did not bind again');

    const u = await t.client.unbind(id, 'b1', RECORDING_SERVICE_ID, RECORDING_PLANS.async);
    assert.equal(u.status, 202, u.text);
    assert.equal((await waitBinding(id, 'b1', u.body.operation)).state, 'succeeded');
    const fresh = await t.client.bind(id, 'b1', bindBody('async', { step_delay_ms: 0 }));
    assert.equal(fresh.status, 202, fresh.text);
    assert.equal((await waitBinding(id, 'b1', fresh.body.operation)).state, 'succeeded');
    assert.equal((await t.client.fetchBinding(id, 'b1')).status, 200);
  });

  it('an identical re-DELETE after a failed deprovision answers with the failure until the platform updates the instance', async () => {
    const id = 'standing-deprovision';
    // delete-server fails transiently twice: with two attempts per operation the first deprovision fails, a later one succeeds.
    const p = await t.client.provision(id, provisionBody('async', { step_delay_ms: 0, fail_step: 'delete-server', fail_mode: 'transient', fail_times: 2 }));
    assert.equal((await waitInstance(id, p.body.operation)).state, 'succeeded');
    const first = await deprovision(id);
    assert.equal(first.status, 202, first.text);
    const end = await waitInstance(id, first.body.operation);
    assert.equal(end.state, 'failed');
    assert.match(end.description, /delete-server/);

    const again = await deprovision(id);
    assert.deepEqual([again.status, again.body.operation], [202, first.body.operation], 'the repeat is answered with the failed delete');
    assert.equal((await t.client.lastOperation(id)).body.state, 'failed');
    assert.equal(await runsOf(id, 'delete-server'), 2, 'the repeat did not run the deprovision again');
    assert.equal((await t.client.request('GET', `/v2/service_instances/${id}`)).status, 200, 'the instance is still there and usable');

    // An update (here one that changes nothing) is how the platform says: move on.
    const u = await t.client.update(id, { service_id: RECORDING_SERVICE_ID });
    assert.equal(u.status, 200, u.text);
    const retry = await deprovision(id);
    assert.equal(retry.status, 202, retry.text);
    assert.notEqual(retry.body.operation, first.body.operation);
    assert.deepEqual(await waitInstance(id, retry.body.operation), { state: 'succeeded', description: 'Deprovisioned' });
    assert.deepEqual(await liveResources(dbs.recording.url, id), []);
  });

  it('a bind sent while the instance is still provisioning is queued behind the provision and then succeeds', async () => {
    const id = 'queued-bind';
    const p = await t.client.provision(id, provisionBody('async', { step_delay_ms: 700 }));
    assert.equal(p.status, 202, p.text);
    const refused = await t.client.bind(id, 'early-sync', bindBody('async'), false);
    assert.equal(refused.status, 422, 'a platform that cannot poll is still refused');

    const b = await t.client.bind(id, 'early', bindBody('async', { step_delay_ms: 0 }));
    assert.equal(b.status, 202, b.text);
    const meanwhile = await t.client.bindingLastOperation(id, 'early', b.body.operation);
    assert.equal(meanwhile.body.state, 'in progress', 'the bind waits for the provision');
    const repeat = await t.client.bind(id, 'early', bindBody('async', { step_delay_ms: 0 }));
    assert.deepEqual([repeat.status, repeat.body.operation], [202, b.body.operation], 'an identical repeat is the same operation');

    assert.equal((await waitInstance(id, p.body.operation)).state, 'succeeded');
    assert.equal((await waitBinding(id, 'early', b.body.operation)).state, 'succeeded');
    const fetched = await t.client.fetchBinding(id, 'early');
    assert.equal(fetched.status, 200, fetched.text);
    assert.ok(fetched.body.credentials, 'the queued bind has credentials');
    const credentialRun = (await stepRuns(dbs.recording.url, id, 'early')).find((x) => x.step === 'create-credential');
    const serverRun = (await stepRuns(dbs.recording.url, id)).find((x) => x.step === 'create-server');
    assert.ok(credentialRun!.at.getTime() >= serverRun!.ended_at!.getTime(), 'the bind ran after the provision ended');
  });

  it('a bind queued behind a provision that fails ends failed, saying why', async () => {
    const id = 'queued-bind-failed-instance';
    const p = await t.client.provision(id, provisionBody('async', { step_delay_ms: 400, fail_step: 'create-server', fail_mode: 'permanent' }));
    const b = await t.client.bind(id, 'early', bindBody('async', { step_delay_ms: 0 }));
    assert.equal(b.status, 202, b.text);
    assert.equal((await waitInstance(id, p.body.operation)).state, 'failed');
    const end = await waitBinding(id, 'early', b.body.operation);
    assert.equal(end.state, 'failed');
    assert.match(end.description, /failed to provision, so the binding was not created/);
    assert.equal(await runsOf(id, 'create-credential', 'early'), 0, 'no credential was made');
    // Orphan mitigation still works: the DELETE removes the instance and its failed binding.
    const d = await deprovision(id);
    assert.equal((await waitInstance(id, d.body.operation)).state, 'succeeded');
  });

  it('a delete during provisioning halts the provision and the binds queued behind it', async () => {
    const id = 'queued-bind-halted';
    const p = await t.client.provision(id, provisionBody('async', { step_delay_ms: 800 }));
    const b = await t.client.bind(id, 'early', bindBody('async', { step_delay_ms: 0 }));
    assert.equal(b.status, 202, b.text);
    const d = await deprovision(id);
    assert.equal(d.status, 202, d.text);
    const bound = await waitBinding(id, 'early', b.body.operation).catch(() => undefined);
    if (bound) assert.equal(bound.state, 'failed');
    assert.equal((await waitInstance(id, d.body.operation)).state, 'succeeded');
    assert.equal((await t.client.lastOperation(id, p.body.operation)).body.state, 'failed');
    assert.equal(await runsOf(id, 'create-credential', 'early'), 0, 'the halted bind never ran');
    assert.deepEqual(await liveResources(dbs.recording.url, id), []);
  });
});
