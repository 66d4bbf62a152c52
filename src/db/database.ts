// Opens the database Berth keeps its state in: a real Postgres from
// DATABASE_URL, or an embedded PGlite served over the Postgres wire protocol
// so the same driver, SQL and migrations run in both modes.
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import type { Logger } from 'pino';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { migrationSource, migrationSourceWith, latestMigration, type MigrationContext } from '../../migrations/index.ts';

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
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const dir = join(opts.dataDir, 'pgdata');
  await mkdir(dir, { recursive: true });
  const pglite = await PGlite.create({ dataDir: dir });
  const server = new PGLiteSocketServer({ db: pglite, host: '127.0.0.1', port: 0, maxConnections: 4 });
  await server.start();
  const url = `postgres://postgres@${server.getServerConn()}/postgres`;
  // PGlite is one session behind the socket: statements of two connections can
  // interleave mid-protocol (one's Parse, the other's Bind), so every query
  // goes through a single connection.
  const knex = createKnex(url, 1, opts.log);
  return {
    knex,
    url,
    embedded: true,
    close: async () => {
      await knex.destroy();
      await server.stop();
      await pglite.close();
    },
  };
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
 * otherwise connect to it. Where Berth's user may not do that (it neither owns the database nor is a
 * superuser), logs what the operator must run instead. Never fails the start.
 */
export async function restrictStateDatabase(knex: Knex, log: Logger): Promise<void> {
  try {
    const { rows } = await knex.raw<{ rows: Array<{ name: string; open: boolean; allowed: boolean }> }>(
      `SELECT d.datname AS name,
              d.datacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(d.datacl) a WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT') AS open,
              pg_has_role(d.datdba, 'USAGE') OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS allowed
         FROM pg_database d WHERE d.datname = current_database()`,
    );
    const db = rows[0];
    if (!db?.open) return;
    if (!db.allowed) {
      log.warn(
        { database: db.name },
        `every role may connect to Berth's state database; its owner should run: REVOKE CONNECT, TEMPORARY ON DATABASE "${db.name.replace(/"/g, '""')}" FROM PUBLIC`,
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
  for (let attempt = 1; ; attempt++) {
    try {
      const [, applied] = (await knex.migrate.latest({ migrationSource: migrationSourceWith(context) })) as [number, string[]];
      return applied;
    } catch (err) {
      if (attempt >= 5 || !isConcurrentMigration(err)) throw err;
      await new Promise((r) => setTimeout(r, 100 * attempt + Math.random() * 200));
    }
  }
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
