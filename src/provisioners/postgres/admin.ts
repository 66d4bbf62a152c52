// Admin connections to PostgreSQL servers for the `postgres` provisioner: a
// small pool per server for the maintenance database, short-lived clients for
// one database, and cancellation: when an operation's signal aborts, the
// statement in flight is cancelled on the server (pg_cancel_backend), so no
// statement of a worker outlives its hold on the operation. A connection that
// fails is discarded, never left to emit an unhandled 'error'.
import pg from 'pg';
import type { Logger } from 'pino';
import { PermanentError } from '../../osb/errors.ts';
import { adminStep, cancellable, urlWith, type DatabaseServer } from '../sql/server.ts';

/** SQLSTATEs that retrying will not fix: bad admin credentials, missing privileges, unsupported server, invalid values. */
const PERMANENT_CODES = new Set(['28P01', '28000', '3D000', '42501', '42601', '0A000', '58P01', '22023']);

/** A statement that waits on an app's locks gives up (and the operation retries) instead of hanging. */
const ADMIN_LOCK_TIMEOUT_MS = 20_000;
/** No admin statement runs longer, even when its cancel cannot reach the server (the server ends it itself). */
const ADMIN_STATEMENT_TIMEOUT_MS = 120_000;

export class PostgresAdmin {
  readonly #log: Logger;
  readonly #pools = new Map<string, { url: string; pool: pg.Pool }>();

  constructor(log: Logger) {
    this.#log = log;
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.pool.end().catch(() => {})));
  }

  #pool(server: DatabaseServer): pg.Pool {
    let entry = this.#pools.get(server.name);
    if (entry && entry.url !== server.adminUrl) {
      // The admin URL changed (a rotated secret file): start over with the new one.
      void entry.pool.end().catch(() => {});
      entry = undefined;
    }
    if (!entry) {
      const pool = new pg.Pool({
        ...adminClientOptions(server.adminUrl),
        max: 4,
        idleTimeoutMillis: 10_000,
        allowExitOnIdle: true,
      });
      pool.on('error', (err) => this.#log.warn({ err: err.message, server: server.name }, 'idle admin connection failed'));
      entry = { url: server.adminUrl, pool };
      this.#pools.set(server.name, entry);
    }
    return entry.pool;
  }

  /**
   * Runs `fn` on an admin connection to the server's maintenance database. When `signal` aborts
   * (deadline, halt, lost lease, shutdown), the statement in flight is cancelled on the server, so no
   * statement of this worker outlives its hold on the operation.
   */
  async run<T>(server: DatabaseServer, signal: AbortSignal, fn: (c: pg.ClientBase) => Promise<T>): Promise<T> {
    signal.throwIfAborted();
    let client: pg.PoolClient;
    try {
      client = await this.#pool(server).connect();
    } catch (err) {
      throw classify(err, server);
    }
    // A checked-out client has no listener of the pool's: without this one, a connection reset
    // mid-statement is an unhandled 'error' event, which ends the process.
    let broken: Error | undefined;
    const onError = (err: Error) => {
      broken ??= err;
      this.#log.debug({ err: err.message, server: server.name }, 'admin connection failed');
    };
    client.on('error', onError);
    try {
      const result = await cancellable(fn(client), signal, () => this.#cancel(server, client));
      signal.throwIfAborted();
      return result;
    } catch (err) {
      // Aborted (the connection may be mid-statement) or a connection-level failure: do not reuse the client.
      if (signal.aborted || (!codeOf(err) && !(err instanceof PermanentError))) broken ??= err instanceof Error ? err : new Error(String(err));
      signal.throwIfAborted();
      throw classify(err, server);
    } finally {
      // A discarded client keeps the listener: it may still report the failure while it closes.
      if (!broken) client.removeListener('error', onError);
      client.release(broken);
    }
  }

  /** Runs `fn` on an admin connection to one database (short-lived: that database may be dropped next). */
  async inDatabase<T>(server: DatabaseServer, database: string, signal: AbortSignal, fn: (c: pg.ClientBase) => Promise<T>): Promise<T> {
    signal.throwIfAborted();
    const client = new pg.Client(adminClientOptions(urlWith(server.adminUrl, { database })));
    client.on('error', (err) => this.#log.debug({ err: err.message, server: server.name }, 'admin connection failed'));
    try {
      return await adminStep(
        {
          prepare: async () => {
            await client.connect();
          },
          work: () => fn(client),
          cancel: () => this.#cancel(server, client),
        },
        signal,
        (err) => classify(err, server),
      );
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** Cancels what `client` is running (pg_cancel_backend from a separate connection). Best effort. */
  async #cancel(server: DatabaseServer, client: pg.ClientBase): Promise<void> {
    const pid = (client as unknown as { processID?: unknown }).processID;
    if (typeof pid !== 'number') return;
    const c = new pg.Client(adminClientOptions(server.adminUrl));
    c.on('error', () => {});
    try {
      await c.connect();
      const { rows } = await c.query<{ cancelled: boolean }>('SELECT pg_cancel_backend($1) AS cancelled', [pid]);
      this.#log.debug({ server: server.name, pid, cancelled: rows[0]?.cancelled }, 'cancelled an admin statement');
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'cancelling an admin statement failed');
    } finally {
      await c.end().catch(() => {});
    }
  }
}

function adminClientOptions(connectionString: string): pg.ClientConfig {
  return {
    connectionString,
    connectionTimeoutMillis: 10_000,
    lock_timeout: ADMIN_LOCK_TIMEOUT_MS,
    statement_timeout: ADMIN_STATEMENT_TIMEOUT_MS,
    // Client side, for a server that stopped answering altogether (the connection is then discarded).
    query_timeout: ADMIN_STATEMENT_TIMEOUT_MS + 10_000,
    application_name: 'berth',
  };
}

export function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function classify(err: unknown, server: DatabaseServer): unknown {
  if (err instanceof PermanentError) return err;
  const code = codeOf(err);
  if (code && PERMANENT_CODES.has(code)) {
    return new PermanentError(`postgres server "${server.name}": ${(err as Error).message} (SQLSTATE ${code})`, { cause: err });
  }
  return err;
}

