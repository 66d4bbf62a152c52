// Starts a real Kubernetes control plane for tests, as plain host processes:
//
//   etcd -> kube-apiserver -> (kube-controller-manager, kube-scheduler, kwok + one fake Node)
//
// Everything listens on 127.0.0.1 only, on random free ports, under one
// temporary folder (<tmp>/berth-kube-XXXXXX) that holds the PKI, etcd's data,
// the kubeconfigs and the logs. Processes are stopped by PID in stop(); a
// detached reaper process (reaper.ts) stops them too if the process that
// started them dies without calling stop().
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { apiRequest, healthz, writeKubeconfig, type ApiTarget } from './api.ts';
import { kubeBinaries, type KubeBinaries } from './binaries.ts';
import { makePki } from './pki.ts';
import {
  freePorts,
  memoryOf,
  pidAlive,
  signalIfOurs,
  startProcess,
  stopProcesses,
  tailFile,
  type ManagedProcess,
} from './processes.ts';

export const SERVICE_CIDR = '10.96.0.0/16';
export const SERVICE_IP = '10.96.0.1';
export const POD_CIDR = '10.244.0.0/16';
export const DEFAULT_NODE_NAME = 'kwok-node-0';
const TMP_PREFIX = 'berth-kube-';

/** Everything a test needs to reach the cluster; serialisable (written to cluster.json). */
export interface ClusterInfo {
  format: 1;
  /** PID of the process that started (and will stop) the cluster. */
  ownerPid: number;
  baseDir: string;
  logsDir: string;
  /** https://127.0.0.1:<port> */
  server: string;
  caFile: string;
  /** base64 of the CA certificate PEM, as in a kubeconfig's certificate-authority-data */
  caData: string;
  /** Bearer token of a system:masters user (from --token-auth-file). */
  adminToken: string;
  /** Admin kubeconfig (token auth). */
  kubeconfigPath: string;
  /** Admin kubeconfig using a client certificate (O=system:masters) instead of the token. */
  certKubeconfigPath: string;
  kubernetesVersion: string;
  helmBin: string;
  kubectlBin: string;
  /** HELM_CONFIG_HOME / HELM_CACHE_HOME / HELM_DATA_HOME for this cluster's tests. */
  helmHome: { config: string; cache: string; data: string };
  nodeName: string;
  ports: Record<string, number>;
  processes: Array<{ name: string; pid: number; logFile: string }>;
  reaperPid?: number;
  startupMs: number;
}

export interface MemoryReport {
  /** Sum of the processes' peak RSS (VmHWM), KiB: an upper bound for the peak of the sum. */
  sumOfPeaksKiB: number;
  /** Largest sum of current RSS seen by the sampler, KiB. */
  maxSampledTotalKiB: number;
  perProcess: Array<{ name: string; pid: number; peakKiB: number; rssKiB: number }>;
}

export interface StopReport {
  /** Processes that were still alive after stop() (should be empty). */
  leftRunning: Array<{ name: string; pid: number }>;
  memory: MemoryReport;
  logsDir: string;
}

export interface RunningCluster {
  info: ClusterInfo;
  processes: ManagedProcess[];
  memory(): MemoryReport;
  stop(opts?: { keepLogs?: boolean }): Promise<StopReport>;
}

export interface StartOptions {
  /** Progress lines; default: stderr with a [berth-kube] prefix. */
  log?: (line: string) => void;
  nodeName?: string;
  /** Total time allowed for startup. */
  timeoutMs?: number;
  /**
   * etcd and kube-apiserver only: no node, controllers or scheduler (Secrets, Services, ConfigMaps and RBAC
   * work; Pods never run, namespaces are never emptied). A second cluster for a test at little cost.
   */
  controlPlaneOnly?: boolean;
}

class StartupError extends Error {}

function defaultLog(line: string): void {
  process.stderr.write(`[berth-kube] ${line}\n`);
}

/** Removes folders of earlier runs whose owner is gone and that are older than a day. */
function pruneOldRuns(): void {
  const tmp = os.tmpdir();
  let names: string[] = [];
  try {
    names = readdirSync(tmp).filter((n) => n.startsWith(TMP_PREFIX));
  } catch {
    return;
  }
  const dayAgo = Date.now() - 24 * 3600_000;
  for (const n of names) {
    const dir = path.join(tmp, n);
    try {
      if (statSync(dir).mtimeMs > dayAgo) continue;
      const infoFile = path.join(dir, 'cluster.json');
      if (existsSync(infoFile)) {
        const info = JSON.parse(readFileSync(infoFile, 'utf8')) as Partial<ClusterInfo>;
        if (info.ownerPid && pidAlive(info.ownerPid)) continue;
      }
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // not ours to worry about
    }
  }
}

/**
 * Starts the control plane. Ports are picked free just before the processes
 * bind them; if another program takes one in between, startup is retried.
 */
export async function startCluster(opts: StartOptions = {}): Promise<RunningCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startClusterOnce(opts);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (attempt >= 3 || !/address already in use/i.test(msg)) throw err;
      (opts.log ?? defaultLog)(`a port was taken by another program during startup; retrying (attempt ${attempt + 1})`);
    }
  }
}

async function startClusterOnce(opts: StartOptions): Promise<RunningCluster> {
  const log = opts.log ?? defaultLog;
  const t0 = Date.now();
  const deadline = t0 + (opts.timeoutMs ?? 180_000);
  const bins: KubeBinaries = kubeBinaries();
  pruneOldRuns();

  const baseDir = mkdtempSync(path.join(os.tmpdir(), TMP_PREFIX));
  const marker = baseDir;
  const dirs = {
    pki: path.join(baseDir, 'pki'),
    etcd: path.join(baseDir, 'etcd'),
    logs: path.join(baseDir, 'logs'),
    config: path.join(baseDir, 'config'),
    kubeconfigs: path.join(baseDir, 'kubeconfigs'),
    helmConfig: path.join(baseDir, 'helm', 'config'),
    helmCache: path.join(baseDir, 'helm', 'cache'),
    helmData: path.join(baseDir, 'helm', 'data'),
  };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true, mode: 0o700 });

  const procs: ManagedProcess[] = [];
  const pidsFile = path.join(baseDir, 'pids.json');
  const writePids = (): void => {
    writeFileSync(pidsFile, JSON.stringify({ marker, pids: procs.map((p) => ({ name: p.name, pid: p.pid })) }));
  };
  writePids();

  // The reaper watches this process and stops the cluster if it dies without stop().
  const reaper = spawn(process.execPath, [path.join(import.meta.dirname, 'reaper.ts'), String(process.pid), pidsFile], {
    detached: true,
    stdio: 'ignore',
  });
  reaper.unref();

  let sampler: NodeJS.Timeout | undefined;
  let maxSampledTotalKiB = 0;
  const memory = (): MemoryReport => {
    const perProcess = procs.map((p) => ({ name: p.name, pid: p.pid, peakKiB: 0, rssKiB: 0, ...memoryOf(p.pid) }));
    const total = perProcess.reduce((a, p) => a + p.rssKiB, 0);
    maxSampledTotalKiB = Math.max(maxSampledTotalKiB, total);
    return {
      sumOfPeaksKiB: perProcess.reduce((a, p) => a + p.peakKiB, 0),
      maxSampledTotalKiB,
      perProcess,
    };
  };

  let stopped = false;
  const stop = async (stopOpts: { keepLogs?: boolean } = {}): Promise<StopReport> => {
    const mem = memory();
    if (sampler) clearInterval(sampler);
    if (!stopped) {
      stopped = true;
      // Clients first, then the apiserver, then etcd.
      const byName = (names: string[]): ManagedProcess[] => procs.filter((p) => names.includes(p.name));
      await stopProcesses(byName(['kwok', 'kube-scheduler', 'kube-controller-manager']), marker);
      await stopProcesses(byName(['kube-apiserver']), marker);
      await stopProcesses(byName(['etcd']), marker);
      await stopProcesses(procs, marker); // anything else
      if (reaper.pid !== undefined) {
        rmSync(pidsFile, { force: true }); // tells the reaper to exit by itself
        await stopProcesses([{ name: 'reaper', pid: reaper.pid }], marker, 3000);
      }
    }
    const all = [...procs.map((p) => ({ name: p.name, pid: p.pid })), ...(reaper.pid ? [{ name: 'reaper', pid: reaper.pid }] : [])];
    const leftRunning = all.filter((p) => pidAlive(p.pid));
    if (leftRunning.length === 0) {
      for (const [k, d] of Object.entries(dirs)) {
        if (k !== 'logs') rmSync(d, { recursive: true, force: true });
      }
      rmSync(path.join(baseDir, 'helm'), { recursive: true, force: true });
      if (!stopOpts.keepLogs) rmSync(baseDir, { recursive: true, force: true });
    }
    return { leftRunning, memory: mem, logsDir: dirs.logs };
  };

  const failStartup = async (err: unknown): Promise<never> => {
    const msg = err instanceof Error ? err.message : String(err);
    await stop({ keepLogs: true }).catch(() => undefined);
    throw new Error(
      `the Kubernetes test control plane did not start: ${msg}\n` +
        `Logs of every component are in ${dirs.logs} (one <component>.log each).`,
    );
  };

  const start = (name: string, bin: string, args: string[]): ManagedProcess => {
    const p = startProcess(name, bin, args, { logsDir: dirs.logs });
    procs.push(p);
    writePids();
    return p;
  };

  /** Polls `check` until it returns true; fails early when a watched process exits. */
  const waitFor = async (what: string, check: () => Promise<boolean>, watch: ManagedProcess[], timeoutMs = 120_000): Promise<void> => {
    const until = Math.min(deadline, Date.now() + timeoutMs);
    let delay = 100;
    for (;;) {
      for (const p of watch) {
        if (p.exitStatus) {
          throw new StartupError(
            `${p.name} (pid ${p.pid}) exited (code ${p.exitStatus.code}, signal ${p.exitStatus.signal}) while waiting for ${what}.\n` +
              `Last lines of ${p.logFile}:\n${tailFile(p.logFile)}`,
          );
        }
      }
      if (await check().catch(() => false)) return;
      if (Date.now() > until) {
        const logs = watch.map((p) => `--- ${p.logFile}:\n${tailFile(p.logFile, 15)}`).join('\n');
        throw new StartupError(`timed out waiting for ${what}.\n${logs}`);
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 1000);
    }
  };

  try {
    const [etcdClient = 0, etcdPeer = 0, apiserver = 0, kcm = 0, scheduler = 0, kwokPort = 0] = await freePorts(6);
    const ports = { etcdClient, etcdPeer, apiserver, kubeControllerManager: kcm, kubeScheduler: scheduler, kwok: kwokPort };
    const pki = makePki(dirs.pki, SERVICE_IP);
    const server = `https://127.0.0.1:${apiserver}`;
    const adminToken = randomBytes(24).toString('hex');
    const tokensFile = path.join(dirs.config, 'tokens.csv');
    writeFileSync(tokensFile, `${adminToken},berth-admin,berth-admin,"system:masters"\n`, { mode: 0o600 });
    const kubeconfigPath = writeKubeconfig(path.join(dirs.kubeconfigs, 'admin.kubeconfig'), {
      server,
      caPem: pki.caPem,
      user: 'berth-admin',
      token: adminToken,
    });
    const certKubeconfigPath = writeKubeconfig(path.join(dirs.kubeconfigs, 'admin-cert.kubeconfig'), {
      server,
      caPem: pki.caPem,
      user: 'berth-admin-cert',
      clientCertPem: readFileSync(pki.adminCert, 'utf8'),
      clientKeyPem: readFileSync(pki.adminKey, 'utf8'),
    });
    const target: ApiTarget = { server, caPem: pki.caPem, token: adminToken };

    // 1. etcd
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const peerUrl = `http://127.0.0.1:${etcdPeer}`;
    const etcd = start('etcd', bins.etcd, [
      '--name=berth',
      `--data-dir=${dirs.etcd}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=berth=${peerUrl}`,
      '--initial-cluster-state=new',
      '--unsafe-no-fsync=true',
      '--auto-compaction-retention=1',
      '--log-level=warn',
    ]);
    await waitFor('etcd /health', async () => {
      const res = await fetch(`${etcdUrl}/health`, { signal: AbortSignal.timeout(2000) });
      return res.ok && ((await res.json()) as { health?: string }).health === 'true';
    }, [etcd], 60_000);
    log(`etcd ready on 127.0.0.1:${etcdClient} after ${((Date.now() - t0) / 1000).toFixed(1)}s`);

    // 2. kube-apiserver
    const apiserverProc = start('kube-apiserver', bins.kubeApiserver, [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiserver}`,
      `--tls-cert-file=${pki.serverCert}`,
      `--tls-private-key-file=${pki.serverKey}`,
      `--client-ca-file=${pki.caCert}`,
      `--token-auth-file=${tokensFile}`,
      '--authorization-mode=Node,RBAC',
      `--service-account-issuer=https://kubernetes.default.svc.cluster.local`,
      `--service-account-key-file=${pki.saPub}`,
      `--service-account-signing-key-file=${pki.saKey}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--allow-privileged=true',
      '--profiling=false',
      // The "kubernetes" Service's Endpoints may not hold a loopback address, and
      // nothing in this cluster needs them (no pods really run).
      '--endpoint-reconciler-type=none',
    ]);
    await waitFor('kube-apiserver /readyz', async () => (await apiRequest(target, 'GET', '/readyz', undefined, 3000)).status === 200, [
      etcd,
      apiserverProc,
    ]);
    const versionRes = await apiRequest(target, 'GET', '/version');
    const kubernetesVersion = (versionRes.json() as { gitVersion?: string }).gitVersion ?? 'unknown';
    log(`kube-apiserver ${kubernetesVersion} ready at ${server} after ${((Date.now() - t0) / 1000).toFixed(1)}s`);

    // 3. the fake node, then the controllers and kwok
    const nodeName = opts.controlPlaneOnly ? '' : (opts.nodeName ?? DEFAULT_NODE_NAME);
    if (!opts.controlPlaneOnly) {
      const nodeRes = await apiRequest(target, 'POST', '/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: nodeName,
          labels: {
            'kubernetes.io/hostname': nodeName,
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': 'amd64',
            'node-role.kubernetes.io/agent': '',
            type: 'kwok',
          },
          annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'kwok.x-k8s.io/node': 'fake' },
        },
        status: {
          allocatable: { cpu: '32', memory: '256Gi', pods: '250' },
          capacity: { cpu: '32', memory: '256Gi', pods: '250' },
        },
      });
      if (nodeRes.status !== 201) throw new StartupError(`creating Node ${nodeName}: HTTP ${nodeRes.status} ${nodeRes.body}`);

      const componentArgs = ['--bind-address=127.0.0.1', '--leader-elect=false', `--kubeconfig=${kubeconfigPath}`];
      const kcmProc = start('kube-controller-manager', bins.kubeControllerManager, [
        ...componentArgs,
        `--secure-port=${kcm}`,
        `--root-ca-file=${pki.caCert}`,
        `--service-account-private-key-file=${pki.saKey}`,
        `--cluster-name=berth-test`,
        '--use-service-account-credentials=false',
        '--profiling=false',
      ]);
      const schedProc = start('kube-scheduler', bins.kubeScheduler, [...componentArgs, `--secure-port=${scheduler}`, '--profiling=false']);
      const kwokProc = start('kwok', bins.kwok, [
        `--kubeconfig=${kubeconfigPath}`,
        `--config=${path.join(import.meta.dirname, 'kwok-stages.yaml')}`,
        '--manage-all-nodes=true',
        '--node-lease-duration-seconds=40',
        `--server-address=127.0.0.1:${kwokPort}`,
        `--cidr=${POD_CIDR}`,
        '--node-ip=10.0.0.10',
      ]);
      const all = [etcd, apiserverProc, kcmProc, schedProc, kwokProc];
      await Promise.all([
        waitFor('kube-controller-manager /healthz', async () => (await healthz(kcm)) === 200, all),
        waitFor('kube-scheduler /healthz', async () => (await healthz(scheduler)) === 200, all),
        waitFor(`Node ${nodeName} Ready (kwok)`, async () => {
          const res = await apiRequest(target, 'GET', `/api/v1/nodes/${nodeName}`);
          if (res.status !== 200) return false;
          const node = res.json() as { status?: { conditions?: Array<{ type: string; status: string }> } };
          return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
        }, all),
        waitFor('ServiceAccount default/default (kube-controller-manager)', async () =>
          (await apiRequest(target, 'GET', '/api/v1/namespaces/default/serviceaccounts/default')).status === 200, all),
      ]);
    }

    const info: ClusterInfo = {
      format: 1,
      ownerPid: process.pid,
      baseDir,
      logsDir: dirs.logs,
      server,
      caFile: pki.caCert,
      caData: Buffer.from(pki.caPem).toString('base64'),
      adminToken,
      kubeconfigPath,
      certKubeconfigPath,
      kubernetesVersion,
      helmBin: bins.helm,
      kubectlBin: bins.kubectl,
      helmHome: { config: dirs.helmConfig, cache: dirs.helmCache, data: dirs.helmData },
      nodeName,
      ports,
      processes: procs.map((p) => ({ name: p.name, pid: p.pid, logFile: p.logFile })),
      ...(reaper.pid !== undefined ? { reaperPid: reaper.pid } : {}),
      startupMs: Date.now() - t0,
    };
    writeFileSync(path.join(baseDir, 'cluster.json'), JSON.stringify(info, null, 2), { mode: 0o600 });
    sampler = setInterval(() => memory(), 2000);
    sampler.unref();
    log(
      `control plane ready in ${(info.startupMs / 1000).toFixed(1)}s: ${procs.map((p) => `${p.name}=${p.pid}`).join(' ')}; ` +
        `kubeconfig ${kubeconfigPath}; logs ${dirs.logs}`,
    );
    return { info, processes: procs, memory, stop };
  } catch (err) {
    return failStartup(err);
  }
}

/** Stops the processes listed in a cluster.json by PID (for a cluster started by another process). */
export async function stopClusterByInfo(info: ClusterInfo): Promise<Array<{ name: string; pid: number }>> {
  const list = [...info.processes].reverse();
  await stopProcesses(list, info.baseDir);
  if (info.reaperPid) signalIfOurs(info.reaperPid, info.baseDir, 'SIGTERM');
  return list.filter((p) => pidAlive(p.pid));
}
