// The broker credentials embedded mode generates never reach the log stream:
// when stderr is not a terminal (a container, systemd, a pipe) they stay in the
// credentials file and the log only says where it is; a person at a terminal
// sees them once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, freePort } from '../support/berth.ts';

/** Runs `berth serve` in embedded mode with no configured credentials until it answers /healthz, then stops it. */
async function serveOnce(dataDir: string, wrap: (argv: string[]) => string[]): Promise<string> {
  const port = await freePort();
  const argv = wrap([process.execPath, join(REPO, 'src/cli.ts'), 'serve']);
  const child = spawn(argv[0]!, argv.slice(1), {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: String(port), BERTH_DATA_DIR: dataDir, CATALOG_PATH: join(REPO, 'catalog.yaml') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = once(child, 'exit');
  try {
    for (const until = Date.now() + 120_000; ; ) {
      if (child.exitCode !== null) throw new Error(`berth exited during start:\n${out}`);
      if (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)) break;
      if (Date.now() > until) throw new Error(`berth did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  return out;
}

test('generated broker credentials stay out of the log stream when stderr is not a terminal', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-creds-'));
  try {
    const out = await serveOnce(dataDir, (argv) => argv);
    const { password } = JSON.parse(readFileSync(join(dataDir, 'broker-credentials.json'), 'utf8')) as { password: string };
    assert.ok(password.length >= 16);
    assert.ok(!out.includes(password), `the password appears in the output:\n${out}`);
    const lines = out.split('\n').filter((l) => l.trim() !== '');
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `not a JSON log line: ${line}`);
    assert.ok(
      lines.some((l) => JSON.parse(l).file === join(dataDir, 'broker-credentials.json')),
      'a log line says where the generated credentials are',
    );
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a person starting Berth at a terminal is shown the generated credentials once', async (t) => {
  const script = ['/usr/bin/script', '/bin/script'].find((p) => {
    try {
      readFileSync(p);
      return true;
    } catch {
      return false;
    }
  });
  if (!script) return t.skip('script(1) is not installed: no pseudo-terminal to test with');
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-creds-'));
  // script(1) runs the command on a pseudo-terminal; -e passes its exit status on.
  const onTerminal = (argv: string[]) => [script, '-qec', argv.map((a) => `'${a}'`).join(' '), '/dev/null'];
  try {
    const first = await serveOnce(dataDir, onTerminal);
    const { password } = JSON.parse(readFileSync(join(dataDir, 'broker-credentials.json'), 'utf8')) as { password: string };
    assert.ok(first.includes(password), `the first start shows the password:\n${first}`);
    const second = await serveOnce(dataDir, onTerminal);
    assert.ok(!second.includes(password), 'later starts do not show it again');
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
