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
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startCluster, type RunningCluster } from './kube/cluster.ts';
import { CLUSTER_ENV, pointerFile } from './kube/shared.ts';
import { describeLeftovers, leftoversSince, takeSnapshot, type Snapshot } from './leftovers.ts';

let cluster: RunningCluster | undefined;
let before: Snapshot | undefined;

const log = (line: string): void => {
  process.stderr.write(`[berth-kube] ${line}\n`);
};

const mib = (kib: number): string => `${(kib / 1024).toFixed(0)} MiB`;

export async function globalSetup(): Promise<void> {
  if (process.env.BERTH_KUBE === '0') {
    log('BERTH_KUBE=0: not starting the Kubernetes test cluster');
  } else {
    log('starting the shared Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok)...');
    cluster = await startCluster({ log });
    const infoPath = path.join(cluster.info.baseDir, 'cluster.json');
    process.env[CLUSTER_ENV] = infoPath;
    writeFileSync(pointerFile(process.pid), infoPath);
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
    await stopCluster();
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
