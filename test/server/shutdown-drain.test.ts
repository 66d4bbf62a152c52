// Issue 16 point 7: SIGTERM under load. Requests in flight, here all waiting
// for the database (a table lock the test holds, so they queue for the pool's
// connections), get complete answers: Berth stops accepting, answers them,
// then stops the engine and closes the pools. No error is logged.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { spawnBerth, type BerthProcess } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

const UPS = { service_id: '4f6e6cf6-ffdd-425f-a2c7-3c9258ad2468', plan_id: '86064792-7ea2-467b-af93-ac9694d96d52' };
const provisionBody = { ...UPS, organization_guid: 'org', space_guid: 'space', parameters: { credentials: { url: 'https://x' } } };

describe('graceful shutdown under load', () => {
  let db: TestDatabase;
  let berth: BerthProcess | undefined;
  let locker: pg.Client | undefined;

  before(async () => {
    db = await createTestDatabase('berth_drain');
  });
  after(async () => {
    await locker?.end().catch(() => {});
    if (berth && berth.child.exitCode === null && berth.child.signalCode === null) {
      process.kill(berth.pid, 'SIGKILL');
      await berth.exited;
    }
    await db?.drop();
  });

  it('answers every request in flight at SIGTERM, then exits 0 without error logs', async () => {
    berth = await spawnBerth({ DATABASE_URL: db.url, BERTH_DB_POOL_SIZE: '2', BERTH_SHUTDOWN_GRACE_SECONDS: '30', LOG_LEVEL: 'info' });
    const b = berth;
    const base = await b.client.provision('drain-base', provisionBody, false);
    assert.equal(base.status, 201, base.text);

    // Hold the instances table: every request below waits on it, or for a pooled connection behind it.
    locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE instances IN ACCESS EXCLUSIVE MODE');

    const requests: Array<{ what: string; reply: Promise<{ status: number; body: any } | Error> }> = [];
    const send = (what: string, call: () => Promise<{ status: number; body: any }>) =>
      requests.push({ what, reply: call().catch((err: Error) => err) });
    for (let i = 0; i < 8; i++) send(`fetch ${i}`, () => b.client.request('GET', '/v2/service_instances/drain-base'));
    for (let i = 0; i < 6; i++) send(`last_operation ${i}`, () => b.client.lastOperation('drain-base'));
    for (let i = 0; i < 6; i++) send(`provision ${i}`, () => b.client.provision(`drain-${i}`, provisionBody, false));

    const waiting = async () =>
      Number((await locker!.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`, [db.name])).rows[0].n);
    for (let i = 0; (await waiting()) < 2; i++) {
      assert.ok(i < 100, 'the requests never reached the database');
      await sleep(50);
    }
    await sleep(300); // the rest of the requests are queued for the pool by now

    process.kill(b.pid, 'SIGTERM');
    await sleep(500);
    await locker.query('COMMIT');

    for (const r of requests) {
      const reply = await r.reply;
      assert.ok(!(reply instanceof Error), `${r.what}: ${reply instanceof Error ? String(reply.cause ?? reply) : ''}`);
      assert.ok([200, 201].includes(reply.status), `${r.what}: ${reply.status} ${JSON.stringify(reply.body)}`);
      assert.equal(typeof reply.body, 'object', `${r.what}: a complete JSON body`);
    }
    assert.equal(await b.exited, 0, b.output().slice(-3000));
    const errors = b
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; msg: string })
      .filter((l) => l.level >= 50);
    assert.deepEqual(errors, []);
    assert.doesNotMatch(b.output(), /aborted/);
  });
});
