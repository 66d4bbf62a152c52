// Opens the database Berth keeps its state in: a real Postgres from
// DATABASE_URL, or an embedded PGlite served over the Postgres wire protocol
// so the same driver, SQL and migrations run in both modes.
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
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

export async function openDatabase(opts: { url?: string; dataDir: string; poolSize: number }): Promise<Database> {
  if (opts.url) {
    const knex = createKnex(opts.url, opts.poolSize);
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
  const knex = createKnex(url, 1);
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

function createKnex(url: string, poolSize: number): Knex {
  return knexFactory({
    client: 'pg',
    connection: { connectionString: url, connectionTimeoutMillis: 5000 },
    pool: { min: 0, max: poolSize, acquireTimeoutMillis: 10000 },
    acquireConnectionTimeout: 10000,
  });
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
