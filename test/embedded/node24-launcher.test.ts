// `npm start`, `npm test` and bin/berth run on Node 24 even when the node on
// PATH is older (bin/with-node24.mjs re-executes with a cached node@24), and
// where Node 24 cannot be had they say so in one sentence.
//
// These tests never download Node: the "works" cases point BERTH_NODE_PREFIX
// at the Node 24 running the tests; the "impossible" case has no npm, or an npm
// that fails as it would offline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { REPO, TEST_CREDENTIALS, TEST_KEYS, freePort } from '../support/berth.ts';

const LAUNCHER = join(REPO, 'bin/with-node24.mjs');
// The prefix of the Node 24 running this test (<prefix>/bin/node is process.execPath).
const NODE24_PREFIX = dirname(dirname(process.execPath));

/** An installed Node older than 24, to put first on PATH (this machine has /usr/bin/node v20). */
function olderNode(): string | undefined {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node']) {
    const r = spawnSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' });
    if (r.status === 0 && Number(r.stdout.split('.')[0]) < 24) return candidate;
  }
  return undefined;
}

/** A directory for PATH holding only `node` (the given binary) and whatever else is asked for. */
function fakeBin(node: string, extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-path-'));
  symlinkSync(node, join(dir, 'node'));
  for (const [name, script] of Object.entries(extra)) {
    writeFileSync(join(dir, name), script);
    chmodSync(join(dir, name), 0o755);
  }
  return dir;
}

const TINY_CATALOG = `services:
  - id: 4f6e6cf6-ffdd-425f-a2c7-3c9258ad2468
    name: user-provided
    description: Credentials handed to apps through bindings.
    bindable: true
    plans:
      - id: 86064792-7ea2-467b-af93-ac9694d96d52
        name: standard
        description: Stores the credentials given as parameters.
        provisioner:
          kind: user-provided
`;

test('bin/berth runs the CLI on Node 24 when the node on PATH is older', async (t) => {
  const old = olderNode();
  if (!old) return t.skip('no Node older than 24 installed to test with');
  const bin = fakeBin(old);
  const dir = mkdtempSync(join(tmpdir(), 'berth-launch-'));
  try {
    writeFileSync(join(dir, 'catalog.yaml'), TINY_CATALOG);
    const r = spawnSync(join(REPO, 'bin/berth'), ['catalog', 'validate', join(dir, 'catalog.yaml')], {
      env: { PATH: `${bin}:/bin`, HOME: process.env.HOME, BERTH_NODE_PREFIX: NODE24_PREFIX },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stdout, /catalog\.yaml: ok \(1 services, 1 plans\)/);
    assert.equal(r.stderr, '', 'Node 24 was already installed: no notice');
    const help = spawnSync(join(REPO, 'bin/berth'), ['--help'], {
      env: { PATH: `${bin}:/bin`, HOME: process.env.HOME, BERTH_NODE_PREFIX: NODE24_PREFIX },
      encoding: 'utf8',
    });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^Usage: berth <command>/);
  } finally {
    rmSync(bin, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test('npm start serves on Node 24 when the node on PATH is older, and stops gracefully on SIGTERM', async (t) => {
  const old = olderNode();
  const npm = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim();
  if (!old || !npm) return t.skip('needs a Node older than 24 and npm');
  const bin = fakeBin(old);
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-launch-'));
  const port = await freePort();
  // Its own process group, which the test signals as a terminal or service manager would.
  const child = spawn('npm', ['start', '--silent'], {
    cwd: REPO,
    detached: true,
    env: {
      PATH: `${bin}:${dirname(npm)}:/bin`,
      HOME: process.env.HOME,
      BERTH_NODE_PREFIX: NODE24_PREFIX,
      PORT: String(port),
      BERTH_DATA_DIR: dataDir,
      BROKER_USERNAME: TEST_CREDENTIALS.username,
      BROKER_PASSWORD: TEST_CREDENTIALS.password,
      BERTH_ENCRYPTION_KEYS: TEST_KEYS,
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  // 'close' comes when every process holding npm's output pipes (npm, its shell,
  // the launcher, the Node 24 running Berth) has exited.
  const closed = once(child, 'close');
  const healthy = () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
  try {
    for (const until = Date.now() + 120_000; !(await healthy()); ) {
      assert.equal(child.exitCode, null, `npm start exited:\n${out}`);
      assert.ok(Date.now() < until, `npm start did not serve:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // npm and its shell die of the signal (npm re-raises it); the launcher
    // forwards it once to Berth, which stops gracefully.
    process.kill(-child.pid!, 'SIGTERM');
    await closed;
    assert.match(out, /"msg":"signal received"/, out);
    assert.match(out, /"msg":"stopped"/, 'Berth took the graceful path');
    assert.equal(await healthy(), false, 'nothing serves after the stop');
    assert.equal(existsSync(join(dataDir, 'run', '.s.PGSQL.5432')), false, 'the database socket was closed');
  } finally {
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    rmSync(bin, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('an older Node that cannot install Node 24 says in one sentence which Node is needed', async () => {
  // The launcher believes it runs on Node 20 (a preload changes the version it sees).
  const scratch = mkdtempSync(join(tmpdir(), 'berth-old-'));
  const preload = join(scratch, 'pretend-node20.mjs');
  writeFileSync(
    preload,
    `Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '20.0.0' } });\n` +
      `Object.defineProperty(process, 'version', { value: 'v20.0.0' });\n`,
  );
  const environments = {
    'no npm on PATH': fakeBin(process.execPath),
    'npm fails (offline)': fakeBin(process.execPath, { npm: '#!/bin/sh\necho "npm error network request failed" >&2\nexit 1\n' }),
  };
  try {
    for (const [name, bin] of Object.entries(environments)) {
      const prefix = join(scratch, `prefix-${name.replace(/\W+/g, '-')}`);
      const r = spawnSync(process.execPath, ['--import', preload, LAUNCHER, join(REPO, 'src/cli.ts'), 'serve'], {
        env: { PATH: bin, HOME: scratch, BERTH_NODE_PREFIX: prefix },
        encoding: 'utf8',
      });
      assert.equal(r.status, 1, `${name}: ${r.stderr}`);
      assert.equal(r.stdout, '', name);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 2, `${name}: a notice and one sentence:\n${r.stderr}`);
      assert.match(lines[0]!, /installing Node 24 once/, name);
      assert.match(lines[1]!, /^berth: Berth needs Node 24 or later and this is Node v20\.0\.0; installing it failed \(.+\), so install Node 24 .* and run this again\.$/, name);
      assert.equal(existsSync(prefix), false, `${name}: no half-installed Node left behind`);
    }
  } finally {
    for (const bin of Object.values(environments)) rmSync(bin, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  }
});
