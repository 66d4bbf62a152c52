// Every line Berth writes is a pino JSON line (issue 16, point 26), also while
// its state database is gone: Berth (a child process, logging at debug) runs
// on a throwaway Postgres that the test stops, once cleanly and once like a
// crash, while an operation is in flight and requests keep arriving. Before,
// knex printed its connection errors and stack traces with console.log.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { spawnBerth, type BerthProcess } from '../support/berth.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/throwaway-postgres.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { prepareRecordingDatabase } from '../support/recording-provisioner.ts';
import { provisionBody, recordingEnv, sleep, untilAnswered, waitForOperation, waitForStep } from './helpers.ts';

describe('durability: log lines during a database outage', () => {
  let server: ThrowawayPostgres | undefined;
  let recording: TestDatabase | undefined;
  let berth: BerthProcess | undefined;

  before(async () => {
    server = await startThrowawayPostgres();
    const admin = new pg.Client({ connectionString: server.url() });
    await admin.connect();
    await admin.query('CREATE DATABASE berth');
    await admin.end();
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

  it('writes only JSON lines, on stdout and stderr, while the database is down and after', async (t) => {
    berth = await spawnBerth(recordingEnv(server!.url('berth'), recording!.url, { LOG_LEVEL: 'debug' }));
    const client = berth.client;
    for (const mode of ['fast', 'immediate'] as const) {
      const id = `json-logs-${mode}`;
      const p = await client.provision(id, provisionBody('async', { step_delay_ms: 1000 }));
      assert.equal(p.status, 202, p.text);
      await waitForStep(recording!.url, { instanceId: id, step: 'create-volume' });
      await server!.stop(mode);
      // Requests and the engine's own work hit the missing database for a while.
      for (let i = 0; i < 10; i++) {
        const r = await client.lastOperation(id, p.body.operation);
        assert.equal(r.status, 503, r.text);
        await sleep(300);
      }
      await server!.start();
      await untilAnswered(() => client.lastOperation(id, p.body.operation), 60_000);
      assert.deepEqual(await waitForOperation(() => client, { instanceId: id, operation: p.body.operation }), { state: 'succeeded', description: 'Provisioned' });
    }
    process.kill(berth.pid, 'SIGTERM');
    assert.equal(await berth.exited, 0, berth.output().slice(-2000));

    const lines = berth.output().split('\n').filter((l) => l.trim() !== '');
    const notJson = lines.filter((l) => {
      try {
        const v = JSON.parse(l);
        return typeof v !== 'object' || v === null || typeof v.level !== 'number' || typeof v.msg !== 'string';
      } catch {
        return true;
      }
    });
    assert.deepEqual(notJson.slice(0, 10), [], `${notJson.length} of ${lines.length} lines are not pino JSON`);
    t.diagnostic(`${lines.length} lines, all pino JSON`);
  });
});
