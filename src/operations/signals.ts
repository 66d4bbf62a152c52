// "An operation ended (or was handed back)": the signal that wakes a
// synchronous request waiting for its operation, an idle worker that can now
// claim the next operation of the same instance, and an execution whose
// operation was halted by a request. In one process it is an event; across
// replicas a relay (Postgres LISTEN/NOTIFY, src/db/notifications.ts) carries
// it. Signals only shorten waits: every waiter also re-checks the database
// on a slow timer, so a lost signal (relay reconnecting, a replica killed
// between its commit and its NOTIFY) costs time, never correctness.
import { EventEmitter, once } from 'node:events';

/** Carries signals to the other replicas. */
export interface SignalRelay {
  publish(operationId: string): Promise<void>;
}

const ENDED = 'ended';

export class OperationSignals {
  readonly #events = new EventEmitter().setMaxListeners(0);
  #relay: SignalRelay | undefined;

  /** Sends later signals to the other replicas too. */
  relayTo(relay: SignalRelay | undefined): void {
    this.#relay = relay;
  }

  /** This process ended (or handed back) `operationId`, or a request halted it: wake its waiters here and elsewhere. */
  ended(operationId: string): void {
    this.received(operationId);
    // Best effort: the other replicas' fallback polls cover a lost NOTIFY.
    this.#relay?.publish(operationId).catch(() => {});
  }

  /** A signal from another replica (or from this one). */
  received(operationId: string): void {
    this.#events.emit(ENDED, operationId);
    this.#events.emit(`${ENDED}:${operationId}`);
  }

  /** Every signal, whatever the operation (the engine wakes a worker on each). */
  onEnded(listener: (operationId: string) => void): void {
    this.#events.on(ENDED, listener);
  }

  /**
   * Resolves true at the next signal for `operationId`, or false when `signal`
   * aborts (a timeout, or the caller no longer waiting). Subscribes at once,
   * so a signal sent between this call and the await is not missed.
   */
  next(operationId: string, signal: AbortSignal): Promise<boolean> {
    return once(this.#events, `${ENDED}:${operationId}`, { signal }).then(
      () => true,
      () => false,
    );
  }
}
