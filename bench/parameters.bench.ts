// Issue 16 point 1: a 1 MB provision whose `parameters.extensions` holds
// 165,000 unique items (the sample postgres plan's schema has `uniqueItems`)
// once held the event loop for 41 s. Measures, against a Berth child process on
// a throwaway database: the time until that request's 400, and the worst
// /healthz latency while it runs (polled back to back from this process).
// Baseline, interleaved round by round: the same route with a small body that
// fails the same schema, and the largest array the body bounds let through
// (1,000 unique items, all invalid: the most work validation can be given).
// Targets: 400 within 1 s, /healthz within 100 ms.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnBerth, REPO } from '../test/support/berth.ts';
import { createTestDatabase } from '../test/support/postgres.ts';
import { hugeExtensionsBody, SAMPLE_PG as PG } from '../test/input/bodies.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const ORG = { organization_guid: 'org-1', space_guid: 'space-1' };

const bodies: Record<string, string> = {
  'small invalid body (baseline)': JSON.stringify({ ...PG, ...ORG, parameters: { extensions: ['postgis'] } }),
  '1,000 unique invalid items (largest allowed)': JSON.stringify({ ...PG, ...ORG, parameters: { extensions: Array.from({ length: 1000 }, (_, i) => i) } }),
  '1 MB, 165,000 unique items (the audit request)': hugeExtensionsBody(),
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

const db = await createTestDatabase('berth_bench');
const berth = await spawnBerth({ DATABASE_URL: db.url, LOG_LEVEL: 'warn', CATALOG_PATH: join(REPO, 'catalog.yaml') });
try {
  const headers = { 'X-Broker-API-Version': '2.17', Authorization: berth.client.auth, 'Content-Type': 'application/json' };

  /** Sends one provision while polling /healthz; returns the time to the answer and the slowest /healthz. */
  async function round(body: string, id: string): Promise<{ status: number; ms: number; healthMaxMs: number; healthChecks: number }> {
    let done = false;
    let healthMaxMs = 0;
    let healthChecks = 0;
    const poller = (async () => {
      while (!done) {
        const t0 = performance.now();
        await (await fetch(`${berth.url}/healthz`)).arrayBuffer();
        healthMaxMs = Math.max(healthMaxMs, performance.now() - t0);
        healthChecks++;
        await sleep(2);
      }
    })();
    await sleep(20); // the poller is running before the request goes out
    const t0 = performance.now();
    const res = await fetch(`${berth.url}/v2/service_instances/${id}?accepts_incomplete=true`, { method: 'PUT', headers, body });
    await res.arrayBuffer();
    const ms = performance.now() - t0;
    done = true;
    await poller;
    return { status: res.status, ms, healthMaxMs, healthChecks };
  }

  // Idle /healthz latency for reference.
  const idle: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    await (await fetch(`${berth.url}/healthz`)).arrayBuffer();
    idle.push(performance.now() - t0);
  }

  const results = new Map<string, Array<Awaited<ReturnType<typeof round>>>>();
  await round(bodies['small invalid body (baseline)']!, 'warm-up'); // JIT, connections
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, body] of Object.entries(bodies)) {
      const result = await round(body, `bench-${r}`);
      if (result.status !== 400) throw new Error(`${name}: expected 400, got ${result.status}`);
      results.set(name, [...(results.get(name) ?? []), result]);
    }
  }

  console.log(`rounds: ${ROUNDS}, interleaved; /healthz polled back to back while each request runs`);
  console.log(`idle /healthz: median ${median(idle).toFixed(1)} ms, max ${Math.max(...idle).toFixed(1)} ms`);
  const baseline = median(results.get('small invalid body (baseline)')!.map((x) => x.ms));
  for (const [name, rs] of results) {
    const ms = rs.map((x) => x.ms);
    const health = rs.map((x) => x.healthMaxMs);
    console.log(
      `${name}: 400 after median ${median(ms).toFixed(1)} ms (max ${Math.max(...ms).toFixed(1)}) | ` +
        `/healthz worst per round: median ${median(health).toFixed(1)} ms, max ${Math.max(...health).toFixed(1)} ms ` +
        `(${median(rs.map((x) => x.healthChecks))} checks per round) | ratio to baseline ${(median(ms) / baseline).toFixed(2)}`,
    );
  }
  const audit = results.get('1 MB, 165,000 unique items (the audit request)')!;
  const worst400 = Math.max(...audit.map((x) => x.ms));
  const worstHealth = Math.max(...[...results.values()].flat().map((x) => x.healthMaxMs));
  console.log(
    `audit request: worst 400 ${worst400.toFixed(0)} ms (target <= 1000) ${worst400 <= 1000 ? 'OK' : 'ABOVE TARGET'}; ` +
      `worst /healthz ${worstHealth.toFixed(0)} ms (target <= 100) ${worstHealth <= 100 ? 'OK' : 'ABOVE TARGET'}`,
  );
} finally {
  berth.child.kill('SIGTERM');
  await berth.exited;
  await db.drop();
}
