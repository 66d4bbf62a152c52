// Embedded mode's start time: from spawning `bin/berth serve` to its first 200 on
// /healthz, for a first start into an empty data directory and for a restart
// on the same directory. Baseline: PGlite initialising a cluster in an empty
// directory (what every first start paid before it was seeded from a
// template), in its own process. BENCH_ROUNDS interleaved rounds; prints
// medians and the ratio baseline / first start. Targets: first start ≤ 5 s,
// restart ≤ 2 s on the development machine.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, TEST_CREDENTIALS, TEST_KEYS, freePort } from '../test/support/berth.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

async function timeBaseline(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-initdb-'));
  try {
    const started = performance.now();
    const child = spawn(process.execPath, [join(REPO, 'bench/support/pglite-initdb.ts'), join(dir, 'pgdata')], { stdio: 'inherit' });
    const [code] = await once(child, 'exit');
    if (code !== 0) throw new Error(`the PGlite baseline exited with ${code}`);
    return performance.now() - started;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Spawns `bin/berth serve` as a user would (through bin/with-node24.mjs), until /healthz answers 200. */
async function timeStart(dataDir: string): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, [join(REPO, 'bin/with-node24.mjs'), join(REPO, 'src/cli.ts'), 'serve'], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: String(port),
      LOG_LEVEL: 'warn',
      BERTH_DATA_DIR: dataDir,
      BROKER_USERNAME: TEST_CREDENTIALS.username,
      BROKER_PASSWORD: TEST_CREDENTIALS.password,
      BERTH_ENCRYPTION_KEYS: TEST_KEYS,
      CATALOG_PATH: join(REPO, 'catalog.yaml'),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = once(child, 'exit');
  try {
    while (!(await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false))) {
      if (child.exitCode !== null) throw new Error('berth exited during start');
      await new Promise((r) => setTimeout(r, 20));
    }
    return performance.now() - started;
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

// Warm-up: the first start on a machine without a template builds it (as `npm install` does).
const warm = mkdtempSync(join(tmpdir(), 'berth-bench-start-'));
const warmMs = await timeStart(warm);
rmSync(warm, { recursive: true, force: true });

const baseline: number[] = [];
const first: number[] = [];
const restart: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  baseline.push(await timeBaseline());
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-bench-start-'));
  try {
    first.push(await timeStart(dataDir));
    restart.push(await timeStart(dataDir));
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

process.stdout.write(
  `${ROUNDS} rounds; ${availableParallelism()} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ` +
    `warm-up start (builds the template when missing): ${s(warmMs)}\n` +
    `baseline, PGlite initdb in an empty directory: median ${s(median(baseline))} (${baseline.map(s).join(', ')})\n` +
    `Berth first start, empty data directory:       median ${s(median(first))} (${first.map(s).join(', ')})\n` +
    `Berth restart, same data directory:            median ${s(median(restart))} (${restart.map(s).join(', ')})\n` +
    `ratio (baseline / first start): ${(median(baseline) / median(first)).toFixed(1)}\n`,
);
