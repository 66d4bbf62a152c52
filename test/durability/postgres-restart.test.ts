// Database outages: Berth (a child process) runs on a throwaway Postgres
// cluster that the test stops and starts again, once cleanly (fast) and once
// like a crash (immediate), while an operation is in flight. While the
// database is gone Berth answers OSB requests that need it with 503 and an OSB
// error body; when it is back Berth reconnects by itself, the interrupted
// operation completes, and new requests are served, all by the same process.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { spawnBerth, type BerthProcess } from '../support/berth.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/throwaway-postgres.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { prepareRecordingDatabase } from '../support/recording-provisioner.ts';
import {
  checkInvariants,
  provisionBody,
  RECORDING_PLANS,
  RECORDING_SERVICE_ID,
  recordingEnv,
  sleep,
  untilAnswered,
  waitForOperation,
  waitForStep,
} from './helpers.ts';

describe('durability: the database restarts under a running Berth', () => {
  let server: ThrowawayPostgres | undefined;
  let recording: TestDatabase | undefined;
  let berth: BerthProcess | undefined;

  before(async () => {
    server = await startThrowawayPostgres();
    const admin = new pg.Client({ connectionString: server.url() });
    await admin.connect();
    await admin.query('CREATE DATABASE berth');
    await admin.end();
    // The recording provisioner's own database stays on the shared server: only Berth's database goes away.
    recording = await createTestDatabase('berth_rec');
    await prepareRecordingDatabase(recording.url);
  });

  after(async () => {
    if (berth && berth.child.exitCode === null && berth.child.signalCode === null) {
      process.kill(berth.pid, 'SIGKILL');
      await berth.exited;
    }
    await server?.destroy();
    await recording?.drop();
  });

  it('answers 503 while Postgres is down and recovers without a restart', async (t) => {
    berth = await spawnBerth(recordingEnv(server!.url('berth'), recording!.url, { LOG_LEVEL: 'warn' }));
    const client = berth.client;

    for (const mode of ['fast', 'immediate'] as const) {
      const inFlight = `outage-${mode}`;
      const p = await client.provision(inFlight, provisionBody('async', { step_delay_ms: 1500 }));
      assert.equal(p.status, 202, p.text);
      await waitForStep(recording!.url, { instanceId: inFlight, step: 'create-volume' });

      await server!.stop(mode);
      assert.equal(server!.pid(), undefined, 'the database server is down');

      const whileDown = [
        await client.provision(`${inFlight}-new`, provisionBody('async')),
        await client.lastOperation(inFlight, p.body.operation),
        await client.deprovision(inFlight, RECORDING_SERVICE_ID, RECORDING_PLANS.async),
        await client.request('GET', `/v2/service_instances/${inFlight}`),
      ];
      await sleep(1000);
      whileDown.push(await client.provision(`${inFlight}-new`, provisionBody('async')), await client.lastOperation(inFlight, p.body.operation));
      for (const r of whileDown) {
        assert.equal(r.status, 503, `while the database is down: ${r.status} ${r.text}`);
        assert.deepEqual(r.body, { error: 'ServiceUnavailable', description: "The broker cannot reach its database right now; retry shortly." });
        assert.ok(r.headers.get('retry-after'), 'a 503 says when to retry');
      }
      const catalog = await client.request('GET', '/v2/catalog');
      assert.equal(catalog.status, 200, 'what needs no database is still served');

      await server!.start();
      const created = await untilAnswered(() => client.provision(`${inFlight}-new`, provisionBody('async', { step_delay_ms: 10 })), 60_000);
      assert.equal(created.status, 202, created.text);
      const before = await waitForOperation(() => client, { instanceId: inFlight, operation: p.body.operation });
      assert.deepEqual(before, { state: 'succeeded', description: 'Provisioned' }, 'the operation interrupted by the outage completed');
      const after = await waitForOperation(() => client, { instanceId: `${inFlight}-new`, operation: created.body.operation });
      assert.deepEqual(after, { state: 'succeeded', description: 'Provisioned' });
      assert.equal(berth.child.exitCode, null, 'the same Berth process carried on');
      t.diagnostic(`${mode} stop: ${whileDown.length} requests answered 503 while down; recovered without a restart`);
    }

    await checkInvariants(server!.url('berth'), recording!.url);
    process.kill(berth.pid, 'SIGTERM');
    assert.equal(await berth.exited, 0, berth.output().slice(-2000));
  });
});
