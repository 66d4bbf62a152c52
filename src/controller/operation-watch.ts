// Follows OSB operations in progress outside the work queue's workers, and puts
// the resource's key back on the queue when one ends. Against Berth it long-polls
// (`X-Berth-Wait-Seconds`, src/broker/long-poll.ts), so the end reaches the
// controller within milliseconds; a broker that does not echo the header is
// polled as it asks with Retry-After, from 1 s up to a 60 s cap (doubling when it
// sends none).
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { CallOptions, LastOperation, OsbClient } from '../osb-client/index.ts';

const LONG_POLL_SECONDS = 25;
/**
 * Long polls held at once, at most: each holds a connection to the broker (and one of Berth's BERTH_MAX_CONNECTIONS).
 * Operations beyond it are polled as Retry-After says until a long poll is free.
 */
export const MAX_LONG_POLLS = 128;
const FLOOR_MS = 1000;
const CAP_MS = 60_000;

/** The call options of one last_operation poll: a long poll (with time to answer) when `waitSeconds` is positive. */
export function pollOptions(waitSeconds: number, onHeaders: (h: Record<string, unknown>) => void): CallOptions {
  return waitSeconds > 0 ? { headers: { 'X-Berth-Wait-Seconds': String(waitSeconds) }, timeoutMs: (waitSeconds + 30) * 1000, onHeaders } : { onHeaders };
}

export class OperationWatches {
  readonly #active = new Map<string, AbortController>();
  readonly #onEnded: (key: string) => void;
  readonly #log: Logger;
  #stopped = false;
  #longPolls = 0;

  readonly #waitSeconds: number;

  constructor(onEnded: (key: string) => void, log: Logger, longPoll = true) {
    this.#onEnded = onEnded;
    this.#log = log;
    this.#waitSeconds = longPoll ? LONG_POLL_SECONDS : 0;
  }

  get size(): number {
    return this.#active.size;
  }

  watch(key: string, client: OsbClient, poll: (client: OsbClient, waitSeconds: number, onHeaders: (h: Record<string, unknown>) => void) => Promise<LastOperation>): void {
    if (this.#stopped || this.#active.has(key)) return;
    const stop = new AbortController();
    this.#active.set(key, stop);
    void this.#follow(key, client, poll, stop.signal).finally(() => {
      this.#active.delete(key);
      if (!stop.signal.aborted) this.#onEnded(key);
    });
  }

  async #follow(key: string, client: OsbClient, poll: (client: OsbClient, waitSeconds: number, onHeaders: (h: Record<string, unknown>) => void) => Promise<LastOperation>, signal: AbortSignal): Promise<void> {
    let backoffMs = FLOOR_MS;
    for (;;) {
      let waited = false;
      let op: LastOperation;
      const long = this.#waitSeconds > 0 && this.#longPolls < MAX_LONG_POLLS;
      if (long) this.#longPolls++;
      try {
        op = await poll(client, long ? this.#waitSeconds : 0, (h) => (waited = h['x-berth-wait-seconds'] !== undefined));
      } catch (err) {
        // The reconcile that follows reports it; here only the timing matters.
        this.#log.debug({ err, key }, 'polling an operation failed; the reconcile looks again');
        return;
      } finally {
        if (long) this.#longPolls--;
      }
      if (op.state !== 'in progress' || signal.aborted) return;
      if (waited) continue;
      const ms = op.retryAfterSeconds !== undefined ? Math.min(CAP_MS, Math.max(FLOOR_MS, op.retryAfterSeconds * 1000)) : backoffMs;
      backoffMs = Math.min(CAP_MS, backoffMs * 2);
      try {
        await delay(ms, undefined, { signal });
      } catch {
        return;
      }
    }
  }

  stop(): void {
    this.#stopped = true;
    for (const c of this.#active.values()) c.abort();
    this.#active.clear();
  }
}
