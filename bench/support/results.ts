// One line per issue-13 target, so bench/run.ts can gather every bench's
// figures into one table. A bench prints its own detail as before and, for each
// target it measures, calls `result(...)`; the line is machine-readable
// (`BENCH-RESULT {json}`) and run.ts leaves it out of what it echoes.
import { loadavg } from 'node:os';

export interface BenchResult {
  /** What is measured, e.g. "last_operation, Cloud Foundry query". */
  target: string;
  /** Berth's figure, with its unit ("2,400 req/s", "118 MB"). */
  figure: string;
  /** The baseline's figure in the same run, where there is one. */
  baseline?: string;
  /** Berth / baseline (or the measured figure itself, for absolute targets). */
  value: number;
  /** The goal as a sentence fragment: ">= 0.8x", "<= 120 MB". */
  goal: string;
  met: boolean;
}

export const RESULT_PREFIX = 'BENCH-RESULT ';

export function result(r: Omit<BenchResult, 'met'>, met: boolean): void {
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify({ ...r, met, load: loadavg()[0] })}\n`);
}

/** A process's resident memory now (VmRSS) and at its peak (VmHWM), in MB; Linux only. */
export async function rssOf(pid: number): Promise<{ now: number; peak: number }> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { now: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;
