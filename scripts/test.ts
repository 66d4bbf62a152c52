// `npm test`: prepares the Kubernetes test binaries (built once, then cached) and the
// real node's images (built once per input hash, then cached), then runs every test
// file with node's test runner, one shared kwok control plane and, when real-node
// test files are in the run, one cluster with a real node. Prints how long each
// stage took at the end.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { globSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { run, type RunOptions } from 'node:test';
import { spec } from 'node:test/reporters';

/** Test files at once. Most of a file's time is spent waiting (for Pods, helm, leases, servers), not on the CPU. */
const CONCURRENCY = 3;
const cacheDir = process.env.BERTH_CACHE_DIR || path.join(os.homedir(), '.cache', 'berth');
/** Each test file's wall time in the last run on this machine: the next run starts the longest first. */
const durationsFile = path.join(cacheDir, 'test-file-seconds.tsv');

function readDurations(): Map<string, number> {
  try {
    return new Map(
      readFileSync(durationsFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line): [string, number] => {
          const [file = '', seconds = '0'] = line.split('\t');
          return [file, Number(seconds)];
        }),
    );
  } catch {
    return new Map(); // first run on this machine: alphabetical
  }
}

function writeDurations(seconds: Map<string, number>): void {
  mkdirSync(cacheDir, { recursive: true });
  const kept = [...seconds].filter(([file]) => globSync(file).length > 0);
  writeFileSync(durationsFile, kept.map(([file, s]) => `${file}\t${s.toFixed(1)}\n`).join(''));
}

const stages: Array<[string, number]> = [];
let stageStart = performance.now();
const stage = (name: string): void => {
  const now = performance.now();
  stages.push([name, (now - stageStart) / 1000]);
  stageStart = now;
};
// The global setup adds its own stages (cluster start and teardown) to this file.
const timingsFile = path.join(os.tmpdir(), `berth-test-timings-${process.pid}.tsv`);
const report = (fileSeconds = new Map<string, number>()): void => {
  process.stderr.write('== npm test stage timings ==\n');
  for (const [name, s] of stages) process.stderr.write(`${name.padEnd(44)} ${s.toFixed(0).padStart(5)} s\n`);
  let inner = '';
  try {
    inner = readFileSync(timingsFile, 'utf8');
  } catch {
    // no cluster in this run
  }
  for (const line of inner.split('\n').filter(Boolean)) {
    const [name = '', s = '0'] = line.split('\t');
    process.stderr.write(`  of which ${name.padEnd(36)} ${Number(s).toFixed(0).padStart(5)} s\n`);
  }
  rmSync(timingsFile, { force: true });
  const files = [...fileSeconds].sort((a, b) => b[1] - a[1]);
  if (files.length > 0) {
    const total = files.reduce((sum, [, s]) => sum + s, 0);
    process.stderr.write(`== slowest test files (wall time, ${CONCURRENCY} at once; all ${files.length}: ${total.toFixed(0)} s) ==\n`);
  }
  for (const [file, s] of files.slice(0, 12)) process.stderr.write(`${file.padEnd(60)} ${s.toFixed(0).padStart(5)} s\n`);
};

interface Finished {
  status: number | null;
  stdout: string;
}
/** Waits for a child to exit and its output to end, collecting its stdout when it is piped. */
const finished = async (child: ChildProcess, collect = false): Promise<Finished> => {
  let stdout = '';
  if (collect) child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return { status: signal ? 1 : code, stdout };
};

const requested = process.argv.slice(2);
const files = requested.length > 0 ? requested : globSync('test/**/*.test.ts').sort();
/** Files that need Pods that really run (test/support/kube/real-node.ts). */
const isRealNodeFile = (f: string): boolean => f.includes('test/real-node/') || f.endsWith('.real-node.test.ts');
const realNode = process.env.BERTH_REAL_NODE !== '0' && files.some(isRealNodeFile);
const selected = process.env.BERTH_REAL_NODE === '0' ? files.filter((f) => !isRealNodeFile(f)) : files;

// helm, kubectl and the Go modules first: the images need helm and the pause source. Then the Go
// builds (CPU-bound, the long pole on a cold machine) and the image builds (mostly downloads and
// unpacking) run side by side; the images run niced so they take the cores the builds leave idle.
const prefetch = spawnSync('bash', ['tools/ensure-binaries.sh', '--prefetch'], { stdio: 'inherit' });
stage('prefetch (helm, kubectl, Go modules)');
if (prefetch.status !== 0) {
  report();
  process.exit(prefetch.status ?? 1);
}
// The exact images this run uses: the real node imports these tars (BERTH_NODE_IMAGES).
const imagesFile = path.join(os.tmpdir(), `berth-test-images-${process.pid}.txt`);
const timed = async <T>(work: Promise<T>): Promise<[T, number]> => {
  const started = performance.now();
  const result = await work;
  return [result, (performance.now() - started) / 1000];
};
const [[binaries, binariesSeconds], [images, imagesSeconds]] = await Promise.all([
  timed(finished(spawn('bash', ['tools/ensure-binaries.sh'], { stdio: 'inherit' }))),
  realNode
    ? timed(finished(spawn('nice', ['-n', '10', 'bash', 'tools/build-images.sh', '--list'], { stdio: ['ignore', 'pipe', 'inherit'] }), true))
    : Promise.resolve<[Finished, number]>([{ status: 0, stdout: '' }, 0]),
]);
stage(`binaries${realNode ? ' and images, side by side' : ''}`);
stages.push([`  of which binaries (tools/ensure-binaries.sh)`, binariesSeconds]);
if (realNode) stages.push([`  of which images (tools/build-images.sh)`, imagesSeconds]);
for (const step of [binaries, images]) {
  if (step.status !== 0) {
    report();
    process.exit(step.status ?? 1);
  }
}
if (realNode) writeFileSync(imagesFile, images.stdout);

// The suites. Files start longest first (by their wall time in the last run on this machine, new files
// first of all): a long file started last would leave one core idle while it alone finishes. node's
// CLI sorts the files by name, so the runner is driven through run(), which keeps the order given.
// Every Node process of the run (test files, the Berths and CLIs they start) shares one compile cache:
// each module is type-stripped and compiled once per run, not once per process (≈1 s of CPU per start).
process.env.NODE_COMPILE_CACHE ??= path.join(cacheDir, 'compile-cache');
Object.assign(process.env, { BERTH_REAL_NODE: realNode ? '1' : '0', BERTH_TIMINGS_FILE: timingsFile, ...(realNode ? { BERTH_NODE_IMAGES: imagesFile } : {}) });
const lastSeconds = readDurations();
const ordered = [...selected].sort((a, b) => (lastSeconds.get(b) ?? Infinity) - (lastSeconds.get(a) ?? Infinity) || a.localeCompare(b));
const fileSeconds = new Map<string, number>();
let failed = false;
// globalSetupPath is in Node 24's run() (the same module as --test-global-setup), not yet in @types/node.
const options: RunOptions & { globalSetupPath: string } = {
  files: ordered.map((f) => path.resolve(f)),
  concurrency: CONCURRENCY,
  globalSetupPath: path.resolve('test/support/global-setup.ts'),
  timeout: 900_000,
};
const suites = run(options);
suites.on('test:fail', () => (failed = true));
suites.on('test:complete', (data: { file?: string; name: string; nesting: number; details: { duration_ms?: number } }) => {
  // With process isolation each file is reported as a test of its own, named by its path: its duration is the file's wall time.
  if (data.nesting === 0 && data.file && path.resolve(data.name) === data.file) fileSeconds.set(path.relative(process.cwd(), data.file), (data.details.duration_ms ?? 0) / 1000);
});
await pipeline(suites.compose(spec), process.stdout, { end: false });
stage(`suites (${selected.length} files, ${CONCURRENCY} at a time, clusters included${realNode ? ', real node' : ''})`);
rmSync(imagesFile, { force: true });
if (fileSeconds.size > 0) writeDurations(new Map([...lastSeconds, ...fileSeconds]));
report(fileSeconds);
process.exit(failed ? 1 : 0);
