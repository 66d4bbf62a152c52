// A tiny HTTPS client for the harness itself (health checks, bootstrap objects)
// and the kubeconfig writer. Tests should use @kubernetes/client-node.
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import YAML from 'yaml';

export interface ApiTarget {
  server: string; // https://127.0.0.1:<port>
  caPem: string;
  token?: string;
}

export interface ApiResponse {
  status: number;
  body: string;
  json(): unknown;
}

export function apiRequest(
  target: ApiTarget,
  method: string,
  urlPath: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<ApiResponse> {
  const url = new URL(urlPath, target.server);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ca: target.caPem,
        headers: {
          Accept: 'application/json',
          ...(target.token ? { Authorization: `Bearer ${target.token}` } : {}),
          ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) } : {}),
        },
        timeout: timeoutMs,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: text, json: () => JSON.parse(text) as unknown });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${url.href}`)));
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

/** A GET against a component's own /healthz (self-signed serving cert, so no CA check). */
export function healthz(port: number, pathName = '/healthz', timeoutMs = 3000): Promise<number> {
  return new Promise((resolve) => {
    const req = https.request(
      { host: '127.0.0.1', port, path: pathName, method: 'GET', rejectUnauthorized: false, timeout: timeoutMs, agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

export interface KubeconfigOptions {
  server: string;
  caPem: string;
  user: string;
  token?: string;
  clientCertPem?: string;
  clientKeyPem?: string;
  namespace?: string;
  clusterName?: string;
}

/** Kubeconfig YAML. */
export function kubeconfigText(o: KubeconfigOptions): string {
  const cluster = o.clusterName ?? 'berth-test';
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const user: Record<string, string> = {};
  if (o.token) user.token = o.token;
  if (o.clientCertPem) user['client-certificate-data'] = b64(o.clientCertPem);
  if (o.clientKeyPem) user['client-key-data'] = b64(o.clientKeyPem);
  const context = `${o.user}@${cluster}`;
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: cluster, cluster: { server: o.server, 'certificate-authority-data': b64(o.caPem) } }],
    users: [{ name: o.user, user }],
    contexts: [{ name: context, context: { cluster, user: o.user, ...(o.namespace ? { namespace: o.namespace } : {}) } }],
    'current-context': context,
    preferences: {},
  };
  return YAML.stringify(doc);
}

export function writeKubeconfig(file: string, o: KubeconfigOptions): string {
  writeFileSync(file, kubeconfigText(o), { mode: 0o600 });
  return file;
}
