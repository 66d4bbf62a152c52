// Starts Berth for a test: in-process (fast, for HTTP behaviour) or as a child
// process (for kill -9, SIGTERM and several replicas).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import { loadConfig } from '../../src/config.ts';
import { startBerth, type Berth } from '../../src/main.ts';
import { SecretBox } from '../../src/secret-box.ts';
import { OsbClient } from './osb-client.ts';

export const REPO = resolve(import.meta.dirname, '../..');
export const TEST_CREDENTIALS = { username: 'platform', password: 'p@ss:with:colons' };
export const TEST_KEYS = SecretBox.generateKeySpec('test');

export interface TestBerth {
  berth: Berth;
  client: OsbClient;
  stop(): Promise<void>;
}

/** Starts Berth in this process. Without `databaseUrl` it runs on an embedded database in a temp dir. */
export async function startTestBerth(opts: { databaseUrl?: string; catalogPath?: string; env?: Record<string, string> } = {}): Promise<TestBerth> {
  // Its own data folder unless the test names one; removed on stop (runs used to leave hundreds in /tmp).
  const ownDataDir = opts.env?.BERTH_DATA_DIR === undefined ? mkdtempSync(join(tmpdir(), 'berth-test-')) : undefined;
  const env: Record<string, string | undefined> = {
    PORT: '0',
    LOG_LEVEL: process.env.BERTH_TEST_LOG_LEVEL ?? 'silent',
    CATALOG_PATH: opts.catalogPath ?? join(REPO, 'catalog.yaml'),
    BROKER_USERNAME: TEST_CREDENTIALS.username,
    BROKER_PASSWORD: TEST_CREDENTIALS.password,
    BERTH_ENCRYPTION_KEYS: TEST_KEYS,
    BERTH_DATA_DIR: ownDataDir,
    BERTH_POLL_INTERVAL_MS: '50',
    DATABASE_URL: opts.databaseUrl,
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...opts.env,
  };
  const berth = await startBerth(loadConfig(env));
  return {
    berth,
    client: new OsbClient(berth.url, TEST_CREDENTIALS),
    stop: async () => {
      await berth.stop(2000);
      if (ownDataDir) rmSync(ownDataDir, { recursive: true, force: true });
    },
  };
}

export interface BerthProcess {
  child: ChildProcess;
  pid: number;
  url: string;
  client: OsbClient;
  output: () => string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
}

/** Starts `berth serve` as a child process on a free port and waits until it answers /healthz. */
export async function spawnBerth(
  env: Record<string, string>,
  opts: { port?: number; timeoutMs?: number; repo?: string; launcher?: boolean } = {},
): Promise<BerthProcess> {
  const port = opts.port ?? (await freePort());
  // `repo`: another checkout's Berth (benchmarks compare two versions side by side).
  // `launcher`: started by bin/berth, as `npm start` starts it (its node options; bin/with-node24.mjs and its
  // compile cache). bin/berth execs node, so the child's pid is Berth's.
  const repo = opts.repo ?? REPO;
  const [command, args] = opts.launcher ? [join(repo, 'bin/berth'), ['serve']] : [process.execPath, [join(repo, 'src/cli.ts'), 'serve']];
  const child = spawn(command, args, {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: String(port),
      LOG_LEVEL: 'info',
      BROKER_USERNAME: TEST_CREDENTIALS.username,
      BROKER_PASSWORD: TEST_CREDENTIALS.password,
      BERTH_ENCRYPTION_KEYS: TEST_KEYS,
      CATALOG_PATH: join(REPO, 'catalog.yaml'),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = once(child, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`berth exited during start:\n${out}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`berth did not start within the timeout:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, pid: child.pid!, url, client: new OsbClient(url, TEST_CREDENTIALS), output: () => out, exited };
}

export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}
