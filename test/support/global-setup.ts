// Node's --test-global-setup module for `npm test` (scripts/test.ts).
//
// globalSetup starts one Kubernetes control plane (test/support/kube/cluster.ts)
// in the test runner process and publishes it to the test files, which each run
// in their own process, through the BERTH_KUBE_CLUSTER environment variable and a
// pointer file keyed by the runner's PID (see test/support/kube/shared.ts).
// globalTeardown stops every process by PID, checks that none is left, and prints
// the startup time and memory use.
//
// Both also check that the run leaves the shared servers as it found them
// (test/support/leftovers.ts): a snapshot of the berth* databases, roles and
// users on Postgres and MariaDB (and of the cluster's namespaces) at setup,
// and at teardown the run fails, listing them, if new ones are still there.
//
// BERTH_KUBE=0 skips the cluster (for runs that don't need it).
//
// BERTH_REAL_NODE=1 (scripts/test.ts sets it when the run includes real-node
// test files) also starts the cluster with one real node (kube/real-node.ts),
// published the same way under BERTH_REAL_NODE_CLUSTER. Its teardown must leave
// nothing on the machine (processes, mounts, cgroups, network namespaces,
// sysctls); the run fails, listing them, if it does.
import { appendFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startCluster, type RunningCluster } from './kube/cluster.ts';
import { startRealNodeCluster, type RunningRealNode } from './kube/real-node.ts';
import { CLUSTER_ENV, pointerFile, REAL_NODE_ENV, realNodePointerFile } from './kube/shared.ts';
import { describeLeftovers, leftoversSince, takeSnapshot, type Snapshot } from './leftovers.ts';

let cluster: RunningCluster | undefined;
let realNode: RunningRealNode | undefined;
let before: Snapshot | undefined;

const log = (line: string): void => {
  process.stderr.write(`[berth-kube] ${line}\n`);
};

const mib = (kib: number): string => `${(kib / 1024).toFixed(0)} MiB`;

/** A stage for the timings table scripts/test.ts prints at the end (BERTH_TIMINGS_FILE). */
function timing(name: string, ms: number): void {
  const file = process.env.BERTH_TIMINGS_FILE;
  if (file) appendFileSync(file, `${name}\t${(ms / 1000).toFixed(1)}\n`);
}

export async function globalSetup(): Promise<void> {
  if (process.env.BERTH_KUBE === '0') {
    log('BERTH_KUBE=0: not starting the Kubernetes test cluster');
  } else {
    log('starting the shared Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok)...');
    const wantRealNode = process.env.BERTH_REAL_NODE === '1';
    if (wantRealNode) log('starting the real-node cluster too (containerd, kubelet, kube-proxy in a private network namespace)...');
    const [kwokCluster, nodeCluster] = await Promise.allSettled([
      startCluster({ log }),
      wantRealNode ? startRealNodeCluster({ log: (l) => process.stderr.write(`[berth-node] ${l}\n`) }) : Promise.resolve(undefined),
    ]);
    if (kwokCluster.status === 'fulfilled') cluster = kwokCluster.value;
    if (nodeCluster.status === 'fulfilled') realNode = nodeCluster.value;
    const failed = [kwokCluster, nodeCluster].find((r) => r.status === 'rejected');
    if (failed) {
      await stopCluster().catch(() => undefined);
      await stopRealNode().catch(() => undefined);
      throw failed.reason;
    }
    if (cluster) timing('kwok cluster start', cluster.info.startupMs);
    if (realNode) {
      timing('real-node cluster start', realNode.info.startupMs);
      timing('  (images import)', (realNode.info.realNode.timings.imagesImport ?? 0) * 1000);
    }
    if (cluster) {
      const infoPath = path.join(cluster.info.baseDir, 'cluster.json');
      process.env[CLUSTER_ENV] = infoPath;
      writeFileSync(pointerFile(process.pid), infoPath);
    }
    if (realNode) {
      const infoPath = path.join(realNode.info.baseDir, 'cluster.json');
      process.env[REAL_NODE_ENV] = infoPath;
      writeFileSync(realNodePointerFile(process.pid), infoPath);
    }
  }
  const unreachable: string[] = [];
  before = await takeSnapshot({ kubeconfigPath: cluster?.info.kubeconfigPath, unreachable });
  for (const server of unreachable) process.stderr.write(`[berth-leftovers] not checked, could not be reached: ${server}\n`);
}

export async function globalTeardown(): Promise<void> {
  let leftovers = new Map<string, string[]>();
  if (before) leftovers = await leftoversSince(before, { kubeconfigPath: cluster?.info.kubeconfigPath });
  before = undefined;
  try {
    await Promise.all([stopCluster(), stopRealNode()]);
  } finally {
    if (leftovers.size > 0) {
      // The runner sets the exit code for a failed teardown but does not print why.
      process.stderr.write(`[berth-leftovers] ${describeLeftovers(leftovers)}\n`);
      process.exitCode = 1;
      throw new Error(describeLeftovers(leftovers));
    }
  }
}

async function stopCluster(): Promise<void> {
  if (!cluster) return;
  const c = cluster;
  cluster = undefined;
  rmSync(pointerFile(process.pid), { force: true });
  // Keep the logs when the run failed (the runner sets a non-zero exit code by now).
  const failed = process.exitCode !== undefined && process.exitCode !== 0;
  const report = await c.stop({ keepLogs: failed });
  const m = report.memory;
  log(
    `control plane stopped. Startup took ${(c.info.startupMs / 1000).toFixed(1)}s; ` +
      `peak RSS (sum of per-process peaks) ${mib(m.sumOfPeaksKiB)}, ` +
      `highest sampled total RSS ${mib(m.maxSampledTotalKiB)} ` +
      `(${m.perProcess.map((p) => `${p.name} ${mib(p.peakKiB)}`).join(', ')})`,
  );
  if (failed) log(`component logs kept in ${report.logsDir}`);
  if (report.leftRunning.length === 0) {
    log(`all ${c.info.processes.length + 1} processes of the test cluster are gone (pids ${[...c.info.processes.map((p) => p.pid), c.info.reaperPid].join(' ')})`);
  }
  if (report.leftRunning.length > 0) {
    process.exitCode = 1;
    throw new Error(
      `processes of the test cluster still running after teardown: ${report.leftRunning.map((p) => `${p.name}=${p.pid}`).join(', ')}`,
    );
  }
}

async function stopRealNode(): Promise<void> {
  if (!realNode) return;
  const n = realNode;
  realNode = undefined;
  rmSync(realNodePointerFile(process.pid), { force: true });
  const failed = process.exitCode !== undefined && process.exitCode !== 0;
  const report = await n.stop({ keepLogs: failed });
  timing('real-node teardown', report.teardownMs);
  const t = n.info.realNode.timings;
  process.stderr.write(
    `[berth-node] real node stopped. Startup ${(n.info.startupMs / 1000).toFixed(1)}s (images import ${t.imagesImport?.toFixed(1)}s), ` +
      `teardown ${(report.teardownMs / 1000).toFixed(1)}s, peak RSS (sum of per-process peaks) ${mib(report.memory.sumOfPeaksKiB)}\n`,
  );
  const problems = [
    ...report.leftRunning.map((p) => `process ${p.name}=${p.pid}`),
    ...report.hostLeftovers,
  ];
  if (problems.length > 0) {
    process.exitCode = 1;
    const msg = `the real test node left things on the machine: ${problems.join('; ')} (logs: ${report.logsDir})`;
    process.stderr.write(`[berth-node] ${msg}\n`);
    throw new Error(msg);
  }
  process.stderr.write('[berth-node] nothing left behind: no process, mount, cgroup, network namespace or changed sysctl of the node\n');
}
