// What a real test node changes on the machine, and how to undo it.
//
// The real node (real-node.ts) runs every daemon inside a private network
// namespace, but some of what kubelet and containerd touch is global: cgroups
// (`kubepods` in every hierarchy), mounts (overlay snapshots, pod volumes, CNI
// netns pins under /run/netns), a few fixed paths, and three sysctls kubelet
// sets. This module records the machine's state before the node starts
// (`recordHost`), undoes everything in the right order (`teardownHost`), and
// lists whatever is still left (`hostLeftovers`), so the run can fail on it.
// It is also what the reaper and the next run use to clean up after a runner
// that died: the recorded state lives in <baseDir>/node-host.json.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The sysctls kubelet changes (kubelet's `setupKernelTunables`), restored at teardown. */
export const KUBELET_SYSCTLS = ['vm/overcommit_memory', 'kernel/panic', 'kernel/panic_on_oops'] as const;
/** Fixed paths kubelet and containerd use whatever their configuration says. */
export const FIXED_PATHS = ['/run/containerd', '/var/lib/kubelet', '/var/log/containers', '/var/log/pods'] as const;
const CGROUP_ROOT = '/sys/fs/cgroup';
/** Top-level cgroups the node creates (kubelet's QoS tree; containerd's namespace cgroup). */
const NODE_CGROUPS = ['kubepods', 'kubepods.slice', 'k8s.io'];

export interface HostState {
  format: 1;
  baseDir: string;
  netns: string;
  sysctls: Record<string, string>;
  /** FIXED_PATHS that did not exist before the node started (removed at teardown). */
  createdPaths: string[];
  /** Names in /run/netns before the node started (CNI pins made later are the node's). */
  netnsBefore: string[];
}

export function stateFile(baseDir: string): string {
  return path.join(baseDir, 'node-host.json');
}

function readSysctl(name: string): string {
  return readFileSync(`/proc/sys/${name}`, 'utf8').trim();
}

function listNetns(): string[] {
  try {
    return readdirSync('/run/netns').sort();
  } catch {
    return [];
  }
}

export function recordHost(baseDir: string, netns: string): HostState {
  const state: HostState = {
    format: 1,
    baseDir,
    netns,
    sysctls: Object.fromEntries(KUBELET_SYSCTLS.map((s) => [s, readSysctl(s)])),
    createdPaths: FIXED_PATHS.filter((p) => !existsSync(p)),
    netnsBefore: listNetns(),
  };
  writeFileSync(stateFile(baseDir), JSON.stringify(state, null, 2));
  return state;
}

export function readHostState(baseDir: string): HostState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(baseDir), 'utf8')) as HostState;
  } catch {
    return undefined;
  }
}

/** cgroup folders of the node, deepest first, in every hierarchy (v1 controllers and the v2 `unified` mount). */
function nodeCgroups(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    let entries: string[] = [];
    try {
      entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return;
    }
    for (const e of entries) walk(path.join(dir, e));
    out.push(dir);
  };
  let hierarchies: string[] = [];
  try {
    // Directories only: the v1 aliases (cpu -> cpu,cpuacct) are symlinks.
    hierarchies = readdirSync(CGROUP_ROOT, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => path.join(CGROUP_ROOT, e.name));
  } catch {
    return out;
  }
  for (const h of hierarchies) {
    for (const top of NODE_CGROUPS) {
      const d = path.join(h, top);
      if (existsSync(d)) walk(d);
    }
    // cgroup v2 mounted directly at /sys/fs/cgroup
    if (NODE_CGROUPS.includes(path.basename(h))) walk(h);
  }
  return out;
}

function pidsInCgroup(dir: string): number[] {
  try {
    return readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** PIDs whose command line mentions the node's folder (daemons, shims) or that live in its cgroups (containers). */
export function nodePids(baseDir: string): number[] {
  const pids = new Set<number>();
  for (const d of nodeCgroups()) for (const p of pidsInCgroup(d)) pids.add(p);
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(baseDir)) pids.add(Number(e));
    } catch {
      // gone
    }
  }
  pids.delete(process.pid);
  return [...pids];
}

/** Mount points the node made: anything under its folder, CNI netns pins, kubelet's fixed folder. */
function nodeMounts(state: Pick<HostState, 'baseDir' | 'netnsBefore'>): string[] {
  const before = new Set(state.netnsBefore.map((n) => `/run/netns/${n}`));
  const points = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/\\040/g, ' '));
  return points
    .filter(
      (p) =>
        p.startsWith(`${state.baseDir}/`) ||
        (p.startsWith('/run/netns/cni-') && !before.has(p)) ||
        p.startsWith('/var/lib/kubelet/') ||
        p.startsWith('/run/containerd/'),
    )
    .reverse(); // deepest (mounted last) first
}

function run(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

function killAll(pids: number[]): void {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function waitPidsGone(baseDir: string, ms: number): Promise<number[]> {
  const until = Date.now() + ms;
  for (;;) {
    const left = nodePids(baseDir).filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
        return !/\) [ZX] /.test(stat);
      } catch {
        return false;
      }
    });
    if (left.length === 0 || Date.now() > until) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Undoes what the node did to the machine, once its daemons were asked to stop:
 * kills what is left (shims, containers), unmounts, removes the cgroups, the
 * network namespace and the fixed paths it created, restores the sysctls.
 * Returns a list of what could not be undone (empty when all went well).
 */
export async function teardownHost(state: HostState): Promise<string[]> {
  const problems: string[] = [];
  killAll(nodePids(state.baseDir));
  const alive = await waitPidsGone(state.baseDir, 10_000);
  if (alive.length > 0) problems.push(`processes still alive: ${alive.join(' ')}`);

  for (const m of nodeMounts(state)) {
    const r = run('umount', [m]);
    if (!r.ok) {
      const lazy = run('umount', ['-l', m]);
      if (!lazy.ok) problems.push(`umount ${m}: ${r.out}`);
    }
  }
  for (const n of listNetns()) {
    if (n.startsWith('cni-') && !state.netnsBefore.includes(n)) rmSync(`/run/netns/${n}`, { force: true });
  }
  for (const d of nodeCgroups()) {
    try {
      rmdirSync(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') problems.push(`rmdir ${d}: ${(err as Error).message}`);
    }
  }
  if (listNetns().includes(state.netns)) {
    const r = run('ip', ['netns', 'delete', state.netns]);
    if (!r.ok) problems.push(`ip netns delete ${state.netns}: ${r.out}`);
  }
  for (const p of state.createdPaths) {
    // Only empty leftovers of ours: a mount still there would make rm fail, which is reported.
    try {
      rmSync(p, { recursive: true, force: true });
    } catch (err) {
      problems.push(`rm ${p}: ${(err as Error).message}`);
    }
  }
  for (const [name, value] of Object.entries(state.sysctls)) {
    try {
      if (readSysctl(name) !== value) writeFileSync(`/proc/sys/${name}`, value);
    } catch (err) {
      problems.push(`restore sysctl ${name}=${value}: ${(err as Error).message}`);
    }
  }
  return problems;
}

/** What the node left on the machine after teardown; empty when nothing. */
export function hostLeftovers(state: HostState): string[] {
  const left: string[] = [];
  const pids = nodePids(state.baseDir).filter((p) => existsSync(`/proc/${p}`));
  if (pids.length > 0) left.push(`processes: ${pids.map((p) => `${p} (${commOf(p)})`).join(', ')}`);
  const mounts = nodeMounts(state);
  if (mounts.length > 0) left.push(`mounts: ${mounts.join(', ')}`);
  const cgroups = nodeCgroups();
  if (cgroups.length > 0) left.push(`cgroups: ${cgroups.slice(-5).join(', ')}${cgroups.length > 5 ? ` (+${cgroups.length - 5})` : ''}`);
  const netns = listNetns().filter((n) => n === state.netns || (n.startsWith('cni-') && !state.netnsBefore.includes(n)));
  if (netns.length > 0) left.push(`network namespaces: ${netns.join(', ')}`);
  const veths = rootVeths();
  if (veths.length > 0) left.push(`veth devices in the root namespace: ${veths.join(', ')}`);
  for (const [name, value] of Object.entries(state.sysctls)) {
    const now = readSysctl(name);
    if (now !== value) left.push(`sysctl ${name.replace(/\//g, '.')} is ${now}, was ${value}`);
  }
  for (const p of state.createdPaths) if (existsSync(p)) left.push(`path ${p}`);
  return left;
}

function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** veth devices in the root namespace named like the node's (it makes its own only inside its namespace). */
function rootVeths(): string[] {
  try {
    return execFileSync('ip', ['-o', 'link', 'show', 'type', 'veth'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? '')
      .filter((n) => n.startsWith('brn') || n.startsWith('veth'));
  } catch {
    return [];
  }
}

/** True if `dir` exists and is older than `ms`. */
export function olderThan(dir: string, ms: number): boolean {
  try {
    return Date.now() - statSync(dir).mtimeMs > ms;
  } catch {
    return false;
  }
}
