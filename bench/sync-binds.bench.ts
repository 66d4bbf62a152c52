// 200 concurrent synchronous binds on one `postgres` instance (the audit's
// case: 4 binds/s, p50 49 s, 9 × 504 when requests polled every 50 ms),
// against the provisioner's own rate measured in the same run.
//
// Operations on one instance run one at a time (by design, across replicas),
// so the ceiling is the provisioner binding one role after another: the
// baseline calls PostgresProvisioner.bind sequentially, in its own process.
// Berth runs as a child process (`berth serve`, state in a throwaway database
// on the same server); this process is only the HTTP client. Rounds alternate
// baseline and Berth, so load changes during the run affect both alike;
// figures are medians over the rounds. BENCH_BINDS and BENCH_ROUNDS adjust it.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import pg from 'pg';
import { result } from './support/results.ts';
import { spawnBerth, type BerthProcess } from '../test/support/berth.ts';
import { ADMIN_URL, createTestDatabase } from '../test/support/postgres.ts';
import { CATALOG, PG, bindingOp, direct, instanceOp, serverEnv } from '../test/database-provisioners/support.ts';
import { pgNames, quotePgIdent } from '../src/provisioners/sql/names.ts';
import type { JsonObject } from '../src/provisioners/provisioner.ts';

const BINDS = Number(process.env.BENCH_BINDS ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/** Baseline process: provision `instanceId` with the provisioner, bind `n` times one after another, print the time. */
async function baseline(instanceId: string, n: number): Promise<void> {
  const d = direct();
  const plan = d.plan(PG.small);
  const state: JsonObject = {};
  await d.postgres.provision(instanceOp(plan, instanceId, state));
  try {
    await d.postgres.bind(bindingOp(plan, instanceId, state, randomUUID(), {})); // warm-up
    const start = performance.now();
    for (let i = 0; i < n; i++) await d.postgres.bind(bindingOp(plan, instanceId, state, randomUUID(), {}));
    process.stdout.write(JSON.stringify({ ms: performance.now() - start }) + '\n');
  } finally {
    await d.postgres.deprovision(instanceOp(plan, instanceId, state)); // drops the bindings' roles too
    await d.postgres.close();
  }
}

interface Round {
  /** Binds answered 201 per second of the round. */
  perSecond: number;
  /** Binds finished per second, counting those answered 504 that finished afterwards. */
  completedPerSecond: number;
  p50: number;
  p99: number;
  statuses: Record<number, number>;
}

function runBaseline(instanceId: string): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [import.meta.filename, 'baseline', instanceId, String(BINDS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`baseline exited with ${code}: ${out}`));
      const { ms } = JSON.parse(out.trim().split('\n').at(-1)!) as { ms: number };
      resolve({ perSecond: BINDS / (ms / 1000), completedPerSecond: BINDS / (ms / 1000), p50: NaN, p99: NaN, statuses: {} });
    });
  });
}

async function runBerth(berth: BerthProcess, state: pg.Client, instanceId: string): Promise<Round> {
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  const start = performance.now();
  await Promise.all(
    Array.from({ length: BINDS }, async () => {
      const sent = performance.now();
      const r = await berth.client.bind(instanceId, randomUUID(), { service_id: PG.service, plan_id: PG.small }, false);
      latencies.push(performance.now() - sent);
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    }),
  );
  const ms = performance.now() - start;
  // Binds answered 504 go on in the background: the provisioner-bound figure is when the last one ends.
  const unfinished = async () => Number((await state.query(`SELECT count(*) AS n FROM operations WHERE finished_at IS NULL`)).rows[0].n);
  while ((await unfinished()) > 0) await new Promise((r) => setTimeout(r, 20));
  const allDoneMs = performance.now() - start;
  latencies.sort((a, b) => a - b);
  const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
  return { perSecond: (statuses[201] ?? 0) / (ms / 1000), completedPerSecond: BINDS / (allDoneMs / 1000), p50: at(0.5), p99: at(0.99), statuses };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function settle(berth: BerthProcess, instanceId: string, operation: string): Promise<void> {
  const r = await berth.client.waitForInstance(instanceId, operation, 300_000);
  if (r.status === 200 && r.body.state !== 'succeeded') throw new Error(`operation failed: ${r.text}`);
}

/** Drops what an instance id led to (database, owner role, binding roles), whatever state the run stopped in. */
async function cleanup(admin: pg.Client, ids: string[]): Promise<void> {
  for (const id of ids) {
    await admin.query(`DROP DATABASE IF EXISTS ${quotePgIdent(pgNames.database(id))} WITH (FORCE)`);
    const { rows } = await admin.query<{ rolname: string }>(
      `SELECT m.rolname FROM pg_auth_members am JOIN pg_roles o ON o.oid = am.roleid JOIN pg_roles m ON m.oid = am.member WHERE o.rolname = $1`,
      [pgNames.ownerRole(id)],
    );
    for (const r of rows) await admin.query(`DROP ROLE IF EXISTS ${quotePgIdent(r.rolname)}`);
    await admin.query(`DROP ROLE IF EXISTS ${quotePgIdent(pgNames.ownerRole(id))}`);
  }
}

async function main(): Promise<void> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  const state = await createTestDatabase('berth_bench_sync');
  const ids: string[] = [];
  let berth: BerthProcess | undefined;
  const stateClient = new pg.Client({ connectionString: state.url });
  await stateClient.connect();
  try {
    berth = await spawnBerth({ DATABASE_URL: state.url, CATALOG_PATH: CATALOG, LOG_LEVEL: 'warn', ...serverEnv() });
    process.stdout.write(
      `${BINDS} concurrent synchronous binds on one postgres instance, ${ROUNDS} interleaved rounds; load average ${loadavg()[0]!.toFixed(1)}\n`,
    );
    const base: Round[] = [];
    const ours: Round[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const baselineId = randomUUID();
      ids.push(baselineId);
      base.push(await runBaseline(baselineId));

      const id = randomUUID();
      ids.push(id);
      const body = { service_id: PG.service, plan_id: PG.small, organization_guid: 'o', space_guid: 's' };
      const p = await berth.client.provision(id, body);
      await settle(berth, id, p.body.operation);
      const r = await runBerth(berth, stateClient, id);
      ours.push(r);
      process.stdout.write(
        `  round ${round}: provisioner ${base.at(-1)!.perSecond.toFixed(1)} binds/s; Berth ${r.perSecond.toFixed(1)} answered 201/s, ` +
          `${r.completedPerSecond.toFixed(1)} completed/s, ` +
          `p50 ${(r.p50 / 1000).toFixed(2)} s, p99 ${(r.p99 / 1000).toFixed(2)} s, statuses ${JSON.stringify(r.statuses)}\n`,
      );
      const d = await berth.client.deprovision(id, PG.service, PG.small);
      await settle(berth, id, d.body.operation);
    }
    const baseRate = median(base.map((r) => r.perSecond));
    const rate = median(ours.map((r) => r.perSecond));
    const completed = median(ours.map((r) => r.completedPerSecond));
    process.stdout.write(
      `\nmedian: provisioner alone ${baseRate.toFixed(1)} binds/s (baseline); Berth over HTTP ${rate.toFixed(1)} answered 201/s ` +
        `(ratio ${(rate / baseRate).toFixed(2)}), ${completed.toFixed(1)} completed/s (ratio ${(completed / baseRate).toFixed(2)}), ` +
        `p50 ${(median(ours.map((r) => r.p50)) / 1000).toFixed(2)} s, p99 ${(median(ours.map((r) => r.p99)) / 1000).toFixed(2)} s\n`,
    );
    // Issue 13 compares with 200 binds on 200 instances; this bench's baseline is the provisioner binding one
    // after another on one instance (the ceiling for one instance), so the row says which it is.
    const fiveHundreds = ours.reduce((n, r) => n + Object.entries(r.statuses).filter(([s]) => s.startsWith('5')).reduce((m, [, c]) => m + (c as number), 0), 0);
    result(
      {
        target: `${BINDS} concurrent sync binds on one instance vs provisioner.bind in sequence (${fiveHundreds} × 5xx)`,
        figure: `${rate.toFixed(1)} /s`,
        baseline: `${baseRate.toFixed(1)} /s (provisioner alone)`,
        value: rate / baseRate,
        goal: '>= 0.8x, no 5xx',
      },
      rate / baseRate >= 0.8 && fiveHundreds === 0,
    );
  } finally {
    if (berth) {
      berth.child.kill('SIGTERM');
      await berth.exited;
    }
    await stateClient.end();
    await cleanup(admin, ids);
    await state.drop();
    await admin.end();
  }
}

if (process.argv[2] === 'baseline') await baseline(process.argv[3]!, Number(process.argv[4]));
else await main();
