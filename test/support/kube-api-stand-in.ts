// A stand-in Kubernetes API server for tests that run a stand-in `helm` and need
// no cluster: it answers the one question Berth asks before running helm in a
// namespace (SelfSubjectAccessReview: may I list Secrets there?) with "allowed",
// and 404 to anything else, so a test notices if Berth starts asking more.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';

export interface KubeApiStandIn {
  /** A kubeconfig pointing at the stand-in (plain HTTP on 127.0.0.1). */
  kubeconfigPath: string;
  /** Requests it has seen, as "METHOD path". */
  requests: string[];
  close(): Promise<void>;
}

export async function startKubeApiStandIn(kubeconfigPath: string): Promise<KubeApiStandIn> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.method === 'POST' && req.url?.startsWith('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews')) {
        res.end(JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', status: { allowed: true } }));
        return;
      }
      res.statusCode = 404;
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  // Plain HTTP on loopback: @kubernetes/client-node accepts an http:// server only with skip-TLS-verify set.
  writeFileSync(
    kubeconfigPath,
    `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`,
  );
  return {
    kubeconfigPath,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
