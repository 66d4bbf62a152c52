// The doctor's report: one line per check (status, title, message, time), a summary line,
// or the same as JSON. Symbols and colour only on a terminal, so a log or a pipe reads plain
// words (PASS/WARN/FAIL/SKIP) that grep finds.
import type { Result, Status } from './check.ts';

export interface RenderOptions {
  /** stdout is a terminal: symbols and colour. */
  tty: boolean;
  /** What was examined, for the heading (e.g. the broker URL, or "local installation"). */
  target: string;
}

const SYMBOL: Record<Status, string> = { pass: '✓', warn: '!', fail: '✗', skip: '-' };
const WORD: Record<Status, string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL', skip: 'SKIP' };
const COLOUR: Record<Status, number> = { pass: 32, warn: 33, fail: 31, skip: 90 };

/** 12 ms, 1.4 s, 2 min 5 s. */
export function timing(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function summaryOf(results: Result[]): Record<Status, number> {
  const counts: Record<Status, number> = { pass: 0, warn: 0, fail: 0, skip: 0 };
  for (const r of results) counts[r.status]++;
  return counts;
}

/** One check's line; a message of several lines is indented under it. */
export function renderLine(r: Result, tty: boolean): string {
  const mark = tty ? `\x1b[${COLOUR[r.status]}m${SYMBOL[r.status]}\x1b[0m` : WORD[r.status];
  const [first = '', ...rest] = r.message.split('\n');
  const time = r.status === 'skip' || r.durationMs === undefined ? '' : ` (${timing(r.durationMs)})`;
  const head = `${mark} ${r.title}: ${first}${time}`;
  const pad = ' '.repeat(tty ? 2 : 5);
  return [head, ...rest.map((l) => `${pad}${l}`)].join('\n') + '\n';
}

export function renderSummary(results: Result[], totalMs: number, tty: boolean): string {
  const c = summaryOf(results);
  const verdict = c.fail > 0 ? 'FAILED' : c.warn > 0 ? 'passed with warnings' : 'passed';
  const text = `${results.length} checks: ${c.pass} passed, ${c.warn} warnings, ${c.fail} failed${c.skip ? `, ${c.skip} skipped` : ''} in ${timing(totalMs)}: ${verdict}`;
  if (!tty) return `${text}\n`;
  const colour = c.fail > 0 ? COLOUR.fail : c.warn > 0 ? COLOUR.warn : COLOUR.pass;
  return `\x1b[1;${colour}m${text}\x1b[0m\n`;
}

export function renderHuman(results: Result[], totalMs: number, opts: RenderOptions): string {
  return `berth doctor: ${opts.target}\n${results.map((r) => renderLine(r, opts.tty)).join('')}\n${renderSummary(results, totalMs, opts.tty)}`;
}

export function renderJson(results: Result[], totalMs: number, target: string): string {
  const counts = summaryOf(results);
  return `${JSON.stringify({ target, ok: counts.fail === 0, summary: { ...counts, total: results.length, durationMs: Math.round(totalMs) }, checks: results }, null, 2)}\n`;
}
