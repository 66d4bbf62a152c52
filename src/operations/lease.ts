// The lease a worker holds on the operation it runs, kept alive while it works
// (docs/operations.md, "Renewal"): renewed every quarter of its length, never
// past the operation's deadline; the work is aborted when the lease is lost or
// cannot be renewed in time, before another worker may take the operation, and
// when the deadline passes.
import type { OperationQueue } from '../store/queue.ts';
import { LeaseLost } from './run.ts';

export class DeadlineExceeded extends Error {}

export class Lease {
  readonly #renewTimer: NodeJS.Timeout;
  readonly #deadlineTimer: NodeJS.Timeout | undefined;
  readonly #renewNow: () => Promise<void>;

  constructor(
    queue: OperationQueue,
    op: { id: string; deadlineAt: Date | undefined },
    owner: string,
    leaseMs: number,
    controller: AbortController,
  ) {
    // When the last successful renewal was *sent*: the lease runs from about then.
    let lastRenewal = Date.now();
    let renewing = false;
    this.#renewNow = async () => {
      // Never past the deadline: the lease ends with it at the latest, so a worker stuck beyond
      // it (a statement that ignores the abort) cannot keep the operation from being failed.
      const ms = op.deadlineAt ? Math.min(leaseMs, op.deadlineAt.getTime() - Date.now()) : leaseMs;
      if (ms <= 0 || controller.signal.reason instanceof DeadlineExceeded) return;
      // Database unreachable (or too slow to answer): keep working only while our lease
      // is surely still valid, and stop before it can expire and be taken over elsewhere.
      if (Date.now() - lastRenewal > leaseMs * 0.8) {
        controller.abort(new LeaseLost('the lease could not be renewed in time (database unreachable)'));
        return;
      }
      if (renewing) return;
      renewing = true;
      const sent = Date.now();
      try {
        if (await queue.renew(op.id, owner, ms)) lastRenewal = sent;
        else controller.abort(new LeaseLost('the operation was ended or taken over elsewhere'));
      } catch {
        // Checked on the next tick.
      } finally {
        renewing = false;
      }
    };
    this.#renewTimer = setInterval(this.#renewNow, Math.max(50, Math.floor(leaseMs / 4)));
    if (op.deadlineAt) {
      const left = op.deadlineAt.getTime() - Date.now();
      this.#deadlineTimer = setTimeout(() => controller.abort(new DeadlineExceeded()), Math.max(0, left));
    }
  }

  /** Renews now: an operation that was halted or taken over stops at once. */
  recheck(): void {
    void this.#renewNow();
  }

  release(): void {
    clearInterval(this.#renewTimer);
    if (this.#deadlineTimer) clearTimeout(this.#deadlineTimer);
  }
}
