// A node:test reporter that prints how long each test file took, `file<TAB>seconds` per line: from
// the first event of the file to its last, as the runner saw them. `npm test` (scripts/test.ts)
// sends it to a file and prints the slowest test files with its stage timings: that is where the
// suite's wall time goes.
import path from 'node:path';

interface Event {
  type: string;
  data?: { file?: string };
}

export default async function* fileTimings(source: AsyncIterable<Event>): AsyncGenerator<string> {
  const spans = new Map<string, { first: number; last: number }>();
  for await (const event of source) {
    const file = event.data?.file;
    if (!file) continue;
    const now = performance.now();
    const span = spans.get(file);
    if (span) span.last = now;
    else spans.set(file, { first: now, last: now });
  }
  for (const [file, { first, last }] of spans) yield `${path.relative(process.cwd(), file)}\t${((last - first) / 1000).toFixed(1)}\n`;
}
