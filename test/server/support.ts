// In-process Berth on a fresh database of the shared Postgres server, with
// every log line it writes captured as parsed JSON.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config.ts';
import { startBerth, type Berth } from '../../src/main.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { REPO, TEST_CREDENTIALS, TEST_KEYS } from '../support/berth.ts';
import { OsbClient } from '../support/osb-client.ts';
import { createTestDatabase } from '../support/postgres.ts';

export interface LoggedBerth {
  berth: Berth;
  client: OsbClient;
  /** Every line logged so far, parsed. */
  lines: Array<Record<string, any>>;
  /** Stops Berth and drops its database. */
  stop(): Promise<void>;
}

export function baseEnv(databaseUrl: string | undefined, env: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    PORT: '0',
    LOG_LEVEL: 'debug',
    CATALOG_PATH: join(REPO, 'catalog.yaml'),
    BROKER_USERNAME: TEST_CREDENTIALS.username,
    BROKER_PASSWORD: TEST_CREDENTIALS.password,
    BERTH_ENCRYPTION_KEYS: TEST_KEYS,
    BERTH_DATA_DIR: mkdtempSync(join(tmpdir(), 'berth-test-')),
    BERTH_POLL_INTERVAL_MS: '50',
    DATABASE_URL: databaseUrl,
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...env,
  };
}

export async function startLoggedBerth(env: Record<string, string | undefined> = {}, opts: { databaseUrl?: string } = {}): Promise<LoggedBerth> {
  const db = opts.databaseUrl ? undefined : await createTestDatabase('berth_srv');
  const lines: Array<Record<string, any>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  const started = baseEnv(opts.databaseUrl ?? db!.url, env);
  // the data folder baseEnv made, removed on stop (unless the test named its own)
  const ownDataDir = env.BERTH_DATA_DIR === undefined ? started.BERTH_DATA_DIR : undefined;
  const config = loadConfig(started);
  let berth: Berth;
  try {
    berth = await startBerth(config, { log: createLogger(config.logLevel, sink) });
  } catch (err) {
    await db?.drop();
    throw err;
  }
  return {
    berth,
    client: new OsbClient(berth.url, TEST_CREDENTIALS),
    lines,
    stop: async () => {
      try {
        await berth.stop(2000);
      } finally {
        await db?.drop();
        if (ownDataDir) rmSync(ownDataDir, { recursive: true, force: true });
      }
    },
  };
}

/** A TCP proxy in front of a server; cut() refuses new connections and resets the open ones (an outage). */
export async function tcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<{ port: number; cut(): Promise<void>; close(): Promise<void> }> {
  const { createServer, connect } = await import('node:net');
  const sockets = new Set<import('node:net').Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  let closed: Promise<void> | undefined;
  const cut = () => {
    closed ??= new Promise<void>((r) => server.close(() => r()));
    for (const s of sockets) s.resetAndDestroy();
    return closed;
  };
  return { port, cut, close: cut };
}
