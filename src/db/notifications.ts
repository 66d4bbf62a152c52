// Postgres LISTEN/NOTIFY on one dedicated connection (outside knex's pool: a
// pooled connection is handed to other queries and its LISTEN would be lost).
// The connection is re-opened with backoff whenever it fails, so a database
// restart or a reset connection never takes the process down; while it is
// down, messages are simply not delivered (their receivers re-check on a timer).
// Messages this process published come back to it too and are skipped.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from 'pino';

export class PgNotifications {
  readonly #url: string;
  readonly #channel: string;
  readonly #log: Logger;
  readonly #onMessage: (payload: string) => void;
  /** Prefix of our own messages (a message is `<origin> <payload>`). */
  readonly #origin = randomUUID();
  readonly #stop = new AbortController();
  #client: pg.Client | undefined;
  #running: Promise<void> | undefined;

  constructor(opts: { url: string; channel: string; log: Logger; onMessage: (payload: string) => void }) {
    this.#url = opts.url;
    this.#channel = opts.channel;
    this.#log = opts.log.child({ component: 'notifications', channel: opts.channel });
    this.#onMessage = opts.onMessage;
  }

  /** Connects and listens in the background, reconnecting until stop(). */
  start(): void {
    this.#running ??= this.#keepListening();
  }

  /** Sends `payload` to every listener on the channel (other replicas); fails while the connection is down. */
  async publish(payload: string): Promise<void> {
    const client = this.#client;
    if (!client) throw new Error('not connected');
    await client.query('SELECT pg_notify($1, $2)', [this.#channel, `${this.#origin} ${payload}`]);
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#client?.end().catch(() => {});
    await this.#running;
  }

  async #keepListening(): Promise<void> {
    const signal = this.#stop.signal;
    const stopped = new Promise<undefined>((r) => signal.addEventListener('abort', () => r(undefined), { once: true }));
    for (let delay = 200; !signal.aborted; delay = Math.min(delay * 2, 5000)) {
      const client = new pg.Client({ connectionString: this.#url, connectionTimeoutMillis: 5000, keepAlive: true });
      const lost = new Promise<Error>((resolve) => {
        client.on('error', resolve);
        client.on('end', () => resolve(new Error('connection closed')));
      });
      client.on('notification', (n) => {
        const [origin, payload] = [n.payload?.slice(0, 36), n.payload?.slice(37)];
        if (origin !== this.#origin && payload) this.#onMessage(payload);
      });
      try {
        await client.connect();
        await client.query(`LISTEN ${pg.escapeIdentifier(this.#channel)}`);
        this.#client = client;
        if (delay > 200) this.#log.info('listening again');
        delay = 200;
        const err = await Promise.race([lost, stopped]);
        if (!err) break;
        this.#log.warn({ err: err.message }, 'notification connection lost; reconnecting');
      } catch (err) {
        if (signal.aborted) break;
        this.#log.warn({ err: (err as Error).message, retryInMs: delay }, 'cannot listen for notifications; retrying');
      } finally {
        if (this.#client === client) this.#client = undefined;
        client.end().catch(() => {});
      }
      await sleep(delay, undefined, { signal }).catch(() => {});
    }
  }
}
