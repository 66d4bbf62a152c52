// Shared pieces of the durability tests: the environment that loads the
// recording provisioner, a client that rides out restarts, and the invariant
// check run at the end of every scenario.
import assert from 'node:assert/strict';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { OsbClient, type Reply } from '../support/osb-client.ts';
import { TEST_CREDENTIALS, TEST_KEYS } from '../support/berth.ts';
import { SecretBox } from '../../src/secret-box.ts';
import {
  prepareRecordingDatabase,
  RECORDING_CATALOG,
  RECORDING_ENV,
  RECORDING_MODULE,
  RECORDING_PLANS,
  RECORDING_SERVICE_ID,
} from '../support/recording-provisioner.ts';

export { RECORDING_PLANS, RECORDING_SERVICE_ID };

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface Databases {
  berth: TestDatabase;
  recording: TestDatabase;
  drop(): Promise<void>;
}

/** A fresh Berth database and a fresh recording database on the shared Postgres server. */
export async function createDatabases(): Promise<Databases> {
  const berth = await createTestDatabase('berth_dur');
  const recording = await createTestDatabase('berth_rec');
  await prepareRecordingDatabase(recording.url);
  return { berth, recording, drop: async () => void (await Promise.allSettled([berth.drop(), recording.drop()])) };
}

/** Environment for a Berth process (or in-process Berth) using the recording provisioner and short leases. */
export function recordingEnv(databaseUrl: string, recordingUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    [RECORDING_ENV]: recordingUrl,
    BERTH_PROVISIONER_MODULES: RECORDING_MODULE,
    CATALOG_PATH: RECORDING_CATALOG,
    BERTH_LEASE_SECONDS: '2',
    BERTH_POLL_INTERVAL_MS: '50',
    BERTH_DB_POOL_SIZE: '6',
    LOG_LEVEL: process.env.BERTH_TEST_LOG_LEVEL ?? 'warn',
    ...extra,
  };
}

export function provisionBody(plan: keyof typeof RECORDING_PLANS, parameters: Record<string, unknown> = {}) {
  return { service_id: RECORDING_SERVICE_ID, plan_id: RECORDING_PLANS[plan], organization_guid: 'org', space_guid: 'space', parameters };
}

export function bindBody(plan: keyof typeof RECORDING_PLANS, parameters: Record<string, unknown> = {}) {
  return { service_id: RECORDING_SERVICE_ID, plan_id: RECORDING_PLANS[plan], bind_resource: { app_guid: 'app' }, parameters };
}

/** Sends `send` until it gets an HTTP answer other than 503: rides out restarts and database outages. */
export async function untilAnswered(send: () => Promise<Reply>, timeoutMs = 120_000, signal?: AbortSignal): Promise<Reply> {
  const until = Date.now() + timeoutMs;
  let last = '';
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    try {
      const r = await send();
      if (r.status !== 503) return r;
      last = `${r.status} ${r.text}`;
    } catch (err) {
      // connection refused or reset: the process is restarting
      last = String((err as Error).cause ?? err);
    }
    if (Date.now() > until) throw new Error(`no answer within ${timeoutMs} ms; last: ${last}`);
    signal?.throwIfAborted();
    await sleep(delay);
  }
}

/** An OsbClient whose base URL can change (a process restarted on another port) or rotate (several replicas). */
export class RoutedClient {
  #urls: string[];
  #next = 0;
  constructor(urls: string[]) {
    this.#urls = urls;
  }
  set urls(urls: string[]) {
    this.#urls = urls;
  }
  client(): OsbClient {
    const url = this.#urls[this.#next++ % this.#urls.length]!;
    return new OsbClient(url, TEST_CREDENTIALS);
  }
}

/** Polls last_operation (through restarts) until the operation ends; returns its final state. */
export async function waitForOperation(
  route: () => OsbClient,
  target: { instanceId: string; bindingId?: string; operation: string },
  timeoutMs = 180_000,
  signal?: AbortSignal,
): Promise<{ state: string; description: string }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await untilAnswered(() => {
      const c = route();
      return target.bindingId ? c.bindingLastOperation(target.instanceId, target.bindingId, target.operation) : c.lastOperation(target.instanceId, target.operation);
    }, timeoutMs, signal);
    assert.equal(r.status, 200, `last_operation ${target.operation}: ${r.status} ${r.text}`);
    if (r.body.state !== 'in progress') return r.body;
    if (Date.now() > until) throw new Error(`operation ${target.operation} still in progress after ${timeoutMs} ms: ${r.text}`);
    await sleep(100);
  }
}

export interface Invariants {
  instances: number;
  bindings: number;
  operations: number;
  createdResources: number;
  stepRuns: number;
}

/**
 * The end-of-run checks shared by the scenarios:
 * - every operation in Berth's database ended (succeeded or failed), with a description;
 * - no resource was created twice, no create or delete step ran to completion twice on the same resource,
 *   and no two processes ever ran steps of the same instance at once;
 * - every instance and binding is whole or gone: ready ones have all their resources, deleted ones none,
 *   and a half-made one (create_failed) has a failed operation that says what went wrong;
 * - a ready binding's credentials are the ones the resources were created with (checkpointed secrets).
 */
export async function checkInvariants(berthUrl: string, recordingUrl: string): Promise<Invariants> {
  const berth = new pg.Client({ connectionString: berthUrl });
  const rec = new pg.Client({ connectionString: recordingUrl });
  await berth.connect();
  await rec.connect();
  try {
    const unfinished = await berth.query(`SELECT id, kind, instance_id, description FROM operations WHERE finished_at IS NULL`);
    assert.deepEqual(unfinished.rows, [], 'every operation has ended');
    const badOps = await berth.query(
      `SELECT id, kind, state, description FROM operations WHERE state NOT IN ('succeeded', 'failed') OR description IS NULL OR description = ''`,
    );
    assert.deepEqual(badOps.rows, [], 'every ended operation is succeeded or failed, with a description');

    const violations = await rec.query(`SELECT instance_id, detail, pid FROM violations ORDER BY id`);
    assert.deepEqual(violations.rows, [], 'no two processes ran steps of the same instance at once; checkpointed secrets were reused');
    // Twice means while the first still existed: an instance id deleted and provisioned again has a new lifetime.
    const duplicates = await rec.query(
      `SELECT a.instance_id, a.binding_id, a.kind, count(*)::int AS n FROM resources a JOIN resources b
          ON a.instance_id = b.instance_id AND a.binding_id = b.binding_id AND a.kind = b.kind AND a.id < b.id
         AND (a.deleted_at IS NULL OR a.deleted_at > b.created_at)
       GROUP BY 1, 2, 3`,
    );
    assert.deepEqual(duplicates.rows, [], 'no resource was created twice');
    const twice = await rec.query(
      // Per lifetime: an instance or binding id deleted and created again starts over (counted from its last delete).
      `SELECT instance_id, binding_id, step, split_part(outcome, ',', 1) AS outcome, count(*)::int AS n FROM step_runs s
        WHERE split_part(outcome, ',', 1) IN ('created', 'deleted')
          AND NOT EXISTS (SELECT 1 FROM step_runs later WHERE later.instance_id = s.instance_id AND later.binding_id IN ('', s.binding_id)
                            AND later.id > s.id AND split_part(later.outcome, ',', 1) = 'deleted' AND later.step LIKE 'delete-%'
                            AND split_part(s.outcome, ',', 1) = 'created')
        GROUP BY 1, 2, 3, split_part(outcome, ',', 1) HAVING count(*) > 1`,
    );
    assert.deepEqual(twice.rows, [], 'no create or delete step took effect twice');

    const live = new Map<string, { secret: string | null }>();
    for (const r of (await rec.query(`SELECT instance_id, binding_id, kind, secret FROM resources WHERE deleted_at IS NULL`)).rows) {
      live.set(`${r.instance_id}|${r.binding_id}|${r.kind}`, { secret: r.secret });
    }
    const liveFor = (instanceId: string, bindingId = '') =>
      [...live.keys()].filter((k) => k.startsWith(`${instanceId}|${bindingId}|`)).map((k) => k.split('|')[2]!).sort();

    const latestFailed = async (instanceId: string, bindingId: string | null, kind: string) => {
      const { rows } = await berth.query(
        `SELECT state, description FROM operations WHERE instance_id = $1 AND binding_id IS NOT DISTINCT FROM $2 AND kind = $3
          ORDER BY created_at DESC, id DESC LIMIT 1`,
        [instanceId, bindingId, kind],
      );
      return rows[0]?.state === 'failed' && typeof rows[0].description === 'string' && rows[0].description.length > 10 ? rows[0].description : undefined;
    };

    const instances = (await berth.query(`SELECT id, state FROM instances`)).rows as Array<{ id: string; state: string }>;
    for (const i of instances) {
      const have = liveFor(i.id);
      if (i.state === 'ready') assert.deepEqual(have, ['server', 'volume'], `ready instance ${i.id} has all its resources`);
      else if (i.state === 'deleted') assert.deepEqual(have, [], `deleted instance ${i.id} left nothing behind`);
      else if (i.state === 'create_failed') {
        assert.ok(await latestFailed(i.id, null, 'provision'), `half-made instance ${i.id} has a failed provision that says why`);
      } else assert.fail(`instance ${i.id} is still ${i.state} although no operation runs`);
    }

    const box = new SecretBox(TEST_KEYS);
    const bindings = (await berth.query(`SELECT instance_id, id, state, credentials_enc FROM bindings`)).rows as Array<{
      instance_id: string;
      id: string;
      state: string;
      credentials_enc: string | null;
    }>;
    const bindingIds = new Set(bindings.map((b) => `${b.instance_id}|${b.id}`));
    for (const b of bindings) {
      const have = liveFor(b.instance_id, b.id);
      if (b.state === 'ready') {
        assert.deepEqual(have, ['credential', 'grant'], `ready binding ${b.id} has its credential and grant`);
        const handedOut = box.open<{ credentials: { password: string; server_password: string } }>(b.credentials_enc, { table: 'bindings', row: [b.instance_id, b.id], column: 'credentials_enc' })?.credentials;
        assert.equal(handedOut?.password, live.get(`${b.instance_id}|${b.id}|credential`)?.secret, `binding ${b.id} hands out the password its credential was created with`);
        assert.equal(handedOut?.server_password, live.get(`${b.instance_id}||server`)?.secret, `binding ${b.id} hands out the password the server was created with`);
      }
      else if (b.state === 'deleted') assert.deepEqual(have, [], `deleted binding ${b.id} left nothing behind`);
      else if (b.state === 'create_failed') assert.ok(await latestFailed(b.instance_id, b.id, 'bind'), `half-made binding ${b.id} has a failed bind that says why`);
      else assert.fail(`binding ${b.id} is still ${b.state} although no operation runs`);
    }
    for (const key of live.keys()) {
      const [instanceId, bindingId] = key.split('|') as [string, string];
      if (bindingId) assert.ok(bindingIds.has(`${instanceId}|${bindingId}`), `credential ${key} belongs to a binding Berth knows`);
      else assert.ok(instances.some((i) => i.id === instanceId), `resource ${key} belongs to an instance Berth knows`);
    }

    const created = await rec.query(`SELECT count(*)::int AS n FROM resources`);
    const runs = await rec.query(`SELECT count(*)::int AS n FROM step_runs`);
    const ops = await berth.query(`SELECT count(*)::int AS n FROM operations`);
    return {
      instances: instances.length,
      bindings: bindings.length,
      operations: ops.rows[0].n,
      createdResources: created.rows[0].n,
      stepRuns: runs.rows[0].n,
    };
  } finally {
    await berth.end();
    await rec.end();
  }
}

/** Runs one query against a database and closes the connection. */
export async function query<T extends pg.QueryResultRow = any>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** Waits until the recording shows a run of `step` for the instance (optionally of one binding) that matches `outcome` (SQL LIKE). */
export async function waitForStep(
  recordingUrl: string,
  where: { instanceId: string; bindingId?: string; step: string; outcome?: string },
  timeoutMs = 60_000,
): Promise<{ pid: number; operation_id: string; outcome: string }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const rows = await query(
      recordingUrl,
      `SELECT pid, operation_id, outcome FROM step_runs WHERE instance_id = $1 AND binding_id = $2 AND step = $3 AND outcome LIKE $4 ORDER BY id LIMIT 1`,
      [where.instanceId, where.bindingId ?? '', where.step, where.outcome ?? '%'],
    );
    if (rows[0]) return rows[0];
    if (Date.now() > until) throw new Error(`step ${where.step} of ${where.instanceId} did not run within ${timeoutMs} ms`);
    await sleep(25);
  }
}

export async function stepRuns(recordingUrl: string, instanceId: string, bindingId = '') {
  return query<{ pid: number; operation_id: string; attempt: number; step: string; outcome: string; at: Date; ended_at: Date | null }>(
    recordingUrl,
    `SELECT pid, operation_id, attempt, step, outcome, at, ended_at FROM step_runs WHERE instance_id = $1 AND binding_id = $2 ORDER BY id`,
    [instanceId, bindingId],
  );
}

export async function liveResources(recordingUrl: string, instanceId: string, bindingId?: string): Promise<string[]> {
  const rows = await query<{ binding_id: string; kind: string }>(
    recordingUrl,
    `SELECT binding_id, kind FROM resources WHERE instance_id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR binding_id = $2) ORDER BY binding_id, kind`,
    [instanceId, bindingId ?? null],
  );
  return rows.map((r) => (r.binding_id ? `${r.binding_id}/${r.kind}` : r.kind));
}
