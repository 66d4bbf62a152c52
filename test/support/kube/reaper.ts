// Safety net, run as a detached process by cluster.ts:
//
//   node reaper.ts <ownerPid> <pidsFile>
//
// Every second: if <pidsFile> is gone, the owner stopped the cluster itself, so
// exit. If <ownerPid> is gone (the test runner crashed or was killed), stop
// every PID listed in <pidsFile> (only if its command line still mentions the
// cluster's folder), then remove the folder's bulky parts and exit. For a real
// node (real-node.ts) it also undoes what the node did to the machine
// (node-host.ts: shims, mounts, cgroups, network namespace, sysctls) and frees
// the machine's real-node lock.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readHostState, teardownHost } from './node-host.ts';
import { pidAlive, stopProcesses } from './processes.ts';

const [ownerArg, pidsFile] = process.argv.slice(2);
const ownerPid = Number(ownerArg);
if (!ownerPid || !pidsFile) {
  process.stderr.write('usage: reaper.ts <ownerPid> <pidsFile>\n');
  process.exit(2);
}

interface PidsFile {
  marker: string;
  pids: Array<{ name: string; pid: number }>;
}

function readPids(): PidsFile | undefined {
  try {
    return JSON.parse(readFileSync(pidsFile as string, 'utf8')) as PidsFile;
  } catch {
    return undefined;
  }
}

let last = readPids();
for (;;) {
  await sleep(1000);
  const now = readPids();
  if (!now) {
    // Removed by the owner: normal shutdown. (A torn read while the file is being
    // rewritten is retried once.)
    await sleep(200);
    if (!readPids()) process.exit(0);
    continue;
  }
  last = now;
  if (!pidAlive(ownerPid)) break;
}

if (last) {
  const order = ['kwok', 'kube-proxy', 'kubelet', 'kube-scheduler', 'kube-controller-manager', 'apiserver-bridge', 'kube-apiserver', 'etcd', 'containerd'];
  const sorted = [...last.pids].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  await stopProcesses(sorted, last.marker, 5000);
  const base = path.dirname(pidsFile);
  const host = readHostState(base);
  if (host) {
    await teardownHost(host);
    try {
      const lock = '/run/lock/berth-real-node';
      if ((JSON.parse(readFileSync(path.join(lock, 'owner.json'), 'utf8')) as { pid: number }).pid === ownerPid) {
        rmSync(lock, { recursive: true, force: true });
      }
    } catch {
      // no lock, or not ours
    }
  }
  for (const d of ['etcd', 'pki', 'kubeconfigs', 'config', 'helm', 'containerd', 'kubelet']) rmSync(path.join(base, d), { recursive: true, force: true });
}
process.exit(0);
