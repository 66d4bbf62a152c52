// A normal client's latency while 1,000 slow connections are held open
// against Berth (half silent, half trickling headers; the attacker re-opens
// each one the server closes), against the same client with no slow
// connections. Berth runs at the audit's descriptor limit (1,024). The
// attacker and Berth are processes of their own; rounds alternate without and
// with the attack; figures are medians over rounds.
import { spawn, execFileSync } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { spawnBerth, REPO } from '../test/support/berth.ts';
import { createTestDatabase } from '../test/support/postgres.ts';

const SLOW = Number(process.env.BENCH_SLOW_CONNECTIONS ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)]!;
};
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

/** One request on a new connection (a slow client must not keep a new one out); milliseconds, or NaN if it failed. */
function timedGet(url: string, headers: Record<string, string>): Promise<number> {
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const req = request(`${url}/v2/catalog`, { agent: false, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? Number(process.hrtime.bigint() - started) / 1e6 : NaN));
    });
    req.setTimeout(10_000, () => req.destroy());
    req.on('error', () => resolve(NaN));
    req.end();
  });
}

async function round(url: string, headers: Record<string, string>) {
  const ms: number[] = [];
  let failed = 0;
  for (let i = 0; i < REQUESTS; i++) {
    const t = await timedGet(url, headers);
    if (Number.isNaN(t)) failed++;
    else ms.push(t);
  }
  return { p50: median(ms), p99: quantile(ms, 0.99), failed };
}

async function attack(port: number): Promise<{ stop: () => Promise<string> }> {
  const child = spawn(process.execPath, [join(REPO, 'bench/support/slow-clients.ts'), String(port), String(SLOW)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the attacker did not open ${SLOW} connections within 30 s`)), 30_000);
    child.stdout!.on('data', () => out.includes('ready') && (clearTimeout(t), resolve()));
  });
  return {
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      return /opened (\d+)/.exec(out)?.[1] ?? '?';
    },
  };
}

const db = await createTestDatabase('berth_bench');
const berth = await spawnBerth({ DATABASE_URL: db.url, LOG_LEVEL: 'warn' });
try {
  execFileSync('prlimit', ['--pid', String(berth.pid), '--nofile=1024:1024']);
  const headers = { 'X-Broker-API-Version': '2.17', Authorization: berth.client.auth };
  const port = Number(new URL(berth.url).port);
  await round(berth.url, headers); // warm-up
  const quiet: Array<{ p50: number; p99: number; failed: number }> = [];
  const loud: typeof quiet = [];
  const reopened: string[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    quiet.push(await round(berth.url, headers));
    const a = await attack(port);
    loud.push(await round(berth.url, headers));
    reopened.push(await a.stop());
  }
  const sum = (xs: typeof quiet, k: 'failed') => xs.reduce((n, x) => n + x[k], 0);
  const q50 = median(quiet.map((x) => x.p50));
  const l50 = median(loud.map((x) => x.p50));
  console.log(`machine: ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; Berth at a 1,024 descriptor limit`);
  console.log(`${ROUNDS} rounds of ${REQUESTS} GET /v2/catalog, each on a new connection`);
  console.log(`without slow connections: p50 ${q50.toFixed(2)} ms, p99 ${median(quiet.map((x) => x.p99)).toFixed(2)} ms, failed ${sum(quiet, 'failed')}`);
  console.log(
    `with ${SLOW} slow connections: p50 ${l50.toFixed(2)} ms, p99 ${median(loud.map((x) => x.p99)).toFixed(2)} ms, failed ${sum(loud, 'failed')} (connections the attacker opened per round: ${reopened.join(', ')})`,
  );
  console.log(`ratio p50 with/without: ${(l50 / q50).toFixed(2)}; Berth still running: ${berth.child.exitCode === null}`);
} finally {
  if (berth.child.exitCode === null) {
    berth.child.kill('SIGTERM');
    await berth.exited;
  }
  await db.drop();
}
