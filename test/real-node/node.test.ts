// The real node itself: Pods from the locally built images really run, a test in
// the root network namespace reaches them through a port-forward, Services work
// through kube-proxy, and Pods reach the API server with their ServiceAccount token.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import pg from 'pg';
import { realNodeCluster, type RealNodeCluster } from '../support/kube/shared.ts';
import { portForward } from '../support/kube/port-forward.ts';

async function waitForPod(core: CoreV1Api, namespace: string, name: string, done: (p: V1Pod) => boolean, ms = 120_000): Promise<V1Pod> {
  const until = Date.now() + ms;
  for (;;) {
    const pod = await core.readNamespacedPod({ name, namespace });
    if (done(pod)) return pod;
    if (Date.now() > until) throw new Error(`pod ${namespace}/${name} not there after ${ms} ms: ${JSON.stringify(pod.status)}`);
    await sleep(250);
  }
}
const isReady = (p: V1Pod): boolean => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

describe('a real node', () => {
  let kube: RealNodeCluster;
  let core: CoreV1Api;
  let ns: string;
  const password = randomBytes(12).toString('hex');

  before(async () => {
    kube = await realNodeCluster();
    core = kube.kubeConfig().makeApiClient(CoreV1Api);
    ns = await kube.createNamespace('node');
    // The ServiceAccount admission needs the namespace's default ServiceAccount.
    for (let i = 0; i < 100; i++) {
      if ((await core.listNamespacedServiceAccount({ namespace: ns })).items.some((s) => s.metadata?.name === 'default')) break;
      await sleep(100);
    }
  });
  after(async () => {
    await kube?.deleteNamespace(ns);
  });

  test('runs PostgreSQL from the local image and a client in the root namespace queries it through a port-forward', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'pg', labels: { app: 'pg' } },
        spec: {
          securityContext: { runAsUser: 999, runAsGroup: 999, fsGroup: 999, runAsNonRoot: true },
          containers: [
            {
              name: 'postgresql',
              image: 'localhost/postgresql:15',
              imagePullPolicy: 'Never',
              env: [
                { name: 'POSTGRES_PASSWORD', value: password },
                { name: 'POSTGRES_USER', value: 'app' },
                { name: 'POSTGRES_DB', value: 'orders' },
                // A folder of its own inside the volume (the volume's root belongs to root).
                { name: 'PGDATA', value: '/var/lib/postgresql/data/pgdata' },
              ],
              ports: [{ name: 'postgresql', containerPort: 5432 }],
              readinessProbe: { exec: { command: ['pg_isready', '-h', '127.0.0.1', '-U', 'app', '-d', 'orders'] }, periodSeconds: 1 },
              resources: { limits: { memory: '256Mi', cpu: '500m' } },
              volumeMounts: [{ name: 'data', mountPath: '/var/lib/postgresql/data' }],
            },
          ],
          volumes: [{ name: 'data', emptyDir: {} }],
        },
      },
    });
    const pod = await waitForPod(core, ns, 'pg', isReady);
    assert.match(pod.status?.podIP ?? '', /^10\.244\.0\./, 'the pod has an address from the node pod range');
    const pf = await portForward(kube, ns, 'pod/pg', 5432);
    try {
      const c = new pg.Client({ host: '127.0.0.1', port: pf.port, user: 'app', password, database: 'orders' });
      await c.connect();
      try {
        const r = await c.query<{ u: string; v: string }>('SELECT current_user AS u, version() AS v');
        assert.equal(r.rows[0]?.u, 'app');
        assert.match(r.rows[0]?.v ?? '', /^PostgreSQL 15\./);
      } finally {
        await c.end();
      }
      const wrong = new pg.Client({ host: '127.0.0.1', port: pf.port, user: 'app', password: 'wrong', database: 'orders' });
      await assert.rejects(wrong.connect(), /password authentication failed/);
    } finally {
      await pf.close();
    }
  });

  test('a Pod reaches a Service by its ClusterIP (kube-proxy) and the API server with its ServiceAccount token', async () => {
    const svc = await core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name: 'pg' }, spec: { selector: { app: 'pg' }, ports: [{ port: 5432, targetPort: 'postgresql' }] } },
    });
    const clusterIP = svc.spec?.clusterIP ?? '';
    assert.match(clusterIP, /^10\.96\./);
    // Node 24 from the Berth image: a TCP connect to the Service, then GET /api with the mounted token.
    // A Service just created has no endpoints until the EndpointSlice controller and kube-proxy have
    // caught up, and until then its ClusterIP answers "host unreachable" (seen in CI): the client
    // retries for up to 30 s, as any in-cluster client must, and fails if the Service never answers.
    const script = `
      const net = require('node:net'); const fs = require('node:fs');
      const sa = '/var/run/secrets/kubernetes.io/serviceaccount';
      const attempt = (left) => {
        const s = net.connect(5432, process.env.TARGET);
        s.on('connect', async () => {
          s.destroy();
          const res = await fetch('https://' + process.env.KUBERNETES_SERVICE_HOST + ':' + process.env.KUBERNETES_SERVICE_PORT + '/api', {
            headers: { authorization: 'Bearer ' + fs.readFileSync(sa + '/token', 'utf8') } });
          console.log('service ok; api ' + res.status + ' ' + (await res.json()).kind);
        });
        s.on('error', (e) => {
          if (left > 0) return setTimeout(() => attempt(left - 1), 1000);
          console.log('service failed ' + e.message); process.exit(1);
        });
      };
      attempt(30);`;
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'client' },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'client',
              image: 'localhost/berth:test',
              imagePullPolicy: 'Never',
              command: ['/usr/local/bin/node', '-e', script],
              env: [
                { name: 'TARGET', value: clusterIP },
                { name: 'NODE_EXTRA_CA_CERTS', value: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt' },
              ],
            },
          ],
        },
      },
    });
    const pod = await waitForPod(core, ns, 'client', (p) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed');
    const log = await core.readNamespacedPodLog({ name: 'client', namespace: ns });
    assert.equal(pod.status?.phase, 'Succeeded', log);
    assert.match(log, /service ok; api 200 APIVersions/);
    assert.equal(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 0);
  });

  test('the Berth image runs as its non-root user', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'whoami' },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'whoami',
              image: 'localhost/berth:test',
              imagePullPolicy: 'Never',
              command: ['/usr/local/bin/node', '-e', 'console.log(process.getuid(), process.version)'],
            },
          ],
        },
      },
    });
    await waitForPod(core, ns, 'whoami', (p) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed');
    const log = await core.readNamespacedPodLog({ name: 'whoami', namespace: ns });
    assert.match(log, /^10001 v24\./);
  });
});
