// The CLI's start-up: wall time from spawning to exit of `berth --help` and `berth get plans`
// (through bin/berth, as a user runs them), against two baselines in their own processes:
// a bare `node -e 0`, and a node that loads what every `berth` command loaded before the
// commands were split (src/cli/server.ts: the broker, express, knex, pino, the provisioners).
// BENCH_ROUNDS interleaved rounds; prints medians and ratios.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, spawnBerth } from '../test/support/berth.ts';
import { PATH } from '../test/cli/support.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const dir = mkdtempSync(join(tmpdir(), 'berth-bench-cli-'));
const broker = await spawnBerth({ BERTH_DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'warn' });
const env = {
  PATH,
  HOME: dir,
  XDG_CONFIG_HOME: join(dir, 'config'),
  BERTH_BROKER_URL: broker.url,
  BERTH_BROKER_USERNAME: 'platform',
  BERTH_BROKER_PASSWORD: 'p@ss:with:colons',
};

const cases: Record<string, string[]> = {
  'node -e 0 (baseline)': [process.execPath, '-e', '0'],
  // Through the same launcher (and so the same compile cache) as bin/berth; the module only exports.
  'load src/cli/server.ts (before: every command)': [process.execPath, join(REPO, 'bin/with-node24.mjs'), join(REPO, 'src/cli/server.ts')],
  'berth --help': [join(REPO, 'bin/berth'), '--help'],
  'berth get plans': [join(REPO, 'bin/berth'), 'get', 'plans'],
};
const times: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));

try {
  for (let round = 0; round < ROUNDS + 1; round++) {
    for (const [name, [cmd, ...args]] of Object.entries(cases)) {
      const started = performance.now();
      const r = spawnSync(cmd!, args, { env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
      const ms = performance.now() - started;
      if (r.status !== 0) throw new Error(`${name} exited with ${r.status}: ${r.stderr}`);
      if (round > 0) times[name]!.push(ms); // round 0 warms the compile cache and the page cache
    }
  }
} finally {
  broker.child.kill('SIGTERM');
  await broker.exited;
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = median(times['node -e 0 (baseline)']!);
const before = median(times['load src/cli/server.ts (before: every command)']!);
console.log(`CLI start-up, ${ROUNDS} interleaved rounds, load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`);
console.log('| command | median | vs node -e 0 | vs loading the broker |');
console.log('| --- | --- | --- | --- |');
for (const [name, xs] of Object.entries(times)) {
  const m = median(xs);
  console.log(`| ${name} | ${(m / 1000).toFixed(2)} s | ${(m / base).toFixed(1)}× | ${(m / before).toFixed(2)}× |`);
}
