// `npm test`: prepares the Kubernetes test binaries (built once, then cached),
// then runs every test file with node's test runner and one shared control plane.
import { spawnSync } from 'node:child_process';
import { globSync } from 'node:fs';

const ensure = spawnSync('bash', ['tools/ensure-binaries.sh'], { stdio: 'inherit' });
if (ensure.status !== 0) process.exit(ensure.status ?? 1);

const requested = process.argv.slice(2);
const files = requested.length > 0 ? requested : globSync('test/**/*.test.ts').sort();
const run = spawnSync(
  process.execPath,
  [
    '--test',
    '--test-global-setup=test/support/global-setup.ts',
    '--test-concurrency=2',
    '--test-timeout=900000',
    ...files,
  ],
  { stdio: 'inherit' },
);
process.exit(run.status ?? 1);
