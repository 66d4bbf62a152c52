// A node:test reporter that prints how long each test file took, `file<TAB>seconds` per line. With
// process isolation the runner reports every file as a test of its own, named by its path, whose
// duration is the file's wall time (child process start to exit). `npm test` (scripts/test.ts) sends
// this to a file and prints the slowest test files with its stage timings: that is where the suite's
// wall time goes.
import path from 'node:path';

interface Event {
  type: string;
  data?: { file?: string; name?: string; nesting?: number; details?: { duration_ms?: number } };
}

export default async function* fileTimings(source: AsyncIterable<Event>): AsyncGenerator<string> {
  for await (const { type, data } of source) {
    if (type !== 'test:complete' || !data?.file || data.nesting !== 0 || path.resolve(data.name ?? '') !== data.file) continue;
    yield `${path.relative(process.cwd(), data.file)}\t${((data.details?.duration_ms ?? 0) / 1000).toFixed(1)}\n`;
  }
}
