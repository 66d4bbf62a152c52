// The helm CLI (Helm 4), driven with argument arrays. Values always travel
// on stdin (`--values -`), never in argv, so secrets stay out of process
// listings and error messages.
import type { ExecaError } from 'execa';

export interface HelmRunOptions {
  bin: string;
  kubeconfig: string | undefined;
  /** Private config/cache/data homes so Berth's helm never shares state with a user's. */
  home: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export class HelmError extends Error {
  readonly stderr: string;
  readonly exitCode: number | undefined;
  constructor(message: string, stderr: string, exitCode: number | undefined) {
    super(message);
    this.name = 'HelmError';
    this.stderr = stderr;
    this.exitCode = exitCode;
  }
}

export async function helm(args: string[], opts: HelmRunOptions & { input?: string }): Promise<string> {
  // Imported when helm first runs: a broker without helm plans skips its load at start.
  const { execa } = await import('execa');
  try {
    const result = await execa(opts.bin, args, {
      input: opts.input,
      cancelSignal: opts.signal,
      timeout: opts.timeoutMs,
      forceKillAfterDelay: 5000,
      // execa's `cleanup` installs signal-exit handlers while helm runs; with them a
      // SIGTERM re-raised itself and killed Berth (exit 143) before the graceful
      // shutdown could hand leases back. Berth ends helm itself through
      // `cancelSignal`, and its own process group keeps a terminal's Ctrl-C from
      // killing helm under a shutdown that would let it finish.
      cleanup: false,
      detached: true,
      extendEnv: false,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: opts.home,
        HELM_CONFIG_HOME: `${opts.home}/config`,
        HELM_CACHE_HOME: `${opts.home}/cache`,
        HELM_DATA_HOME: `${opts.home}/data`,
        ...(opts.kubeconfig ? { KUBECONFIG: opts.kubeconfig } : {}),
        // In a Pod without KUBECONFIG, helm finds the API server through these (client-go's in-cluster
        // config, with the mounted ServiceAccount token); without them it tries localhost:8080.
        ...(!opts.kubeconfig && process.env.KUBERNETES_SERVICE_HOST
          ? { KUBERNETES_SERVICE_HOST: process.env.KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT: process.env.KUBERNETES_SERVICE_PORT ?? '443' }
          : {}),
      },
      stripFinalNewline: true,
    });
    return result.stdout;
  } catch (err) {
    const e = err as ExecaError;
    const stderr = String(e.stderr ?? '').trim();
    if (e.isCanceled) throw new HelmError('helm was cancelled', stderr, undefined);
    if ((e as { code?: string }).code === 'ENOENT') {
      throw new HelmError(`the helm binary "${opts.bin}" was not found; set BERTH_HELM_BIN to a Helm 4 binary`, '', undefined);
    }
    const reason = stderr.split('\n').filter((l) => l.trim() !== '').slice(-3).join(' ') || e.shortMessage;
    throw new HelmError(`helm ${args[0]} failed: ${reason}`, stderr, e.exitCode);
  }
}

/** Errors worth retrying: the API server was unreachable or busy, or another helm was mid-operation. */
export function isTransientHelmError(err: HelmError): boolean {
  return /connection refused|i\/o timeout|TLS handshake timeout|etcdserver|the server is currently unable|too many requests|another operation \(install\/upgrade\/rollback\) is in progress|context deadline exceeded|EOF$/i.test(
    err.stderr || err.message,
  );
}
