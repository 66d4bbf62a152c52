// What every table store shares: the connection it runs on (the pool, or one
// transaction: see unit-of-work.ts) and the SecretBox that seals its secret
// columns. Every ciphertext is sealed for its cell (see secret-box.ts).
import type { Knex } from 'knex';
import type { SealedField, SecretBox } from '../secret-box.ts';

/** The pool, or a transaction. */
export type Db = Knex | Knex.Transaction;

/** SQL NULL read as undefined. */
export const opt = <T>(v: T | null): T | undefined => (v === null ? undefined : v);

export abstract class Table {
  protected readonly db: Db;
  protected readonly box: SecretBox;
  constructor(db: Db, box: SecretBox) {
    this.db = db;
    this.box = box;
  }

  /** Seals `value` for its cell; undefined is stored as NULL. */
  protected seal(value: unknown, field: SealedField): string | null {
    return value === undefined ? null : this.box.seal(value, field);
  }
}

/** A statement prepared once per connection (by name) and then only bound and executed. */
export interface PreparedStatement {
  /** Unique per SQL text: Postgres keeps it per connection under this name. */
  name: string;
  /** With $1, $2, … each used once, in order. */
  text: string;
}

/**
 * Runs a read on a pooled connection as a named prepared statement: Postgres
 * parses and plans it once per connection instead of on every call, and knex's
 * per-query machinery (builder, bindings, runner) is skipped. For the reads
 * platforms poll (last_operation, re-sent PUTs), where that cost is a large
 * share of the request (bench/broker.bench.ts). In a transaction it runs
 * through knex on the transaction's connection, unprepared.
 */
export async function preparedRows<R = Record<string, any>>(db: Db, statement: PreparedStatement, values: unknown[]): Promise<R[]> {
  if ((db as Knex.Transaction).isTransaction) {
    return (await db.raw(statement.text.replace(/\$\d+/g, '?'), values as Knex.RawBinding[])).rows as R[];
  }
  // knex's own pool, so there is one pool and one limit (BERTH_DB_POOL_SIZE); a connection that failed is
  // discarded by knex's validation as for any other query.
  const client = db.client as { acquireConnection(): Promise<PgConnection>; releaseConnection(c: PgConnection): Promise<void> };
  const connection = await client.acquireConnection();
  try {
    return (await connection.query({ name: statement.name, text: statement.text, values })).rows as R[];
  } finally {
    await client.releaseConnection(connection);
  }
}

interface PgConnection {
  query(q: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}
