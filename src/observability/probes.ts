/**
 * Wraps `compute` so that it runs at most once per `intervalMs`: callers in
 * between share the last result, and callers during a run share that run.
 * The interval counts from the end of a run, so a slow database is never asked
 * again before it has answered.
 */
export function atMostEvery<T>(intervalMs: number, compute: () => Promise<T>): () => Promise<T> {
  let last: Promise<T> | undefined;
  let running = false;
  let endedAt = 0;
  return () => {
    if (last && (running || Date.now() - endedAt < intervalMs)) return last;
    running = true;
    last = compute().finally(() => {
      running = false;
      endedAt = Date.now();
    });
    return last;
  };
}
