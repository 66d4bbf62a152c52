// `npm test`: prepares the Kubernetes test binaries (built once, then cached) and the
// real node's images (built once per input hash, then cached), then runs every test
// file with node's test runner, one shared kwok control plane and, when real-node
// test files are in the run, one cluster with a real node. Prints how long each
// stage took at the end.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { globSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const stages: Array<[string, number]> = [];
let stageStart = performance.now();
const stage = (name: string): void => {
  const now = performance.now();
  stages.push([name, (now - stageStart) / 1000]);
  stageStart = now;
};
// The global setup adds its own stages (cluster start and teardown) to this file.
const timingsFile = path.join(os.tmpdir(), `berth-test-timings-${process.pid}.tsv`);
// Each test file's wall time (scripts/file-timings-reporter.ts); the slowest are printed.
const fileTimingsFile = path.join(os.tmpdir(), `berth-test-file-timings-${process.pid}.tsv`);
const report = (): void => {
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
  let files: Array<[string, number]> = [];
  try {
    files = readFileSync(fileTimingsFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split('\t'))
      .map(([file = '', s = '0']): [string, number] => [file, Number(s)])
      .sort((a, b) => b[1] - a[1]);
  } catch {
    // the suites did not run
  }
  if (files.length > 0) process.stderr.write('== slowest test files (wall time, two run at once) ==\n');
  for (const [file, s] of files.slice(0, 12)) process.stderr.write(`${file.padEnd(60)} ${s.toFixed(0).padStart(5)} s\n`);
  rmSync(fileTimingsFile, { force: true });
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

const run = spawnSync(
  process.execPath,
  [
    '--test',
    '--test-global-setup=test/support/global-setup.ts',
    '--test-concurrency=2',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=./scripts/file-timings-reporter.ts',
    `--test-reporter-destination=${fileTimingsFile}`,
    '--test-timeout=900000',
    ...selected,
  ],
  { stdio: 'inherit', env: { ...process.env, BERTH_REAL_NODE: realNode ? '1' : '0', BERTH_TIMINGS_FILE: timingsFile, ...(realNode ? { BERTH_NODE_IMAGES: imagesFile } : {}) } },
);
stage(`suites (${selected.length} files, clusters included${realNode ? ', real node' : ''})`);
rmSync(imagesFile, { force: true });
report();
process.exit(run.status ?? 1);
