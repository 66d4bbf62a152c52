// The check that fails a run when the real node leaves something on the machine
// (the global teardown runs it after stopping the node): it must see each kind of
// leftover. Planted here on purpose — without touching the running node's
// cgroups or the machine's sysctls — then removed by this test.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { hostLeftovers, type HostState } from '../support/kube/node-host.ts';

const baseDir = mkdtempSync(path.join(os.tmpdir(), 'berth-leftover-check-'));
const netns = `berth-rn-check-${randomBytes(3).toString('hex')}`;

after(() => {
  try {
    execFileSync('ip', ['netns', 'delete', netns], { stdio: 'ignore' });
  } catch {
    // not created
  }
  rmSync(baseDir, { recursive: true, force: true });
});

test('the leftover check names a process, a network namespace, a changed sysctl and a created path of the node', async () => {
  const panic = readFileSync('/proc/sys/kernel/panic', 'utf8').trim();
  const clean: HostState = { format: 1, baseDir, netns, sysctls: { 'kernel/panic': panic }, createdPaths: [], netnsBefore: [] };
  // The run's own real node may be running meanwhile (its cgroups and pod network namespaces
  // show up too): look only at what this test plants.
  const ours = (lines: string[]): string =>
    lines.filter((l) => l.includes(netns) || l.includes('kernel.panic') || l.includes(baseDir) || /^processes:/.test(l)).join('\n');
  assert.doesNotMatch(ours(hostLeftovers(clean)), new RegExp(`${netns}|kernel\\.panic|${baseDir}`), 'nothing planted yet, nothing reported');

  execFileSync('ip', ['netns', 'add', netns]);
  // A process whose command line names the node's folder, like every daemon and shim of a node.
  const sleeper = spawn('sh', ['-c', 'sleep 60', path.join(baseDir, 'daemon')], { stdio: 'ignore' });
  try {
    const planted: HostState = {
      ...clean,
      // "was" a value different from now: the check reports it as changed (the machine is untouched).
      sysctls: { 'kernel/panic': String(Number(panic) + 1) },
      createdPaths: [baseDir],
    };
    const report = hostLeftovers(planted).join('\n');
    assert.match(report, new RegExp(`processes: .*${sleeper.pid}`));
    assert.match(report, new RegExp(`network namespaces: .*${netns}`));
    assert.match(report, new RegExp(`sysctl kernel\\.panic is ${panic}, was ${Number(panic) + 1}`));
    assert.match(report, new RegExp(`path ${baseDir}`));
  } finally {
    sleeper.kill('SIGKILL');
    await new Promise((r) => sleeper.once('exit', r));
  }
  execFileSync('ip', ['netns', 'delete', netns]);
  const after = ours(hostLeftovers(clean));
  assert.doesNotMatch(after, new RegExp(`${netns}|kernel\\.panic|${baseDir}|\\b${sleeper.pid}\\b`), 'cleaned up, nothing reported');
});
