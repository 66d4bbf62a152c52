// Flat growth (issue 13, target 2): the requests platforms repeat most, at
// 10,000 instances and at BENCH_GROWTH_LARGE (1,000,000) instances: last_operation
// with Cloud Foundry's query, GET instance, and an identical re-PUT of a finished
// provision (Korifi re-sends it on every reconcile). Each size has its own
// database and its own Berth, both running; rounds alternate between them, 50
// connections, medians of the p99s; the ratio is large / small. Rows are seeded
// in SQL (generate_series) except a sample of 1,000 instances with real sealed
// columns, the ones requested: what grows is the tables and their indexes.
// Also Berth's RSS after the runs at each size (it must not grow with the rows).
import autocannon from 'autocannon';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import knexFactory from 'knex';
import { spawnBerth, TEST_CREDENTIALS, TEST_KEYS, REPO, type BerthProcess } from '../test/support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../test/support/postgres.ts';
import { SecretBox } from '../src/secret-box.ts';
import { median, result, rssOf } from './support/results.ts';

const SMALL = 10_000;
const LARGE = Number(process.env.BENCH_GROWTH_LARGE ?? 1_000_000);
const SAMPLE = 1000;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const headers = {
  'X-Broker-API-Version': '2.17',
  Authorization: 'Basic ' + Buffer.from(`${TEST_CREDENTIALS.username}:${TEST_CREDENTIALS.password}`).toString('base64'),
  'Content-Type': 'application/json',
};
const provisionBody = JSON.stringify({ service_id: 'svc-gated', plan_id: 'plan-fast', organization_guid: 'org', space_guid: 'space', parameters: { size: 1 } });

interface Size {
  count: number;
  db: TestDatabase;
  berth: BerthProcess;
  sample: Array<[string, string]>;
}

async function prepare(count: number): Promise<Size> {
  const db = await createTestDatabase('berth_bench_growth');
  const env = {
    DATABASE_URL: db.url,
    LOG_LEVEL: 'warn',
    CATALOG_PATH: join(REPO, 'test/fixtures/catalog-conformance.yaml'),
    BERTH_PROVISIONER_MODULES: join(REPO, 'test/support/gated-provisioner.ts'),
    BERTH_WORKER_CONCURRENCY: '1',
  };
  const berth = await spawnBerth(env, { launcher: true }).catch(async (err) => {
    await db.drop();
    throw err;
  }); // migrates
  try {
    return { count, db, berth, sample: await seed(db, count) };
  } catch (err) {
    berth.child.kill('SIGTERM');
    await berth.exited;
    await db.drop();
    throw err;
  }
}

async function seed(db: TestDatabase, count: number): Promise<Array<[string, string]>> {
  const knex = knexFactory({ client: 'pg', connection: db.url });
  const started = performance.now();
  const filler = count - SAMPLE;
  await knex.raw(
    `INSERT INTO instances (id, service_id, plan_id, state, parameters_enc, organization_guid, space_guid)
     SELECT 'fill-' || g, 'svc-gated', 'plan-fast', 'ready', 'x', 'org', 'space' FROM generate_series(1, ?) g`,
    [filler],
  );
  await knex.raw(
    `INSERT INTO operations (id, instance_id, kind, state, description, request_enc, finished_at, created_at)
     SELECT md5(g::text)::uuid::text, 'fill-' || g, 'provision', 'succeeded', 'Provisioned', 'x', now(), now() - interval '1 day' FROM generate_series(1, ?) g`,
    [filler],
  );
  const box = new SecretBox(TEST_KEYS);
  const sample: Array<[string, string]> = [];
  const instances = [];
  const ops = [];
  for (let i = 0; i < SAMPLE; i++) {
    const id = `sample-${randomUUID()}`;
    const opId = randomUUID();
    sample.push([id, opId]);
    const cell = (table: string, row: string, column: string) => ({ table, row: [row], column });
    instances.push({
      id,
      service_id: 'svc-gated',
      plan_id: 'plan-fast',
      state: 'ready',
      organization_guid: 'org',
      space_guid: 'space',
      parameters_enc: box.seal({ size: 1 }, cell('instances', id, 'parameters_enc')),
      provisioner_state_enc: box.seal({}, cell('instances', id, 'provisioner_state_enc')),
    });
    ops.push({ id: opId, instance_id: id, kind: 'provision', state: 'succeeded', description: 'Provisioned', request_enc: box.seal({}, cell('operations', opId, 'request_enc')), finished_at: knex.fn.now() });
  }
  await knex.batchInsert('instances', instances, 500);
  await knex.batchInsert('operations', ops, 500);
  await knex.raw('ANALYZE instances');
  await knex.raw('ANALYZE operations');
  await knex.destroy();
  console.log(`seeded ${count} instances and their operations in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return sample;
}

const requests: Record<string, (s: Size) => { method: string; path: string; body?: string }> = {
  'last_operation, Cloud Foundry query': (s) => {
    const [id, op] = s.sample[Math.floor(Math.random() * SAMPLE)]!;
    return { method: 'GET', path: `/v2/service_instances/${id}/last_operation?operation=${op}&plan_id=plan-fast&service_id=svc-gated` };
  },
  'GET instance': (s) => ({ method: 'GET', path: `/v2/service_instances/${s.sample[Math.floor(Math.random() * SAMPLE)]![0]}` }),
  'identical re-PUT provision': (s) => ({ method: 'PUT', path: `/v2/service_instances/${s.sample[Math.floor(Math.random() * SAMPLE)]![0]}?accepts_incomplete=true`, body: provisionBody }),
};

async function measure(s: Size, name: string, seconds: number): Promise<{ p99: number; rps: number; bad: number }> {
  const r = await autocannon({
    url: s.berth.url,
    connections: 50,
    duration: seconds,
    headers,
    requests: [{ setupRequest: (req: any) => ({ ...req, ...requests[name]!(s) }) }],
  });
  return { p99: r.latency.p99, rps: r.requests.average, bad: r.errors + r.non2xx };
}

const sizes: Size[] = [];
try {
  sizes.push(await prepare(SMALL));
  sizes.push(await prepare(LARGE));
  const [small, large] = sizes as [Size, Size];
  for (const name of Object.keys(requests)) {
    for (const s of sizes) await measure(s, name, 1); // warm-up
    const p99 = new Map<number, number[]>(sizes.map((s) => [s.count, []]));
    const rps = new Map<number, number[]>(sizes.map((s) => [s.count, []]));
    let bad = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < sizes.length; i++) {
        const s = sizes[(round + i) % sizes.length]!;
        const r = await measure(s, name, SECONDS);
        p99.get(s.count)!.push(r.p99);
        rps.get(s.count)!.push(r.rps);
        bad += r.bad;
      }
    }
    const [a, b] = [median(p99.get(SMALL)!), median(p99.get(LARGE)!)];
    const ratio = b / Math.max(a, 1);
    console.log(
      `${name}: p99 ${a} ms at ${SMALL} (${median(rps.get(SMALL)!).toFixed(0)} req/s), ${b} ms at ${LARGE} (${median(rps.get(LARGE)!).toFixed(0)} req/s); ratio ${ratio.toFixed(2)}${bad ? `; ${bad} errors/non-2xx` : ''}`,
    );
    result({ target: `${name}: p99 at ${LARGE} vs ${SMALL} instances`, figure: `${b} ms`, baseline: `${a} ms (${SMALL})`, value: ratio, goal: '<= 1.3x' }, ratio <= 1.3 && bad === 0);
  }
  const [rssSmall, rssLarge] = [await rssOf(small.berth.pid), await rssOf(large.berth.pid)];
  console.log(`Berth's RSS after the runs: ${rssSmall.now.toFixed(0)} MB at ${SMALL} instances, ${rssLarge.now.toFixed(0)} MB at ${LARGE}`);
  result(
    { target: `RSS at ${LARGE} vs ${SMALL} instances`, figure: `${rssLarge.now.toFixed(0)} MB`, baseline: `${rssSmall.now.toFixed(0)} MB (${SMALL})`, value: rssLarge.now / rssSmall.now, goal: 'does not grow (<= 1.1x)' },
    rssLarge.now / rssSmall.now <= 1.1,
  );
} finally {
  for (const s of sizes) {
    s.berth.child.kill('SIGTERM');
    await s.berth.exited;
    await s.db.drop();
  }
}
