// A rate-limited work queue as client-go has one: a key is processed by one
// worker at a time; a key added while it is processed runs again afterwards; a
// failing key backs off exponentially (1 s doubling to 60 s, with jitter) until
// it succeeds; `addAfter` schedules a key (polling a foreign broker).
import { setTimeout as delay } from 'node:timers/promises';

const BASE_MS = 1000;
const CAP_MS = 60_000;

export class WorkQueue {
  readonly #queue = new Set<string>();
  /** Keys whose broker operation just ended: taken before the rest, so Ready follows the end without waiting its turn. */
  readonly #urgent = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #dirty = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  #wake: (() => void) | undefined;
  #stopped = false;

  add(key: string, urgent = false): void {
    if (this.#stopped) return;
    if (this.#processing.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (urgent) {
      this.#queue.delete(key);
      this.#urgent.add(key);
    } else if (!this.#urgent.has(key)) this.#queue.add(key);
    this.#wake?.();
  }

  /** Adds `key` after `ms` (an earlier timer for the key is kept if it fires sooner). */
  addAfter(key: string, ms: number): void {
    if (this.#stopped) return;
    const existing = this.#timers.get(key);
    const at = Date.now() + ms;
    if (existing && (existing as unknown as { at: number }).at <= at) return;
    if (existing) clearTimeout(existing);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, ms);
    (timer as unknown as { at: number }).at = at;
    timer.unref();
    this.#timers.set(key, timer);
  }

  /** Schedules `key` again with exponential backoff; returns the delay. */
  backoff(key: string): number {
    const n = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, n);
    const ms = Math.min(CAP_MS, BASE_MS * 2 ** (n - 1)) * (0.8 + Math.random() * 0.4);
    this.addAfter(key, ms);
    return ms;
  }

  /** The key succeeded: its next failure starts the backoff anew. */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  get length(): number {
    return this.#queue.size + this.#urgent.size;
  }

  /** Runs `workers` loops calling `handle` for each key until stop(). */
  async run(workers: number, handle: (key: string) => Promise<void>): Promise<void> {
    await Promise.all(Array.from({ length: workers }, () => this.#worker(handle)));
  }

  async #worker(handle: (key: string) => Promise<void>): Promise<void> {
    while (!this.#stopped) {
      const key = (this.#urgent.values().next().value ?? this.#queue.values().next().value) as string | undefined;
      if (key === undefined) {
        await new Promise<void>((resolve) => {
          const previous = this.#wake;
          this.#wake = () => {
            this.#wake = undefined;
            previous?.();
            resolve();
          };
        });
        continue;
      }
      this.#urgent.delete(key);
      this.#queue.delete(key);
      this.#processing.add(key);
      try {
        await handle(key);
      } finally {
        this.#processing.delete(key);
        if (this.#dirty.delete(key)) this.add(key);
      }
      // Let timers and I/O callbacks in between keys.
      await delay(0);
    }
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    this.#wake?.();
  }
}
