// `npm run bench`: runs every bench/*.bench.ts in its own process, one after
// another (they compete for the same 2 cores otherwise). Each prints its
// figures and a ratio against a baseline it measures in the same run.
import { spawnSync } from 'node:child_process';
import { globSync } from 'node:fs';

const only = process.argv.slice(2);
const files = only.length > 0 ? only : globSync('bench/*.bench.ts').sort();
let failed = 0;
for (const file of files) {
  process.stdout.write(`\n### ${file}\n`);
  const r = spawnSync(process.execPath, [file], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed > 0 ? 1 : 0);
