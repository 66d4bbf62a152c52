// The one retry helper: runs `work` until it succeeds or the policy gives up,
// waiting between attempts with node:timers/promises (abortable). Used for
// in-process retries only; an operation's own retries are persisted by the
// queue (next_attempt_at), which no in-process helper can do.
import { setTimeout as delay } from 'node:timers/promises';

export interface RetryPolicy {
  /** The wait after failed attempt `attempt` (1-based) before the next one. */
  delayMs(attempt: number): number;
  /** At most this many attempts (default: no limit). */
  attempts?: number;
  /** No new attempt once this time (ms since the epoch) has passed. */
  until?: number;
  /** Whether an error is worth another attempt (default: every error is). */
  retryable?(err: unknown): boolean;
  /** Aborts the wait between attempts (the wait then rejects with the abort reason). */
  signal?: AbortSignal;
}

/** Runs `work(attempt)` until it resolves; rethrows the last error when the policy gives up. */
export async function retry<T>(work: (attempt: number) => Promise<T>, policy: RetryPolicy): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work(attempt);
    } catch (err) {
      const exhausted = (policy.attempts !== undefined && attempt >= policy.attempts) || (policy.until !== undefined && Date.now() > policy.until);
      if (exhausted || (policy.retryable !== undefined && !policy.retryable(err))) throw err;
      await delay(policy.delayMs(attempt), undefined, { signal: policy.signal }).catch(() => policy.signal?.throwIfAborted());
    }
  }
}
