// The harness's safety net: if the process that started the cluster dies
// without stopping it, the detached reaper stops the cluster's processes by PID,
// and only processes whose command line names the cluster's folder.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pidAlive } from '../support/kube/processes.ts';

const reaperScript = path.join(import.meta.dirname, '..', 'support', 'kube', 'reaper.ts');
const started: ChildProcess[] = [];

function idle(...args: string[]): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', ...args], { stdio: 'ignore' });
  started.push(child);
  return child;
}

async function waitUntil(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await sleep(100);
  }
  return cond();
}

after(() => {
  for (const c of started) if (c.pid && pidAlive(c.pid)) c.kill('SIGKILL');
});

test('the reaper stops the listed processes when their owner dies, and spares other PIDs', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-reaper-test-'));
  try {
    const owner = idle();
    const ours = [idle(path.join(dir, 'a')), idle(path.join(dir, 'b'))];
    const stranger = idle('not-the-marker'); // listed, but its cmdline lacks the marker
    const pidsFile = path.join(dir, 'pids.json');
    writeFileSync(
      pidsFile,
      JSON.stringify({ marker: dir, pids: [...ours, stranger].map((c, i) => ({ name: `p${i}`, pid: c.pid })) }),
    );
    const reaper = spawn(process.execPath, [reaperScript, String(owner.pid), pidsFile], { stdio: 'ignore' });
    started.push(reaper);
    await sleep(1500);
    assert.ok(ours.every((c) => pidAlive(c.pid as number)), 'nothing is stopped while the owner lives');

    owner.kill('SIGKILL');
    assert.ok(await waitUntil(() => ours.every((c) => !pidAlive(c.pid as number)), 15_000), 'owned processes stopped');
    assert.ok(await waitUntil(() => !pidAlive(reaper.pid as number), 5000), 'the reaper exits afterwards');
    assert.ok(pidAlive(stranger.pid as number), 'a PID without the marker is left alone');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the reaper exits without touching anything once the pids file is removed (normal teardown)', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-reaper-test-'));
  try {
    const ours = idle(path.join(dir, 'a'));
    const pidsFile = path.join(dir, 'pids.json');
    writeFileSync(pidsFile, JSON.stringify({ marker: dir, pids: [{ name: 'a', pid: ours.pid }] }));
    const reaper = spawn(process.execPath, [reaperScript, String(process.pid), pidsFile], { stdio: 'ignore' });
    started.push(reaper);
    await sleep(1200);
    rmSync(pidsFile);
    assert.ok(await waitUntil(() => !pidAlive(reaper.pid as number), 5000), 'the reaper exits');
    assert.ok(pidAlive(ours.pid as number), 'the process is left to its owner');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
