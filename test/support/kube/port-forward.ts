// `kubectl port-forward` from a test in the root network namespace to a Pod or
// Service of a cluster (API server -> kubelet -> containerd's stream server, all
// inside the real node's namespace): a local port on 127.0.0.1 that reaches it.
import { execa, type ResultPromise } from 'execa';
import type { SharedCluster } from './shared.ts';

export interface PortForward {
  /** Local port on 127.0.0.1. */
  port: number;
  close(): Promise<void>;
}

/** target: "pod/<name>", "svc/<name>"...; remotePort: the port (number or name) on the target. */
export async function portForward(
  kube: Pick<SharedCluster, 'kubectlBin' | 'kubeconfigPath'>,
  namespace: string,
  target: string,
  remotePort: number | string,
  timeoutMs = 30_000,
): Promise<PortForward> {
  const child: ResultPromise = execa(
    kube.kubectlBin,
    ['port-forward', '--kubeconfig', kube.kubeconfigPath, '-n', namespace, '--address', '127.0.0.1', target, `:${remotePort}`],
    { buffer: false, reject: false, stdin: 'ignore' },
  );
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`kubectl port-forward ${target} gave no port in ${timeoutMs} ms: ${stderr.trim()}`)), timeoutMs);
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void child.then((r) => {
      clearTimeout(timer);
      reject(new Error(`kubectl port-forward ${target} exited (${r.exitCode}): ${stderr.trim()}`));
    });
  });
  return {
    port,
    close: async () => {
      child.kill('SIGTERM');
      await child;
    },
  };
}
