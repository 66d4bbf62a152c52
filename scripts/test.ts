// `npm test`: prepares the Kubernetes test binaries (built once, then cached) and the
// real node's images (built once per input hash, then cached), then runs every test
// file with node's test runner, one shared kwok control plane and, when real-node
// test files are in the run, one cluster with a real node. Prints how long each
// stage took at the end.
import { spawnSync } from 'node:child_process';
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
};

const requested = process.argv.slice(2);
const files = requested.length > 0 ? requested : globSync('test/**/*.test.ts').sort();
/** Files that need Pods that really run (test/support/kube/real-node.ts). */
const isRealNodeFile = (f: string): boolean => f.includes('test/real-node/') || f.endsWith('.real-node.test.ts');
const realNode = process.env.BERTH_REAL_NODE !== '0' && files.some(isRealNodeFile);
const selected = process.env.BERTH_REAL_NODE === '0' ? files.filter((f) => !isRealNodeFile(f)) : files;

const ensure = spawnSync('bash', ['tools/ensure-binaries.sh'], { stdio: 'inherit' });
stage('binaries (tools/ensure-binaries.sh)');
if (ensure.status !== 0) {
  report();
  process.exit(ensure.status ?? 1);
}
// The exact images this run uses: the real node imports these tars (BERTH_NODE_IMAGES).
const imagesFile = path.join(os.tmpdir(), `berth-test-images-${process.pid}.txt`);
if (realNode) {
  const images = spawnSync('bash', ['tools/build-images.sh', '--list'], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  stage('images (tools/build-images.sh)');
  if (images.status !== 0) {
    report();
    process.exit(images.status ?? 1);
  }
  writeFileSync(imagesFile, images.stdout);
}

const run = spawnSync(
  process.execPath,
  [
    '--test',
    '--test-global-setup=test/support/global-setup.ts',
    '--test-concurrency=2',
    '--test-timeout=900000',
    ...selected,
  ],
  { stdio: 'inherit', env: { ...process.env, BERTH_REAL_NODE: realNode ? '1' : '0', BERTH_TIMINGS_FILE: timingsFile, ...(realNode ? { BERTH_NODE_IMAGES: imagesFile } : {}) } },
);
stage(`suites (${selected.length} files, clusters included${realNode ? ', real node' : ''})`);
rmSync(imagesFile, { force: true });
report();
process.exit(run.status ?? 1);
