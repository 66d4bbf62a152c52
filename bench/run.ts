// `npm run bench`: runs every bench/*.bench.ts in its own process, one after
// another (they compete for the same 2 cores otherwise). Each prints its
// figures and a ratio against a baseline it measures in the same run, and one
// BENCH-RESULT line per performance target (bench/support/results.ts); at the
// end, one table of every target with the load average seen while it ran.
// `node bench/run.ts bench/broker.bench.ts …` runs only those files.
import { spawn } from 'node:child_process';
import { globSync } from 'node:fs';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { RESULT_PREFIX, type BenchResult } from './support/results.ts';

const only = process.argv.slice(2);
const files = only.length > 0 ? only : globSync('bench/*.bench.ts').sort();
const results: Array<BenchResult & { load: number; file: string }> = [];
const loads: number[] = [];
const sampler = setInterval(() => loads.push(loadavg()[0]!), 5000);
let failed = 0;
for (const file of files) {
  process.stdout.write(`\n### ${file}\n`);
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'] });
  for await (const line of createInterface({ input: child.stdout! })) {
    if (line.startsWith(RESULT_PREFIX)) results.push({ ...JSON.parse(line.slice(RESULT_PREFIX.length)), file });
    else process.stdout.write(line + '\n');
  }
  const code: number | null = child.exitCode ?? (await new Promise((r) => child.once('exit', r)));
  if (code !== 0) failed++;
}
clearInterval(sampler);

if (results.length > 0) {
  const cells = (r: (typeof results)[number]) => [r.target, r.figure, r.baseline ?? '', r.value.toFixed(2), r.goal, r.met ? 'met' : 'NOT met', r.load.toFixed(1)];
  const head = ['target', 'Berth', 'baseline (same run)', 'ratio/figure', 'goal', '', 'load'];
  const rows = [head, ...results.map(cells)];
  const widths = head.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => `| ${row.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  process.stdout.write(`\n## All targets (issue 13)\n\n${line(head)}\n| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |\n`);
  for (const r of results) process.stdout.write(line(cells(r)) + '\n');
  const avg = loads.length ? loads.reduce((a, b) => a + b, 0) / loads.length : loadavg()[0]!;
  process.stdout.write(`\nload average (1 min) during the run: mean ${avg.toFixed(1)}, max ${Math.max(...loads, 0).toFixed(1)}\n`);
}
process.exit(failed > 0 ? 1 : 0);
