// Operation throughput with a zero-cost provisioner (the recording catalog's
// `zero` plan: the provisioner returns at once), for 1 and for 3 Berth
// replicas on one Postgres database. A client sends BENCH_OPS asynchronous
// provisions (round-robin over the replicas, BENCH_CLIENT_CONCURRENCY at a
// time) and the clock runs from the first request until the last operation
// has ended. Prints operations completed per second for each and the ratio
// (3 replicas / 1). Everything (client, replicas, Postgres) shares this machine.
//
// Also, for issue 13's engine targets: the same zero-cost load against a raw
// SQL loop doing the same transactions with pg (request: instance + operation;
// claim; finish), in its own process, same concurrency; the I/O-bound case
// (each operation waits 200 ms: the `zero` plan with step_delay_ms 200) on 1
// and 3 replicas; and the time from a zero-cost provision's 202 until
// last_operation says `succeeded` (the client polls without pause), p50.
import pg from 'pg';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { median, percentile, result } from './support/results.ts';
import { availableParallelism } from 'node:os';
import { REPO, spawnBerth, TEST_CREDENTIALS, type BerthProcess } from '../test/support/berth.ts';
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

const IO_OPS = Number(process.env.BENCH_IO_OPS ?? 600);
const IO_DELAY_MS = 200;

async function provisionMany(clients: OsbClient[], prefix: string, count: number, parameters?: Record<string, unknown>): Promise<void> {
  let next = 0;
  const body = { service_id: RECORDING_SERVICE_ID, plan_id: RECORDING_PLANS.zero, organization_guid: 'org', space_guid: 'space', ...(parameters ? { parameters } : {}) };
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

async function measure(replicas: number, opts: { ops?: number; parameters?: Record<string, unknown>; visibility?: boolean } = {}): Promise<Result & { visibleMs?: number[] }> {
  const ops = opts.ops ?? OPS;
  const database = await createTestDatabase('berth_bench');
  const processes: BerthProcess[] = [];
  const db = new pg.Client({ connectionString: database.url });
  try {
    const env = {
      DATABASE_URL: database.url,
      BERTH_PROVISIONER_MODULES: RECORDING_MODULE,
      CATALOG_PATH: RECORDING_CATALOG,
      LOG_LEVEL: 'warn',
      // e.g. BENCH_BERTH_ENV='{"BERTH_WORKER_CONCURRENCY":"16"}'
      ...(process.env.BENCH_BERTH_ENV ? (JSON.parse(process.env.BENCH_BERTH_ENV) as Record<string, string>) : {}),
    };
    processes.push(...(await Promise.all(Array.from({ length: replicas }, () => spawnBerth(env)))));
    const clients = processes.map((p) => new OsbClient(p.url, TEST_CREDENTIALS));
    await db.connect();

    await provisionMany(clients, 'warmup', WARMUP, opts.parameters);
    await waitAllEnded(db, WARMUP);

    const started = process.hrtime.bigint();
    await provisionMany(clients, 'bench', ops, opts.parameters);
    await waitAllEnded(db, WARMUP + ops);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const visibleMs = opts.visibility ? await visibility(processes[0]!.url, 60) : undefined;

    const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM operations WHERE state <> 'succeeded'`);
    return { replicas, opsPerSecond: ops / seconds, seconds, failed: rows[0]!.n, visibleMs };
  } finally {
    await db.end().catch(() => {});
    for (const p of processes) if (p.child.exitCode === null) process.kill(p.pid, 'SIGTERM');
    await Promise.all(processes.map((p) => p.exited));
    await database.drop();
  }
}

/** Sequential zero-cost provisions: ms from each 202 until a last_operation poll answers `succeeded`. */
async function visibility(url: string, count: number): Promise<number[]> {
  const headers = {
    'X-Broker-API-Version': '2.17',
    Authorization: 'Basic ' + Buffer.from(`${TEST_CREDENTIALS.username}:${TEST_CREDENTIALS.password}`).toString('base64'),
    'Content-Type': 'application/json',
  };
  const body = JSON.stringify({ service_id: RECORDING_SERVICE_ID, plan_id: RECORDING_PLANS.zero, organization_guid: 'org', space_guid: 'space' });
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const id = `visible-${i}`;
    const r = await fetch(`${url}/v2/service_instances/${id}?accepts_incomplete=true`, { method: 'PUT', headers, body });
    const { operation } = (await r.json()) as { operation: string };
    const accepted = performance.now();
    for (;;) {
      const poll = await fetch(`${url}/v2/service_instances/${id}/last_operation?operation=${operation}`, { headers });
      const { state } = (await poll.json()) as { state: string };
      if (state === 'succeeded') break;
      if (state === 'failed' || performance.now() - accepted > 10_000) throw new Error(`provision ${id}: ${state}`);
    }
    times.push(performance.now() - accepted);
  }
  return times;
}

/** The raw SQL loop (bench/support/raw-operations.ts) in its own process, on its own migrated database. */
async function rawSqlLoop(): Promise<number> {
  const database = await createTestDatabase('berth_bench_raw');
  try {
    // Migrated by a Berth start, so the tables and indexes are Berth's own.
    const berth = await spawnBerth({ DATABASE_URL: database.url, BERTH_PROVISIONER_MODULES: RECORDING_MODULE, CATALOG_PATH: RECORDING_CATALOG, LOG_LEVEL: 'warn' });
    process.kill(berth.pid, 'SIGTERM');
    await berth.exited;
    const child = spawn(process.execPath, [join(REPO, 'bench/support/raw-operations.ts'), database.url, String(WARMUP), String(OPS), String(CLIENT_CONCURRENCY)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const code = await new Promise((r) => child.once('exit', r));
    if (code !== 0) throw new Error(`raw SQL loop failed: ${out}`);
    return (JSON.parse(out) as { opsPerSecond: number }).opsPerSecond;
  } finally {
    await database.drop();
  }
}

const raw = await rawSqlLoop();
const one = await measure(1, { visibility: true });
const three = await measure(3);
const ioOne = await measure(1, { ops: IO_OPS, parameters: { step_delay_ms: IO_DELAY_MS } });
const ioThree = await measure(3, { ops: IO_OPS, parameters: { step_delay_ms: IO_DELAY_MS } });
const fmt = (r: Result) =>
  `${String(r.replicas).padStart(2)} replica${r.replicas > 1 ? 's' : ' '}: ${r.opsPerSecond.toFixed(0).padStart(6)} operations/s ` +
  `(${r.opsPerSecond * r.seconds > OPS - 1 ? OPS : IO_OPS} provisions in ${r.seconds.toFixed(2)} s${r.failed ? `, ${r.failed} not succeeded` : ''})`;
process.stdout.write(
  `zero-cost provisioner, ${OPS} asynchronous provisions, ${CLIENT_CONCURRENCY} concurrent client requests; ` +
    `${availableParallelism()} CPUs shared by the client, Postgres and the replicas\n`,
);
process.stdout.write(`${fmt(one)}\n${fmt(three)}\n`);
process.stdout.write(`ratio (3 replicas / 1): ${(three.opsPerSecond / one.opsPerSecond).toFixed(2)}\n`);
process.stdout.write(`raw SQL loop (same transactions, ${CLIENT_CONCURRENCY} at a time, pg): ${raw.toFixed(0)} operations/s; one replica / raw: ${(one.opsPerSecond / raw).toFixed(2)}\n`);
process.stdout.write(`I/O-bound (each operation waits ${IO_DELAY_MS} ms), ${IO_OPS} provisions:\n${fmt(ioOne)}\n${fmt(ioThree)}\n`);
process.stdout.write(`ratio (3 replicas / 1): ${(ioThree.opsPerSecond / ioOne.opsPerSecond).toFixed(2)}\n`);
const visible = one.visibleMs!;
process.stdout.write(`202 → last_operation says succeeded (zero-cost, one replica, ${visible.length} sequential provisions): p50 ${median(visible).toFixed(1)} ms, p90 ${percentile(visible, 90).toFixed(1)} ms\n`);
result(
  { target: 'zero-cost operations/s, one replica vs raw SQL loop', figure: `${one.opsPerSecond.toFixed(0)} ops/s`, baseline: `${raw.toFixed(0)} ops/s (pg loop)`, value: one.opsPerSecond / raw, goal: '>= 0.5x' },
  one.opsPerSecond / raw >= 0.5 && !one.failed,
);
result(
  { target: `I/O-bound (${IO_DELAY_MS} ms per operation), 3 replicas vs 1`, figure: `${ioThree.opsPerSecond.toFixed(1)} ops/s`, baseline: `${ioOne.opsPerSecond.toFixed(1)} ops/s (1 replica)`, value: ioThree.opsPerSecond / ioOne.opsPerSecond, goal: '>= 2.5x' },
  ioThree.opsPerSecond / ioOne.opsPerSecond >= 2.5 && !ioOne.failed && !ioThree.failed,
);
result(
  { target: 'zero-cost operation: 202 until last_operation says succeeded, p50', figure: `${median(visible).toFixed(1)} ms`, value: median(visible), goal: '<= 20 ms' },
  median(visible) <= 20,
);
if (one.failed || three.failed || ioOne.failed || ioThree.failed) process.exitCode = 1;
