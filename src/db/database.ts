// Opens the database Berth keeps its state in: a real Postgres from
// DATABASE_URL, or an embedded PGlite served over the Postgres wire protocol
// (on a private Unix socket) so the same driver, SQL and migrations run in both modes.
import { retry } from '../lib/retry.ts';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import type { Logger } from 'pino';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrationSource, migrationSourceWith, latestMigration, type MigrationContext } from './migrations/index.ts';
import { embeddedTemplate, seedDataDir } from './embedded-template.ts';

// int8 (counts, bigserial) as numbers: every value we keep fits comfortably.
pg.types.setTypeParser(20, (v) => Number.parseInt(v, 10));

export interface Database {
  knex: Knex;
  url: string;
  embedded: boolean;
  close(): Promise<void>;
}

export async function openDatabase(opts: { url?: string; dataDir: string; poolSize: number; log?: Logger }): Promise<Database> {
  if (opts.url) {
    const knex = createKnex(opts.url, opts.poolSize, opts.log);
    return { knex, url: opts.url, embedded: false, close: () => knex.destroy() };
  }
  return openEmbedded(opts.dataDir, true, opts.log);
}

async function openEmbedded(dataDir: string, fromTemplate: boolean, log?: Logger): Promise<Database> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  // PGlite has no authentication: it is served on a Unix socket in a directory
  // only Berth's user can enter, never on a TCP port another process could reach.
  // Checked before PGlite opens the files a running Berth may be using.
  const socket = await privateSocketPath(dataDir);
  const dir = join(dataDir, 'pgdata');
  if (fromTemplate) await seedDataDir(dir, buildMigratedDataDir);
  await mkdir(dir, { recursive: true });
  const pglite = await PGlite.create({ dataDir: dir });
  const server = new PGLiteSocketServer({ db: pglite, path: socket.path, maxConnections: 4 });
  await server.start();
  await chmod(socket.path, 0o600);
  // The host parameter (a directory) overrides the authority: pg connects to the socket in it.
  const url = `postgres://postgres@localhost/postgres?host=${encodeURIComponent(socket.dir)}`;
  // PGlite is one session behind the socket: statements of two connections can
  // interleave mid-protocol (one's Parse, the other's Bind), so every query
  // goes through a single connection.
  const knex = createKnex(url, 1, log);
  return {
    knex,
    url,
    embedded: true,
    close: async () => {
      await knex.destroy();
      await server.stop();
      await pglite.close();
      await socket.remove();
    },
  };
}

/** Builds (or finds) the template cluster first embedded starts copy; for `npm install`. */
export const prepareEmbeddedTemplate = (): Promise<string> => embeddedTemplate(buildMigratedDataDir);

async function buildMigratedDataDir(dataDir: string): Promise<void> {
  const db = await openEmbedded(dataDir, false);
  try {
    await migrateLatest(db.knex);
  } finally {
    await db.close();
  }
}

// libpq's naming, so pg finds the socket from its directory: <dir>/.s.PGSQL.<port>.
const SOCKET_NAME = '.s.PGSQL.5432';
// sun_path holds 108 bytes with the terminating NUL.
const MAX_SOCKET_PATH = 107;

/**
 * A mode-0700 directory for the PGlite socket: `<dataDir>/run`, or a private
 * temporary directory when that path is too long for a Unix socket. A socket
 * left by a killed process is removed; one that still answers means another
 * Berth is serving this data directory.
 */
async function privateSocketPath(dataDir: string): Promise<{ dir: string; path: string; remove(): Promise<void> }> {
  let dir = join(dataDir, 'run');
  let temporary = false;
  if (Buffer.byteLength(join(dir, SOCKET_NAME)) > MAX_SOCKET_PATH) {
    dir = await mkdtemp(join(tmpdir(), 'berth-pg-'));
    temporary = true;
  } else {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  }
  await chmod(dir, 0o700);
  const path = join(dir, SOCKET_NAME);
  if (await answers(path)) throw new Error(`another Berth process is serving the embedded database in ${dataDir}`);
  await rm(path, { force: true });
  return { dir, path, remove: () => rm(temporary ? dir : path, { recursive: true, force: true }) };
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

function createKnex(url: string, poolSize: number, log: Logger | undefined): Knex {
  // knex prints its warnings ("Connection Error: …", "Acquire connection error: <stack>", one per failed
  // attempt during an outage) with console.log unless given functions: they become JSON log lines.
  const db = log?.child({ component: 'database' });
  const line = (level: 'debug' | 'warn' | 'error') => (message: unknown) => {
    if (!db) return;
    if (typeof message !== 'string') return db[level]({ detail: message }, 'knex');
    const [first, ...stack] = message.split('\n');
    db[level](stack.length > 0 ? { stack: stack.join('\n') } : {}, first!);
  };
  return knexFactory({
    client: 'pg',
    connection: { connectionString: url, connectionTimeoutMillis: 5000 },
    pool: { min: 0, max: poolSize, acquireTimeoutMillis: 10000 },
    acquireConnectionTimeout: 10000,
    log: { debug: line('debug'), warn: line('warn'), error: line('error'), deprecate: line('warn') },
  });
}

/**
 * Closes Berth's state database to other roles: REVOKE CONNECT, TEMPORARY FROM PUBLIC (its owner and
 * superusers keep access). On a server shared with the postgres provisioner, binding roles could
 * otherwise connect to it. Only when Berth's user owns the database: a superuser pointed at a database
 * someone else owns (e.g. `postgres`) must not cut off the other roles that rely on PUBLIC, so there, as
 * where Berth may not, it logs what the owner should run instead. Never fails the start.
 */
export async function restrictStateDatabase(knex: Knex, log: Logger): Promise<void> {
  try {
    const { rows } = await knex.raw<{ rows: Array<{ name: string; open: boolean; allowed: boolean }> }>(
      `SELECT d.datname AS name,
              d.datacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(d.datacl) a WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT') AS open,
              d.datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user) AS allowed
         FROM pg_database d WHERE d.datname = current_database()`,
    );
    const db = rows[0];
    if (!db?.open) return;
    if (!db.allowed) {
      log.warn(
        { database: db.name },
        `every role may connect to Berth's state database; if only Berth uses it, its owner should run: REVOKE CONNECT, TEMPORARY ON DATABASE "${db.name.replace(/"/g, '""')}" FROM PUBLIC`,
      );
      return;
    }
    await knex.raw('REVOKE CONNECT, TEMPORARY ON DATABASE ?? FROM PUBLIC', [db.name]);
    log.info({ database: db.name }, 'closed the state database to other roles (REVOKE CONNECT, TEMPORARY FROM PUBLIC)');
  } catch (err) {
    // e.g. another replica did the same at the same moment ("tuple concurrently updated")
    log.warn({ err: (err as Error).message }, 'could not close the state database to other roles');
  }
}

/**
 * Applies pending migrations. Replicas started together on an empty database
 * race to create knex's bookkeeping tables; the losers fail with "already
 * exists" and simply try again, by when the winner's work is visible (knex's
 * lock row makes them wait for a migration in progress).
 */
export async function migrateLatest(knex: Knex, context: MigrationContext = {}): Promise<string[]> {
  // A start on an up-to-date database (nearly every start) costs one query
  // instead of knex's dozen for table checks, locking and listing.
  if (await allMigrationsRecorded(knex)) return [];
  return retry(
    async () => {
      const [, applied] = (await knex.migrate.latest({ migrationSource: migrationSourceWith(context) })) as [number, string[]];
      return applied;
    },
    { attempts: 5, retryable: isConcurrentMigration, delayMs: (attempt) => 100 * attempt + Math.random() * 200 },
  );
}

async function allMigrationsRecorded(knex: Knex): Promise<boolean> {
  let recorded: Set<string>;
  try {
    recorded = new Set(await knex('knex_migrations').pluck('name'));
  } catch {
    return false; // no bookkeeping table yet
  }
  const migrations = await migrationSource.getMigrations([]);
  return migrations.every((m) => recorded.has(migrationSource.getMigrationName(m)));
}

function isConcurrentMigration(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  // unique_violation (pg_type row of a table created concurrently), duplicate_table, duplicate_object
  return e?.code === '23505' || e?.code === '42P07' || e?.code === '42710' || /Migration table is already locked/.test(e?.message ?? '');
}

export async function migrationsApplied(knex: Knex): Promise<boolean> {
  const [, pending] = (await knex.migrate.list({ migrationSource })) as [unknown[], unknown[]];
  const done = await knex('knex_migrations').where({ name: latestMigration }).first();
  return pending.length === 0 && done !== undefined;
}
