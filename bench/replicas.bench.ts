// Operation throughput with a zero-cost provisioner (the recording catalog's
// `zero` plan: the provisioner returns at once), for 1 and for 3 Berth
// replicas on one Postgres database. A client sends BENCH_OPS asynchronous
// provisions (round-robin over the replicas, BENCH_CLIENT_CONCURRENCY at a
// time) and the clock runs from the first request until the last operation
// has ended. Prints operations completed per second for each and the ratio
// (3 replicas / 1). Everything (client, replicas, Postgres) shares this machine.
import pg from 'pg';
import { availableParallelism } from 'node:os';
import { spawnBerth, TEST_CREDENTIALS, type BerthProcess } from '../test/support/berth.ts';
import { createTestDatabase } from '../test/support/postgres.ts';
import { OsbClient } from '../test/support/osb-client.ts';
import { RECORDING_CATALOG, RECORDING_MODULE, RECORDING_PLANS, RECORDING_SERVICE_ID } from '../test/support/recording-provisioner.ts';

const OPS = Number(process.env.BENCH_OPS ?? 1500);
const WARMUP = 100;
const CLIENT_CONCURRENCY = Number(process.env.BENCH_CLIENT_CONCURRENCY ?? 32);

interface Result {
  replicas: number;
  opsPerSecond: number;
  seconds: number;
  failed: number;
}

async function provisionMany(clients: OsbClient[], prefix: string, count: number): Promise<void> {
  let next = 0;
  const body = { service_id: RECORDING_SERVICE_ID, plan_id: RECORDING_PLANS.zero, organization_guid: 'org', space_guid: 'space' };
  await Promise.all(
    Array.from({ length: CLIENT_CONCURRENCY }, async () => {
      for (let i = next++; i < count; i = next++) {
        const r = await clients[i % clients.length]!.provision(`${prefix}-${i}`, body);
        if (r.status !== 202 && r.status !== 200) throw new Error(`provision ${prefix}-${i}: ${r.status} ${r.text}`);
      }
    }),
  );
}

async function waitAllEnded(db: pg.Client, count: number): Promise<void> {
  for (;;) {
    const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM operations WHERE finished_at IS NOT NULL`);
    if (rows[0]!.n >= count) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function measure(replicas: number): Promise<Result> {
  const database = await createTestDatabase('berth_bench');
  const processes: BerthProcess[] = [];
  const db = new pg.Client({ connectionString: database.url });
  try {
    const env = {
      DATABASE_URL: database.url,
      BERTH_PROVISIONER_MODULES: RECORDING_MODULE,
      CATALOG_PATH: RECORDING_CATALOG,
      LOG_LEVEL: 'warn',
    };
    processes.push(...(await Promise.all(Array.from({ length: replicas }, () => spawnBerth(env)))));
    const clients = processes.map((p) => new OsbClient(p.url, TEST_CREDENTIALS));
    await db.connect();

    await provisionMany(clients, 'warmup', WARMUP);
    await waitAllEnded(db, WARMUP);

    const started = process.hrtime.bigint();
    await provisionMany(clients, 'bench', OPS);
    await waitAllEnded(db, WARMUP + OPS);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;

    const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM operations WHERE state <> 'succeeded'`);
    return { replicas, opsPerSecond: OPS / seconds, seconds, failed: rows[0]!.n };
  } finally {
    await db.end().catch(() => {});
    for (const p of processes) if (p.child.exitCode === null) process.kill(p.pid, 'SIGTERM');
    await Promise.all(processes.map((p) => p.exited));
    await database.drop();
  }
}

const one = await measure(1);
const three = await measure(3);
const fmt = (r: Result) =>
  `${String(r.replicas).padStart(2)} replica${r.replicas > 1 ? 's' : ' '}: ${r.opsPerSecond.toFixed(0).padStart(6)} operations/s ` +
  `(${OPS} provisions in ${r.seconds.toFixed(2)} s${r.failed ? `, ${r.failed} not succeeded` : ''})`;
process.stdout.write(
  `zero-cost provisioner, ${OPS} asynchronous provisions, ${CLIENT_CONCURRENCY} concurrent client requests; ` +
    `${availableParallelism()} CPUs shared by the client, Postgres and the replicas\n`,
);
process.stdout.write(`${fmt(one)}\n${fmt(three)}\n`);
process.stdout.write(`ratio (3 replicas / 1): ${(three.opsPerSecond / one.opsPerSecond).toFixed(2)}\n`);
if (one.failed || three.failed) process.exitCode = 1;
