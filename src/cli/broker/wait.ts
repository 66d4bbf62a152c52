// Waiting for an asynchronous operation: polls last_operation (at the broker's Retry-After, else
// --interval), shows its descriptions as live progress on stderr, and ends at --timeout with
// exit code 3 while the operation goes on.
import { setTimeout as sleep } from 'node:timers/promises';
import type { LastOperation } from '../../osb-client/index.ts';
import { CliError, EXIT, usageError } from '../errors.ts';
import { Progress, type ProgressStream } from '../progress.ts';

/** `90s`, `10m`, `1h30m`, `2h`, or plain seconds → milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let ms = 0;
  let matched = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    ms += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    matched = re.lastIndex;
  }
  if (matched !== t.length || t.length === 0) throw usageError(`${flag} ${text} is not a duration; write e.g. 90s, 10m or 1h30m`);
  return ms;
}

/** 200 ms, 45 s, 30 min, as a person says them. */
export function durationText(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000 || ms % 60_000 !== 0) return `${Math.round(ms / 1000)} s`;
  return `${ms / 60_000} min`;
}

export interface WaitOptions {
  /** e.g. "provisioning orders-db" */
  label: string;
  poll: () => Promise<LastOperation>;
  timeoutMs: number;
  intervalMs: number;
  /** What to run to look again when the wait times out. */
  checkHint: string;
  /** A poll that fails is explained by this (exit 4 when the broker went away). */
  explain: (err: unknown) => CliError;
  /** Where progress goes (default stderr); several waits at once give a stream without isTTY, so each writes whole lines. */
  progress?: ProgressStream;
}

/** Resolves with the final last_operation (succeeded, failed or gone); throws exit 3 at the timeout. */
export async function waitForOperation(w: WaitOptions): Promise<LastOperation> {
  const progress = new Progress(w.label, w.progress);
  const deadline = Date.now() + w.timeoutMs;
  // Ctrl-C stops the waiting, not the operation: say so, and where to look, instead of leaving a half-drawn line.
  const onInterrupt = () => {
    progress.stop(`${w.label}: stopped waiting`);
    process.stderr.write(`berth: the operation goes on at the broker; check with \`${w.checkHint}\`.\n`);
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  try {
    return await poll(w, progress, deadline);
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}

async function poll(w: WaitOptions, progress: Progress, deadline: number): Promise<LastOperation> {
  let last: LastOperation | undefined;
  for (;;) {
    try {
      last = await w.poll();
    } catch (err) {
      progress.stop(`${w.label}: could not read the operation's state`);
      throw w.explain(err);
    }
    if (last.state !== 'in progress') {
      progress.stop(`${w.label}: ${last.state === 'gone' ? 'done' : last.state}`);
      return last;
    }
    progress.update(last.description);
    const left = deadline - Date.now();
    if (left <= 0) break;
    // The broker's Retry-After when it sent one, but never past the deadline: the last look is at it.
    const pause = last.retryAfterSeconds !== undefined ? last.retryAfterSeconds * 1000 : w.intervalMs;
    await sleep(Math.min(Math.max(pause, 100), left));
  }
  progress.stop(`${w.label}: still in progress`);
  throw new CliError(
    EXIT.timedOut,
    `timed out after ${durationText(w.timeoutMs)} while ${w.label} is still in progress${last?.description ? ` (${last.description})` : ''}; it goes on at the broker: check with \`${w.checkHint}\`.`,
  );
}
