// Starting and stopping the control-plane processes. Everything is tracked and
// stopped by PID; before signalling a PID we check that /proc/<pid>/cmdline
// still contains the cluster's own folder (the "marker"), so a PID the kernel
// has reused for someone else's process is never touched.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ManagedProcess {
  name: string;
  pid: number;
  logFile: string;
  child: ChildProcess;
  /** Resolves when the process has exited (and been reaped). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Set once the process has exited. */
  exitStatus?: { code: number | null; signal: NodeJS.Signals | null };
}

export interface StartOptions {
  logsDir: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Starts `bin args...` with stdout and stderr appended to <logsDir>/<name>.log. */
export function startProcess(name: string, bin: string, args: string[], opts: StartOptions): ManagedProcess {
  const logFile = path.join(opts.logsDir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(bin, args, {
      stdio: ['ignore', fd, fd],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) {
    throw new Error(`could not start ${name} (${bin}); see ${logFile}`);
  }
  const proc: ManagedProcess = {
    name,
    pid: child.pid,
    logFile,
    child,
    exited: new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        proc.exitStatus = { code, signal };
        resolve({ code, signal });
      });
      child.once('error', () => {
        proc.exitStatus ??= { code: null, signal: null };
        resolve(proc.exitStatus);
      });
    }),
  };
  // Don't keep the test runner alive just for these; teardown stops them explicitly.
  child.unref();
  return proc;
}

/** True if the PID exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** True if /proc/<pid>/cmdline mentions `marker` (the cluster's folder). */
export function pidMatches(pid: number, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
  } catch {
    return false;
  }
}

/** Sends `signal` to `pid` if it is still ours; returns whether it was sent. */
export function signalIfOurs(pid: number, marker: string, signal: NodeJS.Signals): boolean {
  if (!pidAlive(pid) || !pidMatches(pid, marker)) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops processes by PID: SIGTERM, then SIGKILL after `graceMs`. Works for
 * processes this process started (waits for their exit event, so they are
 * reaped) and for bare PIDs (polls /proc).
 */
export async function stopProcesses(
  procs: Array<{ pid: number; name: string; exited?: Promise<unknown> }>,
  marker: string,
  graceMs = 10_000,
): Promise<void> {
  await Promise.all(
    procs.map(async (p) => {
      if (!signalIfOurs(p.pid, marker, 'SIGTERM')) {
        if (p.exited) await Promise.race([p.exited, sleep(1000)]);
        return;
      }
      if (await waitGone(p, graceMs)) return;
      signalIfOurs(p.pid, marker, 'SIGKILL');
      await waitGone(p, 5000);
    }),
  );
}

async function waitGone(p: { pid: number; exited?: Promise<unknown> }, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  if (p.exited) {
    const done = await Promise.race([p.exited.then(() => true), sleep(ms).then(() => false)]);
    if (done) return true;
  }
  while (Date.now() < deadline) {
    if (!pidAlive(p.pid)) return true;
    await sleep(100);
  }
  return !pidAlive(p.pid);
}

/** Peak resident set size (VmHWM) and current RSS of a PID, in KiB; undefined if gone. */
export function memoryOf(pid: number): { peakKiB: number; rssKiB: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    return { peakKiB: Number(hwm?.[1] ?? 0), rssKiB: Number(rss?.[1] ?? 0) };
  } catch {
    return undefined;
  }
}

/** `count` distinct free TCP ports on 127.0.0.1 (kept open until all are chosen). */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const srv = net.createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve());
      });
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') throw new Error('no port');
      ports.push(addr.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** Last `lines` lines of a log file (for error messages). */
export function tailFile(file: string, lines = 25): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines - 1).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Addresses the given PIDs listen on (TCP LISTEN sockets and bound UDP sockets),
 * from /proc/<pid>/fd and /proc/net/{tcp,tcp6,udp,udp6}. Each entry is "ip:port".
 */
export function listeningAddresses(pid: number): string[] {
  const inodes = new Set<string>();
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
  for (const fd of fds) {
    try {
      const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m?.[1]) inodes.add(m[1]);
    } catch {
      // fd closed meanwhile
    }
  }
  const out: string[] = [];
  for (const table of ['tcp', 'tcp6', 'udp', 'udp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const local = cols[1] ?? '';
      const state = cols[3] ?? '';
      const inode = cols[9] ?? '';
      if (!inodes.has(inode)) continue;
      const isTcp = table.startsWith('tcp');
      if (isTcp && state !== '0A') continue; // LISTEN
      if (!isTcp && state !== '07') continue; // UDP "unconnected" (bound)
      out.push(decodeProcAddress(local));
    }
  }
  return out;
}

function decodeProcAddress(hexAddr: string): string {
  const [ipHex = '', portHex = '0'] = hexAddr.split(':');
  const port = parseInt(portHex, 16);
  if (ipHex.length === 8) {
    const b = Buffer.from(ipHex, 'hex');
    return `${b[3]}.${b[2]}.${b[1]}.${b[0]}:${port}`;
  }
  // IPv6: four 32-bit little-endian words
  const words: string[] = [];
  for (let i = 0; i < 32; i += 8) {
    const w = Buffer.from(ipHex.slice(i, i + 8), 'hex').reverse().toString('hex');
    words.push(w.slice(0, 4), w.slice(4, 8));
  }
  const v6 = words.join(':');
  if (v6 === '0000:0000:0000:0000:0000:ffff:0100:007f') return `127.0.0.1:${port}`; // v4-mapped loopback
  if (v6 === '0000:0000:0000:0000:0000:0000:0000:0001') return `[::1]:${port}`;
  if (/^0000:0000:0000:0000:0000:ffff:/.test(v6)) {
    const tail = v6.slice(-9).replace(':', '');
    const b = Buffer.from(tail, 'hex');
    return `${b[0]}.${b[1]}.${b[2]}.${b[3]}:${port}`;
  }
  if (/^(0000:){7}0000$/.test(v6)) return `[::]:${port}`;
  return `[${v6}]:${port}`;
}
