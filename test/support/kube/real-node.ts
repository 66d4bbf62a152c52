// A Kubernetes cluster with one real node, for tests whose Pods must really run:
//
//   network namespace berth-rn-<random> (node IP 10.200.0.2, pods 10.244.0.0/24, Services 10.96.0.0/16)
//     etcd -> kube-apiserver -> kube-controller-manager, kube-scheduler
//     containerd 2.x (+ runc shim, Debian's runc) <- kubelet (bridge CNI), kube-proxy (iptables)
//   root namespace: socat 127.0.0.1:<port> -> the API server (tests, helm, Berth, port-forward)
//
// Every daemon is started with `nsenter --net=...` (not `ip netns exec`, which remounts
// /sys and hides the cgroups); nothing is routed out of the namespace. Images come from
// tools/build-images.sh (no registry) and are imported into containerd as localhost/...
// Pods reach the API server at https://10.96.0.1 with their ServiceAccount token
// (kube-proxy -> the advertised node IP). No cluster DNS: Services by IP.
//
// One real node per machine at a time: a lock folder /run/lock/berth-real-node. Teardown
// deletes the Pods through the API (kubelet runs CNI DEL and unmounts), stops the daemons
// by PID, then node-host.ts undoes the rest (shims, mounts, cgroups, netns, sysctls) and
// lists anything still left, which fails the run. See docs in test/support/kube/README.md.
import { randomBytes } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { apiRequest, writeKubeconfig, type ApiTarget } from './api.ts';
import { kubeBinaries, nodeBinaries, repoRoot } from './binaries.ts';
import type { ClusterInfo, MemoryReport, RunningCluster, StopReport } from './cluster.ts';
import { hostLeftovers, readHostState, recordHost, teardownHost, type HostState } from './node-host.ts';
import { makePki } from './pki.ts';
import { freePorts, memoryOf, pidAlive, startProcess, stopProcesses, tailFile, type ManagedProcess } from './processes.ts';

export const NODE_NAME = 'berth-node';
export const NODE_IP = '10.200.0.2';
const NODE_GATEWAY = '10.200.0.1'; // nobody answers there: the default route leads nowhere
export const NODE_SERVICE_CIDR = '10.96.0.0/16';
export const NODE_SERVICE_IP = '10.96.0.1';
export const NODE_POD_CIDR = '10.244.0.0/16';
const NODE_POD_SUBNET = '10.244.0.0/24';
const LOCK_DIR = '/run/lock/berth-real-node';
const TMP_PREFIX = 'berth-kube-node-';
// Inside the namespace: fixed, below the ephemeral range.
const PORTS = { etcdClient: 2379, etcdPeer: 2380, apiserver: 6443, kcm: 10257, scheduler: 10259, kubelet: 10250 };

/** ClusterInfo of the real-node cluster, plus where the node lives. */
export interface RealNodeInfo extends ClusterInfo {
  realNode: {
    netns: string;
    nodeIP: string;
    serviceCIDR: string;
    podCIDR: string;
    containerdAddress: string;
    ctrBin: string;
    /** image reference -> docker-archive it was imported from */
    images: Record<string, string>;
    /** seconds: images import, daemons up to Node Ready */
    timings: Record<string, number>;
  };
}

export interface RealNodeStopReport extends StopReport {
  /** What the node left on the machine (processes, mounts, cgroups, netns, sysctls, paths). */
  hostLeftovers: string[];
  teardownMs: number;
}

export interface RunningRealNode extends Omit<RunningCluster, 'info' | 'stop'> {
  info: RealNodeInfo;
  stop(opts?: { keepLogs?: boolean }): Promise<RealNodeStopReport>;
}

/** Debian packages (and the commands that prove them) the real node needs. */
const PREREQUISITES: Array<{ check: string; pkg: string }> = [
  { check: '/usr/sbin/runc', pkg: 'runc' },
  { check: '/usr/lib/cni/bridge', pkg: 'containernetworking-plugins' },
  { check: '/usr/lib/cni/host-local', pkg: 'containernetworking-plugins' },
  { check: '/usr/lib/cni/loopback', pkg: 'containernetworking-plugins' },
  { check: '/usr/lib/cni/portmap', pkg: 'containernetworking-plugins' },
  { check: 'iptables', pkg: 'iptables' },
  { check: 'conntrack', pkg: 'conntrack' },
  { check: 'socat', pkg: 'socat' },
  { check: 'ip', pkg: 'iproute2' },
  { check: 'nsenter', pkg: 'util-linux' },
  { check: 'mmdebstrap', pkg: 'mmdebstrap' },
  { check: 'umoci', pkg: 'umoci' },
  { check: 'skopeo', pkg: 'skopeo' },
];

function onPath(cmd: string): boolean {
  if (cmd.startsWith('/')) {
    try {
      accessSync(cmd, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }
  return (process.env.PATH ?? '').split(':').some((d) => onPath(path.join(d, cmd)));
}

/** Throws one sentence naming what is missing and how to get it, or returns quietly. */
export function checkRealNodePrerequisites(): void {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('the real test node needs root (network namespaces, cgroups, mounts)');
  if (!existsSync('/sys/fs/cgroup')) problems.push('no /sys/fs/cgroup');
  const pkgs = [...new Set(PREREQUISITES.filter((p) => !onPath(p.check)).map((p) => p.pkg))];
  if (pkgs.length > 0) {
    problems.push(
      `Debian packages missing: ${pkgs.join(' ')} (apt-get install ${pkgs.join(' ')}; .ci/run installs them)`,
    );
  }
  if (problems.length > 0) {
    throw new Error(`the real-node test cluster cannot start: ${problems.join('; ')}. BERTH_REAL_NODE=0 skips it.`);
  }
}

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${(r.stderr || r.stdout || '').trim()}`);
  return r.stdout;
}

// --- the lock -----------------------------------------------------------------------------------

interface LockOwner {
  pid: number;
  baseDir: string;
}

function readLock(): LockOwner | undefined {
  try {
    return JSON.parse(readFileSync(path.join(LOCK_DIR, 'owner.json'), 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

/** Takes the machine's one real-node lock; cleans up after an owner that died; waits for a live one. */
async function acquireLock(baseDir: string, log: (l: string) => void, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  let said = false;
  for (;;) {
    try {
      mkdirSync(path.dirname(LOCK_DIR), { recursive: true });
      mkdirSync(LOCK_DIR);
      writeFileSync(path.join(LOCK_DIR, 'owner.json'), JSON.stringify({ pid: process.pid, baseDir } satisfies LockOwner));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = readLock();
    if (owner && !pidAlive(owner.pid)) {
      log(`a real test node of process ${owner.pid} (gone) was not torn down; cleaning up after it`);
      const state = readHostState(owner.baseDir);
      if (state) await teardownHost(state);
      rmSync(LOCK_DIR, { recursive: true, force: true });
      continue;
    }
    if (!owner) {
      // being written right now, or a torn lock: give the writer a moment
      await sleep(500);
      if (!readLock()) rmSync(LOCK_DIR, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > until) throw new Error(`another real test node (process ${owner.pid}, ${owner.baseDir}) still holds ${LOCK_DIR}`);
    if (!said) log(`another real test node runs on this machine (process ${owner.pid}); waiting for it to finish...`);
    said = true;
    await sleep(2000);
  }
}

function releaseLock(): void {
  if (readLock()?.pid === process.pid) rmSync(LOCK_DIR, { recursive: true, force: true });
}

// --- configuration files -----------------------------------------------------------------------

interface NodePaths {
  containerdRoot: string;
  containerdState: string;
  containerdSock: string;
  cniConf: string;
  cniIpam: string;
  resolvConf: string;
  podLogs: string;
}

function containerdConfig(d: NodePaths, pauseRef: string): string {
  return `version = 3
root = "${d.containerdRoot}"
state = "${d.containerdState}"

[grpc]
  address = "${d.containerdSock}"
[ttrpc]
  address = "${d.containerdSock}.ttrpc"
[metrics]
  address = ""

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "10010"

[plugins.'io.containerd.cri.v1.runtime']
  # Root in this VM lacks CAP_SYS_RESOURCE: without this every sandbox fails with
  # "can't get final child's PID from pipe: EOF" (runc cannot lower oom_score_adj).
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "${d.cniConf}"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "${pauseRef}"
`;
}

function cniConfig(d: NodePaths): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'berth',
      plugins: [
        {
          type: 'bridge',
          bridge: 'cni0',
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: NODE_POD_SUBNET }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: d.cniIpam },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

function kubeletConfig(d: NodePaths, caFile: string): string {
  return JSON.stringify(
    {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      // This machine is cgroup v1 (hybrid); kubelet refuses v1 by default since 1.35.
      failCgroupV1: false,
      cgroupDriver: 'cgroupfs',
      failSwapOn: false,
      address: NODE_IP,
      port: PORTS.kubelet,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort: 10248,
      authentication: { x509: { clientCAFile: caFile }, webhook: { enabled: true }, anonymous: { enabled: false } },
      authorization: { mode: 'Webhook' },
      containerRuntimeEndpoint: `unix://${d.containerdSock}`,
      protectKernelDefaults: false,
      makeIPTablesUtilChains: false,
      resolvConf: d.resolvConf,
      podLogsDir: d.podLogs,
      clusterDomain: 'cluster.local',
      // A shared disk: evict only when it is really full.
      evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '2%', 'nodefs.inodesFree': '1%', 'imagefs.available': '2%' },
      imageGCHighThresholdPercent: 99,
      imageGCLowThresholdPercent: 98,
      serializeImagePulls: false,
      maxPods: 60,
      nodeStatusUpdateFrequency: '5s',
      syncFrequency: '10s',
      fileCheckFrequency: '10s',
    },
    null,
    2,
  );
}

function kubeProxyConfig(kubeconfig: string): string {
  return JSON.stringify(
    {
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      clientConnection: { kubeconfig },
      mode: 'iptables',
      hostnameOverride: NODE_NAME,
      bindAddress: NODE_IP,
      clusterCIDR: NODE_POD_CIDR,
      healthzBindAddress: '127.0.0.1:10256',
      metricsBindAddress: '127.0.0.1:10249',
      // 0: leave the machine-wide conntrack settings alone (they are not per namespace).
      conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
      // Pod -> Service -> Pod on the same bridge: masquerade so replies come back through the node.
      iptables: { masqueradeAll: true, syncPeriod: '10s', minSyncPeriod: '0s' },
    },
    null,
    2,
  );
}

// --- images -------------------------------------------------------------------------------------

/**
 * image reference -> docker-archive tar. scripts/test.ts builds the images before the run and
 * passes the list in BERTH_NODE_IMAGES (a file of "<ref> <tar>" lines), so the run uses exactly
 * those; otherwise tools/build-images.sh --list is asked (it builds what is missing).
 */
export async function nodeImages(): Promise<Record<string, string>> {
  const listFile = process.env.BERTH_NODE_IMAGES;
  const text = listFile
    ? readFileSync(listFile, 'utf8')
    : await new Promise<string>((resolve, reject) => {
        const c = spawn('bash', [path.join(repoRoot, 'tools', 'build-images.sh'), '--list'], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        c.stdout.on('data', (b: Buffer) => (out += b.toString()));
        c.on('error', reject);
        c.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`tools/build-images.sh --list exited with ${code}`))));
      });
  const images: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const [ref, tar] = line.trim().split(' ');
    if (ref && tar) images[ref] = tar;
  }
  return images;
}

// --- start --------------------------------------------------------------------------------------

export interface RealNodeOptions {
  log?: (line: string) => void;
  timeoutMs?: number;
  /** How long to wait for another run's real node to finish. */
  lockTimeoutMs?: number;
}

export async function startRealNodeCluster(opts: RealNodeOptions = {}): Promise<RunningRealNode> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`[berth-node] ${l}\n`));
  checkRealNodePrerequisites();
  const bins = kubeBinaries();
  const nbins = nodeBinaries();
  const images = await nodeImages();
  const pauseRef = Object.keys(images).find((r) => r.startsWith('localhost/pause:'));
  if (!pauseRef) throw new Error('tools/build-images.sh listed no pause image');

  const baseDir = mkdtempSync(path.join(os.tmpdir(), TMP_PREFIX));
  await acquireLock(baseDir, log, opts.lockTimeoutMs ?? 30 * 60_000);
  // Startup time (and its deadline) counts from here: building images and waiting for the lock are not startup.
  const t0 = Date.now();
  const deadline = t0 + (opts.timeoutMs ?? 300_000);
  const netns = `berth-rn-${randomBytes(3).toString('hex')}`;
  const host: HostState = recordHost(baseDir, netns);

  const dirs = {
    pki: path.join(baseDir, 'pki'),
    etcd: path.join(baseDir, 'etcd'),
    logs: path.join(baseDir, 'logs'),
    config: path.join(baseDir, 'config'),
    kubeconfigs: path.join(baseDir, 'kubeconfigs'),
    helmConfig: path.join(baseDir, 'helm', 'config'),
    helmCache: path.join(baseDir, 'helm', 'cache'),
    helmData: path.join(baseDir, 'helm', 'data'),
    containerdRoot: path.join(baseDir, 'containerd', 'root'),
    containerdState: path.join(baseDir, 'containerd', 'state'),
    cniConf: path.join(baseDir, 'cni', 'conf'),
    cniIpam: path.join(baseDir, 'cni', 'ipam'),
    kubeletRoot: path.join(baseDir, 'kubelet'),
    kubeletCerts: path.join(baseDir, 'kubelet-pki'),
    podLogs: path.join(baseDir, 'pod-logs'),
  };
  for (const dir of Object.values(dirs)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const d = {
    ...dirs,
    containerdSock: path.join(baseDir, 'containerd', 'containerd.sock'),
    resolvConf: path.join(dirs.config, 'resolv.conf'),
  };

  const procs: ManagedProcess[] = [];
  const pidsFile = path.join(baseDir, 'pids.json');
  const writePids = (): void => writeFileSync(pidsFile, JSON.stringify({ marker: baseDir, pids: procs.map((p) => ({ name: p.name, pid: p.pid })) }));
  writePids();
  const reaper = spawn(process.execPath, [path.join(import.meta.dirname, 'reaper.ts'), String(process.pid), pidsFile], {
    detached: true,
    stdio: 'ignore',
  });
  reaper.unref();

  const inNs = (name: string, bin: string, args: string[], env?: NodeJS.ProcessEnv): ManagedProcess => {
    const p = startProcess(name, 'nsenter', [`--net=/run/netns/${netns}`, bin, ...args], { logsDir: d.logs, ...(env ? { env } : {}) });
    procs.push(p);
    writePids();
    return p;
  };
  const ctr = (args: string[]): string => sh(nbins.ctr, ['--address', d.containerdSock, '--namespace', 'k8s.io', ...args]);

  let sampler: NodeJS.Timeout | undefined;
  let maxSampledTotalKiB = 0;
  const memory = (): MemoryReport => {
    const perProcess = procs.map((p) => ({ name: p.name, pid: p.pid, peakKiB: 0, rssKiB: 0, ...memoryOf(p.pid) }));
    const total = perProcess.reduce((a, p) => a + p.rssKiB, 0);
    maxSampledTotalKiB = Math.max(maxSampledTotalKiB, total);
    return { sumOfPeaksKiB: perProcess.reduce((a, p) => a + p.peakKiB, 0), maxSampledTotalKiB, perProcess };
  };

  let target: ApiTarget | undefined;
  let stopped: Promise<RealNodeStopReport> | undefined;
  const stop = (stopOpts: { keepLogs?: boolean } = {}): Promise<RealNodeStopReport> => {
    stopped ??= (async (): Promise<RealNodeStopReport> => {
      const ts = Date.now();
      const mem = memory();
      if (sampler) clearInterval(sampler);
      const byName = (names: string[]): ManagedProcess[] => procs.filter((p) => names.includes(p.name));
      // 1. No controller recreates Pods any more; delete them all so kubelet stops them properly.
      await stopProcesses(byName(['kube-controller-manager', 'kube-scheduler']), baseDir);
      if (target && procs.some((p) => p.name === 'kubelet' && !p.exitStatus)) {
        await deleteAllPods(target, () => ctr(['tasks', 'ls', '-q']).trim() === '').catch((err: unknown) =>
          log(`deleting the Pods before teardown: ${(err as Error).message}`),
        );
      }
      // 2. The daemons, by PID.
      await stopProcesses(byName(['kube-proxy', 'kubelet']), baseDir);
      await stopProcesses(byName(['apiserver-bridge', 'kube-apiserver']), baseDir);
      await stopProcesses(byName(['etcd', 'containerd']), baseDir);
      await stopProcesses(procs, baseDir);
      rmSync(pidsFile, { force: true }); // the reaper exits by itself
      if (reaper.pid !== undefined) await stopProcesses([{ name: 'reaper', pid: reaper.pid }], baseDir, 3000);
      // 3. What the daemons leave: shims, containers, mounts, cgroups, the namespace, sysctls.
      const problems = await teardownHost(host);
      for (const p of problems) log(`teardown: ${p}`);
      const leftovers = hostLeftovers(host);
      releaseLock();
      const leftRunning = [...procs, ...(reaper.pid ? [{ name: 'reaper', pid: reaper.pid }] : [])]
        .filter((p) => pidAlive(p.pid))
        .map((p) => ({ name: p.name, pid: p.pid }));
      if (leftRunning.length === 0 && leftovers.length === 0 && !stopOpts.keepLogs) {
        rmSync(baseDir, { recursive: true, force: true });
      } else {
        for (const k of ['pki', 'etcd', 'kubeconfigs', 'helm', 'containerd', 'kubelet', 'kubelet-pki']) {
          rmSync(path.join(baseDir, k), { recursive: true, force: true });
        }
      }
      return { leftRunning, memory: mem, logsDir: d.logs, hostLeftovers: leftovers, teardownMs: Date.now() - ts };
    })();
    return stopped;
  };

  const waitFor = async (what: string, check: () => Promise<boolean> | boolean, watch: ManagedProcess[], timeoutMs = 120_000): Promise<void> => {
    const until = Math.min(deadline, Date.now() + timeoutMs);
    let delay = 100;
    for (;;) {
      for (const p of watch) {
        if (p.exitStatus) {
          throw new Error(
            `${p.name} (pid ${p.pid}) exited (code ${p.exitStatus.code}, signal ${p.exitStatus.signal}) while waiting for ${what}.\n` +
              `Last lines of ${p.logFile}:\n${tailFile(p.logFile)}`,
          );
        }
      }
      if (await Promise.resolve().then(check).catch(() => false)) return;
      if (Date.now() > until) {
        throw new Error(`timed out waiting for ${what}.\n${watch.map((p) => `--- ${p.logFile}:\n${tailFile(p.logFile, 15)}`).join('\n')}`);
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 1000);
    }
  };
  const since = (): string => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
  const timings: Record<string, number> = {};

  try {
    // 1. The network namespace: loopback, a veth pair carrying the node IP, a default route to nowhere.
    sh('ip', ['netns', 'add', netns]);
    sh('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', netns, 'link', 'add', 'brn0', 'type', 'veth', 'peer', 'name', 'brn1']);
    sh('ip', ['-n', netns, 'addr', 'add', `${NODE_IP}/24`, 'dev', 'brn0']);
    sh('ip', ['-n', netns, 'link', 'set', 'brn0', 'up']);
    sh('ip', ['-n', netns, 'link', 'set', 'brn1', 'up']);
    sh('ip', ['-n', netns, 'route', 'add', 'default', 'via', NODE_GATEWAY, 'dev', 'brn0']);

    // 2. PKI, kubeconfigs, configuration files.
    const pki = makePki(d.pki, NODE_SERVICE_IP, [NODE_IP]);
    const adminToken = randomBytes(24).toString('hex');
    const tokensFile = path.join(d.config, 'tokens.csv');
    writeFileSync(tokensFile, `${adminToken},berth-admin,berth-admin,"system:masters"\n`, { mode: 0o600 });
    const adminCertPem = readFileSync(pki.adminCert, 'utf8');
    const adminKeyPem = readFileSync(pki.adminKey, 'utf8');
    // Components inside the namespace reach the API server directly.
    const inNsKubeconfig = writeKubeconfig(path.join(d.kubeconfigs, 'in-namespace.kubeconfig'), {
      server: `https://127.0.0.1:${PORTS.apiserver}`,
      caPem: pki.caPem,
      user: 'berth-admin-cert',
      clientCertPem: adminCertPem,
      clientKeyPem: adminKeyPem,
    });
    writeFileSync(d.resolvConf, `nameserver ${NODE_GATEWAY}\noptions ndots:1 timeout:1 attempts:1\n`);
    writeFileSync(path.join(d.cniConf, '10-berth.conflist'), cniConfig(d));
    const containerdToml = path.join(d.config, 'containerd.toml');
    writeFileSync(containerdToml, containerdConfig(d, pauseRef));
    const kubeletYaml = path.join(d.config, 'kubelet.json');
    writeFileSync(kubeletYaml, kubeletConfig(d, pki.caCert));
    const kubeProxyYaml = path.join(d.config, 'kube-proxy.json');
    writeFileSync(kubeProxyYaml, kubeProxyConfig(inNsKubeconfig));

    // 3. containerd, etcd, the API server; the bridge from the root namespace.
    const nodePath = `${path.dirname(nbins.containerdShim)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
    const containerd = inNs('containerd', nbins.containerd, ['--config', containerdToml, '--log-level', 'warn'], {
      ...process.env,
      PATH: nodePath,
    });
    const etcdUrl = `http://127.0.0.1:${PORTS.etcdClient}`;
    const peerUrl = `http://127.0.0.1:${PORTS.etcdPeer}`;
    const etcd = inNs('etcd', bins.etcd, [
      '--name=berth-node',
      `--data-dir=${d.etcd}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=berth-node=${peerUrl}`,
      '--initial-cluster-state=new',
      '--unsafe-no-fsync=true',
      '--auto-compaction-retention=1',
      '--log-level=warn',
    ]);
    const apiserver = inNs('kube-apiserver', bins.kubeApiserver, [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=0.0.0.0',
      `--advertise-address=${NODE_IP}`,
      `--secure-port=${PORTS.apiserver}`,
      `--tls-cert-file=${pki.serverCert}`,
      `--tls-private-key-file=${pki.serverKey}`,
      `--client-ca-file=${pki.caCert}`,
      `--token-auth-file=${tokensFile}`,
      '--authorization-mode=Node,RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.saPub}`,
      `--service-account-signing-key-file=${pki.saKey}`,
      `--service-cluster-ip-range=${NODE_SERVICE_CIDR}`,
      `--kubelet-client-certificate=${pki.adminCert}`,
      `--kubelet-client-key=${pki.adminKey}`,
      '--kubelet-preferred-address-types=InternalIP',
      '--allow-privileged=true',
      '--profiling=false',
    ]);
    const [bridgePort = 0] = await freePorts(1);
    const bridgeScript = path.join(d.config, 'apiserver-bridge.sh');
    writeFileSync(bridgeScript, `#!/bin/sh\nexec nsenter --net=/run/netns/${netns} socat STDIO TCP:127.0.0.1:${PORTS.apiserver}\n`, { mode: 0o755 });
    const bridge = startProcess('apiserver-bridge', 'socat', [`TCP-LISTEN:${bridgePort},bind=127.0.0.1,fork,reuseaddr`, `EXEC:${bridgeScript}`], {
      logsDir: d.logs,
    });
    procs.push(bridge);
    writePids();
    const server = `https://127.0.0.1:${bridgePort}`;
    target = { server, caPem: pki.caPem, token: adminToken };
    const t = target;
    const core = [containerd, etcd, apiserver, bridge];
    await waitFor('kube-apiserver /readyz (through the bridge)', async () => (await apiRequest(t, 'GET', '/readyz', undefined, 3000)).status === 200, core);
    log(`kube-apiserver ready at ${server} (node namespace ${netns}) after ${since()}`);

    // 4. Images into containerd (the pause image must be there before the first sandbox).
    await waitFor('containerd', () => existsSync(d.containerdSock) && ctr(['version']).includes('Server'), core, 60_000);
    const ti = Date.now();
    await Promise.all(
      Object.values(images).map(
        (tar) =>
          new Promise<void>((resolve, reject) => {
            const c = spawn(nbins.ctr, ['--address', d.containerdSock, '--namespace', 'k8s.io', 'images', 'import', tar], {
              stdio: ['ignore', 'ignore', 'pipe'],
            });
            let err = '';
            c.stderr.on('data', (b: Buffer) => (err += b.toString()));
            c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ctr images import ${tar}: ${err.trim()}`))));
            c.on('error', reject);
          }),
      ),
    );
    timings.imagesImport = (Date.now() - ti) / 1000;
    log(`imported ${Object.keys(images).join(', ')} into containerd in ${timings.imagesImport.toFixed(1)}s`);

    // 5. Controllers, kubelet, kube-proxy.
    const componentArgs = ['--bind-address=127.0.0.1', '--leader-elect=false', `--kubeconfig=${inNsKubeconfig}`, '--profiling=false'];
    const kcm = inNs('kube-controller-manager', bins.kubeControllerManager, [
      ...componentArgs,
      `--secure-port=${PORTS.kcm}`,
      `--root-ca-file=${pki.caCert}`,
      `--service-account-private-key-file=${pki.saKey}`,
      '--cluster-name=berth-node',
      '--use-service-account-credentials=false',
    ]);
    const scheduler = inNs('kube-scheduler', bins.kubeScheduler, [...componentArgs, `--secure-port=${PORTS.scheduler}`]);
    const kubelet = inNs(
      'kubelet',
      nbins.kubelet,
      [
        `--config=${kubeletYaml}`,
        `--kubeconfig=${inNsKubeconfig}`,
        `--root-dir=${d.kubeletRoot}`,
        `--cert-dir=${d.kubeletCerts}`,
        `--hostname-override=${NODE_NAME}`,
        `--node-ip=${NODE_IP}`,
        '--v=1',
      ],
      { ...process.env, PATH: nodePath },
    );
    const kubeProxy = inNs('kube-proxy', nbins.kubeProxy, [`--config=${kubeProxyYaml}`], { ...process.env, PATH: nodePath });
    const all = [...core, kcm, scheduler, kubelet, kubeProxy];
    await Promise.all([
      waitFor(`Node ${NODE_NAME} Ready`, async () => {
        const res = await apiRequest(t, 'GET', `/api/v1/nodes/${NODE_NAME}`);
        if (res.status !== 200) return false;
        const node = res.json() as { status?: { conditions?: Array<{ type: string; status: string }> } };
        return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
      }, all),
      waitFor('ServiceAccount default/default', async () => (await apiRequest(t, 'GET', '/api/v1/namespaces/default/serviceaccounts/default')).status === 200, all),
      waitFor('Endpoints default/kubernetes', async () => (await apiRequest(t, 'GET', '/api/v1/namespaces/default/endpoints/kubernetes')).body.includes(NODE_IP), all),
    ]);
    timings.nodeReady = (Date.now() - t0) / 1000;

    const kubeconfigPath = writeKubeconfig(path.join(d.kubeconfigs, 'admin.kubeconfig'), { server, caPem: pki.caPem, user: 'berth-admin', token: adminToken });
    const certKubeconfigPath = writeKubeconfig(path.join(d.kubeconfigs, 'admin-cert.kubeconfig'), {
      server,
      caPem: pki.caPem,
      user: 'berth-admin-cert',
      clientCertPem: adminCertPem,
      clientKeyPem: adminKeyPem,
    });
    const kubernetesVersion = ((await apiRequest(t, 'GET', '/version')).json() as { gitVersion?: string }).gitVersion ?? 'unknown';
    const info: RealNodeInfo = {
      format: 1,
      ownerPid: process.pid,
      baseDir,
      logsDir: d.logs,
      server,
      caFile: pki.caCert,
      caData: Buffer.from(pki.caPem).toString('base64'),
      adminToken,
      kubeconfigPath,
      certKubeconfigPath,
      kubernetesVersion,
      helmBin: bins.helm,
      kubectlBin: bins.kubectl,
      helmHome: { config: d.helmConfig, cache: d.helmCache, data: d.helmData },
      nodeName: NODE_NAME,
      ports: { apiserverBridge: bridgePort, ...PORTS },
      processes: procs.map((p) => ({ name: p.name, pid: p.pid, logFile: p.logFile })),
      ...(reaper.pid !== undefined ? { reaperPid: reaper.pid } : {}),
      startupMs: Date.now() - t0,
      realNode: {
        netns,
        nodeIP: NODE_IP,
        serviceCIDR: NODE_SERVICE_CIDR,
        podCIDR: NODE_POD_CIDR,
        containerdAddress: d.containerdSock,
        ctrBin: nbins.ctr,
        images,
        timings,
      },
    };
    writeFileSync(path.join(baseDir, 'cluster.json'), JSON.stringify(info, null, 2), { mode: 0o600 });
    sampler = setInterval(() => memory(), 2000);
    sampler.unref();
    log(`real node ${NODE_NAME} Ready in ${since()}: ${procs.map((p) => `${p.name}=${p.pid}`).join(' ')}; logs ${d.logs}`);
    return { info, processes: procs, memory, stop };
  } catch (err) {
    const report = await stop({ keepLogs: true }).catch(() => undefined);
    throw new Error(
      `the real-node test cluster did not start: ${err instanceof Error ? err.message : String(err)}\n` +
        `Logs of every component are in ${d.logs}.` +
        (report && report.hostLeftovers.length > 0 ? `\nLeft on the machine after cleaning up: ${report.hostLeftovers.join('; ')}` : ''),
    );
  }
}

/** Deletes every Pod (grace period 0) and waits until containerd runs no task, at most 60 s. */
async function deleteAllPods(target: ApiTarget, noTasks: () => boolean): Promise<void> {
  const res = await apiRequest(target, 'GET', '/api/v1/pods');
  const pods = ((res.json() as { items?: Array<{ metadata: { name: string; namespace: string } }> }).items ?? []);
  await Promise.all(
    pods.map((p) =>
      apiRequest(target, 'DELETE', `/api/v1/namespaces/${p.metadata.namespace}/pods/${p.metadata.name}`, { gracePeriodSeconds: 0 }),
    ),
  );
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    let done = false;
    try {
      done = noTasks();
    } catch {
      return; // containerd is gone
    }
    if (done) return;
    await sleep(500);
  }
}
