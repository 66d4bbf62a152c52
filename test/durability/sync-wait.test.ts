// Synchronous requests: how they wait for their operation and what they answer
// when it is halted, slow or queued behind another; Retry-After; the
// cross-replica notification channel. On both database backends, with the
// gated provisioner (operations hold until the test releases them).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { REPO, startTestBerth, type TestBerth } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { release } from '../support/gated-provisioner.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { retryAfterSeconds } from '../../src/http/presenters.ts';
import { PgNotifications } from '../../src/db/notifications.ts';

const CATALOG = join(REPO, 'test/fixtures/catalog-sync-wait.yaml');
const MODULES = join(REPO, 'test/support/gated-provisioner.ts');
const BIND_HELD = { service_id: 'svc-sync', plan_id: 'plan-bind-held' };
const HELD = { service_id: 'svc-sync', plan_id: 'plan-held' };
const ASYNC_HELD = { service_id: 'svc-sync', plan_id: 'plan-async-held' };
const org = { organization_guid: 'org-1', space_guid: 'space-1' };
const q = (o: Record<string, string>) => '?' + new URLSearchParams(o).toString();

/** Resolves once `check` holds, polling the database-backed state the test can see. */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`never happened: ${what}`);
}

for (const backend of ['postgres', 'embedded'] as const) {
  describe(`synchronous operations (${backend})`, () => {
    let db: TestDatabase | undefined;
    let t: TestBerth;
    const p = backend; // instance id prefix: the gated provisioner's gates are per instance id, process-wide

    before(async () => {
      db = backend === 'postgres' ? await createTestDatabase('berth_sync') : undefined;
      t = await startTestBerth({
        databaseUrl: db?.url,
        catalogPath: CATALOG,
        // 8 s: long enough for an ungated synchronous request on embedded PGlite to finish on a 2-core machine at load
        // 30 (3 s was not), short enough for the test of the wait itself.
        env: { BERTH_PROVISIONER_MODULES: MODULES, BERTH_SYNC_WAIT_SECONDS: '8' },
      });
    });
    after(async () => {
      await t?.stop();
      await db?.drop();
    });

    const unfinished = async (instanceId: string) =>
      Number((await t.berth.stores.knex('operations').where({ instance_id: instanceId }).whereNull('finished_at').count({ n: '*' }))[0]!.n);

    test('a synchronous bind halted by an unbind answers 422 saying so, and its last_operation reports it failed', { timeout: 60_000 }, async () => {
      const id = `${p}-halt-bind`;
      assert.equal((await t.client.provision(id, { ...BIND_HELD, ...org }, false)).status, 201);
      const bind = t.client.bind(id, 'b', BIND_HELD, false);
      await until(async () => (await unfinished(id)) === 1, 'the bind is running');
      const unbind = await t.client.unbind(id, 'b', BIND_HELD.service_id, BIND_HELD.plan_id, false);
      const bound = await bind;
      assert.equal(bound.status, 422, bound.text);
      assert.equal(bound.body.error, 'ConcurrencyError');
      assert.match(bound.body.description, /Binding was halted because an unbind was requested/);
      assert.equal(unbind.status, 200, unbind.text);
      const last = await t.client.bindingLastOperation(id, 'b');
      assert.equal(last.status, 200, last.text);
      assert.equal(last.body.state, 'failed');
      assert.match(last.body.description, /halted because an unbind was requested/);
      assert.equal((await t.client.fetchBinding(id, 'b')).status, 404);
      assert.equal((await t.client.unbind(id, 'b', BIND_HELD.service_id, BIND_HELD.plan_id, false)).status, 410);
    });

    test('a synchronous provision halted by a deprovision answers 422 saying so', { timeout: 60_000 }, async () => {
      const id = `${p}-halt-provision`;
      const provision = t.client.provision(id, { ...HELD, ...org }, false);
      await until(async () => (await unfinished(id)) === 1, 'the provision is running');
      const deprovision = await t.client.deprovision(id, HELD.service_id, HELD.plan_id, false);
      const provisioned = await provision;
      assert.equal(provisioned.status, 422, provisioned.text);
      assert.equal(provisioned.body.error, 'ConcurrencyError');
      assert.match(provisioned.body.description, /halted because a deprovision was requested/);
      assert.equal(deprovision.status, 200, deprovision.text);
    });

    test('a slow synchronous operation is answered after BERTH_SYNC_WAIT_SECONDS: 202 with accepts_incomplete, else 504', { timeout: 30_000 }, async () => {
      // The operation holds until released, which happens only after both answers: with
      // the old fixed 60 s wait, this test cannot finish within its timeout.
      const id = `${p}-slow`;
      const accepted = await t.client.provision(id, { ...HELD, ...org }, true);
      assert.equal(accepted.status, 202, accepted.text);
      assert.equal(typeof accepted.body.operation, 'string');
      const poll = await t.client.lastOperation(id, accepted.body.operation);
      assert.equal(poll.body.state, 'in progress');
      const again = await t.client.provision(`${id}-2`, { ...HELD, ...org }, false);
      assert.equal(again.status, 504, again.text);
      assert.equal(again.body.error, 'Timeout');
      assert.match(again.body.description, /continues in the background/);
      release(id);
      release(`${id}-2`);
      assert.equal((await t.client.waitForInstance(id, accepted.body.operation, 30_000)).body.state, 'succeeded');
      await until(async () => (await unfinished(`${id}-2`)) === 0, 'the second provision finished in the background');
      assert.equal((await t.client.lastOperation(`${id}-2`)).body.state, 'succeeded');
    });

    test('a synchronous bind queued behind another is woken when it can run, not by polling', { timeout: 60_000 }, async () => {
      const id = `${p}-queued`;
      assert.equal((await t.client.provision(id, { ...BIND_HELD, ...org }, false)).status, 201);
      const first = t.client.bind(id, 'first', BIND_HELD, true);
      await until(async () => (await unfinished(id)) === 1, 'the first bind is running');
      const claims = t.berth.stores.queue;
      const original = claims.claim.bind(claims);
      let attempts = 0;
      let queuedId: string | undefined;
      claims.claim = (owner, leaseMs, onlyId, exclude) => {
        if (onlyId !== undefined && onlyId === queuedId) attempts++;
        return original(owner, leaseMs, onlyId, exclude);
      };
      try {
        const second = t.client.bind(id, 'second', BIND_HELD, true);
        await until(async () => (await unfinished(id)) === 2, 'the second bind is queued');
        queuedId = (await t.berth.stores.operations.active(id, 'second'))!.id;
        // The first bind holds for a while (the engine's fallback re-check is 1 s; the old
        // code polled every 50 ms); then both end and the second is answered.
        await new Promise((r) => setTimeout(r, 1200));
        const pollsWhileHeld = attempts;
        release(id);
        for (const [bindingId, reply] of [['first', await first], ['second', await second]] as const) {
          // 201, or 202 on a machine too loaded to finish within the 8 s wait.
          assert.ok(reply.status === 201 || reply.status === 202, reply.text);
          if (reply.status === 202) assert.equal((await t.client.waitForBinding(id, bindingId, reply.body.operation, 30_000)).body.state, 'succeeded');
        }
        assert.ok(pollsWhileHeld <= 3, `a waiting request re-checks rarely (${pollsWhileHeld} claim attempts while the first bind held)`);
      } finally {
        claims.claim = original;
      }
    });

    test('Retry-After on last_operation is 1 s for a fresh operation', async () => {
      const id = `${p}-retry-after`;
      const r = await t.client.provision(id, { ...ASYNC_HELD, ...org }, true);
      assert.equal(r.status, 202, r.text);
      const poll = await t.client.lastOperation(id, r.body.operation);
      assert.equal(poll.body.state, 'in progress');
      assert.equal(poll.headers.get('retry-after'), '1');
      const slow = await t.client.request('GET', `/v2/service_instances/${id}/last_operation${q({ operation: r.body.operation, service_id: ASYNC_HELD.service_id })}`);
      assert.equal(slow.headers.get('retry-after'), '1', 'the Express route says the same as the fast path');
      release(id);
      assert.equal((await t.client.waitForInstance(id, r.body.operation, 30_000)).body.state, 'succeeded');
    });
  });
}

test('Retry-After grows with the age of the operation, from 1 s to 15 s, and never passes its deadline', () => {
  const now = Date.parse('2026-12-03T10:00:00Z');
  const started = (secondsAgo: number) => new Date(now - secondsAgo * 1000);
  assert.equal(retryAfterSeconds({ startedAt: started(0.06), deadlineAt: undefined }, now), 1);
  assert.equal(retryAfterSeconds({ startedAt: started(1.6), deadlineAt: undefined }, now), 1);
  assert.equal(retryAfterSeconds({ startedAt: started(20), deadlineAt: undefined }, now), 5);
  assert.equal(retryAfterSeconds({ startedAt: started(600), deadlineAt: undefined }, now), 15);
  assert.equal(retryAfterSeconds({ startedAt: started(600), deadlineAt: new Date(now + 3000) }, now), 3);
  assert.equal(retryAfterSeconds({ startedAt: started(600), deadlineAt: new Date(now - 3000) }, now), 1);
  assert.equal(retryAfterSeconds({ startedAt: new Date(now + 5000), deadlineAt: undefined }, now), 1, 'clock skew');
});

test('BERTH_SYNC_WAIT_SECONDS: 20 s by default, refused at or past the platforms\' 60 s timeout', () => {
  const base = { BROKER_USERNAME: 'u', BROKER_PASSWORD: 'a-password-long-enough' };
  assert.equal(loadConfig(base).worker.syncWaitMs, 20_000);
  assert.equal(loadConfig({ ...base, BERTH_SYNC_WAIT_SECONDS: '5' }).worker.syncWaitMs, 5000);
  for (const bad of ['60', '0', 'soon']) {
    assert.throws(() => loadConfig({ ...base, BERTH_SYNC_WAIT_SECONDS: bad }), ConfigError, bad);
  }
});

describe('notifications between replicas (LISTEN/NOTIFY)', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('berth_notify');
  });
  after(async () => {
    await db?.drop();
  });

  test('a message reaches the other listener, not its sender, and still does after the connection is killed', { timeout: 60_000 }, async () => {
    const log = pino({ level: 'silent' });
    const got: Record<string, string[]> = { a: [], b: [] };
    const a = new PgNotifications({ url: db.url, channel: 'berth_test', log, onMessage: (m) => got.a!.push(m) });
    const b = new PgNotifications({ url: db.url, channel: 'berth_test', log, onMessage: (m) => got.b!.push(m) });
    a.start();
    b.start();
    const listeners = async () => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      try {
        return (await c.query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`)).rows.map((r) => r.pid as number);
      } finally {
        await c.end();
      }
    };
    const publish = async (n: PgNotifications, m: string) => {
      await until(async () => n.publish(m).then(() => true, () => false), 'the sender is connected');
    };
    try {
      await until(async () => (await listeners()).length === 2, 'both listen');
      await publish(a, 'op-1');
      await until(async () => got.b!.includes('op-1'), 'b receives op-1');
      assert.deepEqual(got.a, [], 'the sender does not hear itself');

      // A reset connection (the audit's fault injection) must not crash the process: the listener comes back.
      const admin = new pg.Client({ connectionString: db.url });
      await admin.connect();
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
      await admin.end();
      await until(async () => (await listeners()).length === 2, 'both listen again');
      await publish(b, 'op-2');
      await until(async () => got.a!.includes('op-2'), 'a receives op-2 after the reset');
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
