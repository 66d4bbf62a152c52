// Runs Berth's TypeScript entry points (or node arguments such as `--test …`)
// on Node 24 or later, which strips the types. It is plain JavaScript that any
// Node parses, because `npm start`, `npm test` and bin/berth go through it on
// machines whose Node is older: there it re-executes the command with the npm
// package node@24, installed on first use into ~/.cache/berth/node24 (the
// place .ci/run uses; BERTH_NODE_PREFIX moves it), and where that cannot be
// done it says in one sentence which Node is needed.
//
//   node bin/with-node24.mjs src/cli.ts serve
//   node bin/with-node24.mjs --test test/x.test.ts
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import module from 'node:module';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const NEEDED = 24;
const args = process.argv.slice(2);
const majorOf = (version) => Number(String(version).replace(/^v/, '').split('.')[0]);

if (majorOf(process.versions.node) >= NEEDED && args.length > 0 && !args[0].startsWith('-')) {
  // Same process: no second Node to start, and signals reach Berth directly.
  // The compile cache (V8 code for every module, types already stripped) saves
  // about a second of each start; it lives beside the installed modules
  // rather than in a shared /tmp another user could write to.
  const root = dirname(dirname(fileURLToPath(import.meta.url)));
  const cache = join(root, 'node_modules', '.cache', 'berth', 'compile-cache');
  try {
    mkdirSync(cache, { recursive: true });
    module.enableCompileCache?.(cache);
  } catch {
    // read-only install: start without the cache
  }
  process.argv.splice(1, 1);
  await import(pathToFileURL(resolve(args[0])).href);
} else {
  const node = majorOf(process.versions.node) >= NEEDED ? process.execPath : node24();
  run(node, args);
}

/** Path of a Node 24 binary: the cached one, or one npm installs now. */
function node24() {
  const prefix = process.env.BERTH_NODE_PREFIX || join(homedir(), '.cache', 'berth', 'node24');
  const bin = join(prefix, 'bin', 'node');
  if (isNode24(bin)) return bin;
  const command = `npm install --global --prefix ${prefix} node@${NEEDED}`;
  process.stderr.write(`berth: Node ${process.version} is older than Berth needs; installing Node ${NEEDED} once (${command})\n`);
  // Installed beside the prefix and renamed into place, so an interrupted or
  // concurrent install never leaves a half one where the next start looks.
  const staging = `${prefix}.installing-${process.pid}`;
  const npm = spawnSync('npm', ['install', '--global', '--prefix', staging, '--no-audit', '--no-fund', '--loglevel=error', `node@${NEEDED}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  if (npm.status === 0 && isNode24(join(staging, 'bin', 'node')) && !isNode24(bin)) {
    try {
      mkdirSync(dirname(prefix), { recursive: true });
      rmSync(prefix, { recursive: true, force: true });
      renameSync(staging, prefix);
    } catch {
      // another start installed it at the same moment
    }
  }
  rmSync(staging, { recursive: true, force: true });
  if (isNode24(bin)) return bin;
  const why = npm.error ? 'npm was not found' : `npm exited with ${npm.status ?? npm.signal}`;
  process.stderr.write(
    `berth: Berth needs Node ${NEEDED} or later and this is Node ${process.version}; installing it failed (${why}), so install Node ${NEEDED} (for example \`${command}\`, then put ${join(prefix, 'bin')} first on PATH) and run this again.\n`,
  );
  process.exit(1);
}

function isNode24(bin) {
  if (!existsSync(bin)) return false;
  const r = spawnSync(bin, ['-p', 'process.versions.node'], { encoding: 'utf8' });
  return r.status === 0 && majorOf(r.stdout.trim()) >= NEEDED;
}

/**
 * Runs node with args and ends as it ends. The child gets its own process
 * group, so a signal sent to ours (Ctrl-C, or a kill of `npm start`'s group)
 * reaches it once, forwarded from here, and not twice.
 */
function run(node, nodeArgs) {
  const child = spawn(node, nodeArgs, { stdio: 'inherit', detached: true });
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const forward = (signal) => child.kill(signal);
  for (const signal of signals) process.on(signal, forward);
  child.on('error', (err) => {
    process.stderr.write(`berth: could not start ${node}: ${err.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    for (const s of signals) process.off(s, forward);
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}
