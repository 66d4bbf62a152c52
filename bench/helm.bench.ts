// Time from provision request to `succeeded` for 10 instances of a small
// chart (the Redis chart Berth ships), sequentially and 5 at a time, against
// running the same `helm install --wait` commands directly in the same run.
// Twice: on the kwok cluster (no container runs: Berth's own overhead) and on
// the cluster with a real node (Redis really starts, from localhost/redis:7).
// Needs the Kubernetes test binaries and images (npm test builds them);
// BERTH_BENCH_NODE=kwok or =real runs one of the two.
import { execa } from 'execa';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { startCluster, type ClusterInfo } from '../test/support/kube/cluster.ts';
import { startRealNodeCluster } from '../test/support/kube/real-node.ts';
import { spawnBerth, REPO } from '../test/support/berth.ts';
import { createTestDatabase } from '../test/support/postgres.ts';

const N = 10;
const PLAN = { service_id: 'svc-redis', plan_id: 'plan-redis', organization_guid: 'o', space_guid: 's' };

async function inBatches<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: width }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
  }));
}

async function bench(info: ClusterInfo, real: boolean): Promise<void> {
  // The real node runs the locally built image; the kwok node never pulls anything.
  const imageArgs = real ? ['--set', 'image.repository=localhost/redis', '--set-string', 'image.tag=7', '--set', 'image.pullPolicy=Never'] : [];
  const db = await createTestDatabase('berth_bench');
  const helmEnv = {
    ...process.env,
    KUBECONFIG: info.kubeconfigPath,
    HELM_CONFIG_HOME: info.helmHome.config,
    HELM_CACHE_HOME: info.helmHome.cache,
    HELM_DATA_HOME: info.helmHome.data,
  };
  const kc = new KubeConfig();
  kc.loadFromFile(info.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  for (const ns of ['berth-redis-test', 'bench-direct']) await core.createNamespace({ body: { metadata: { name: ns } } });
  // The namespace's default ServiceAccount must exist before Pods can be created in it.
  for (let i = 0; i < 100 && !(await core.listNamespacedServiceAccount({ namespace: 'bench-direct' })).items.length; i++) await new Promise((r) => setTimeout(r, 100));

  const berth = await spawnBerth({
    DATABASE_URL: db.url,
    CATALOG_PATH: join(REPO, real ? 'test/fixtures/catalog-helm-real-node.yaml' : 'test/fixtures/catalog-helm.yaml'),
    KUBECONFIG: info.kubeconfigPath,
    BERTH_HELM_BIN: info.helmBin,
    BERTH_WORKER_CONCURRENCY: '5',
    BERTH_POLL_INTERVAL_MS: '100',
    LOG_LEVEL: 'warn',
  });

  try {
    const viaBerth = async (label: string, width: number) => {
      const ids = Array.from({ length: N }, (_, i) => `bench-${label}-${i}`);
      const each: number[] = [];
      const t0 = performance.now();
      await inBatches(ids, width, async (id) => {
        const start = performance.now();
        const r = await berth.client.provision(id, PLAN);
        if (r.status !== 202) throw new Error(`provision ${id}: ${r.status} ${r.text}`);
        const done = await berth.client.waitForInstance(id, r.body.operation, 300_000);
        if (done.body.state !== 'succeeded') throw new Error(`${id}: ${done.text}`);
        each.push(performance.now() - start);
      });
      const total = performance.now() - t0;
      await inBatches(ids, 5, async (id) => {
        const d = await berth.client.deprovision(id, PLAN.service_id, PLAN.plan_id);
        await berth.client.waitForInstance(id, d.body.operation, 300_000);
      });
      return { total, mean: each.reduce((a, b) => a + b, 0) / each.length };
    };
    const direct = async (label: string, width: number) => {
      const names = Array.from({ length: N }, (_, i) => `direct-${label}-${i}`);
      const each: number[] = [];
      const t0 = performance.now();
      await inBatches(names, width, async (name) => {
        const start = performance.now();
        await execa(info.helmBin, ['install', name, join(REPO, 'charts/redis'), '-n', 'bench-direct', '--wait', '--timeout', '300s', ...imageArgs], { env: helmEnv });
        each.push(performance.now() - start);
      });
      const total = performance.now() - t0;
      await inBatches(names, 5, (name) => execa(info.helmBin, ['uninstall', name, '-n', 'bench-direct', '--wait'], { env: helmEnv }).then(() => {}));
      return { total, mean: each.reduce((a, b) => a + b, 0) / each.length };
    };
    const fmt = (s: { total: number; mean: number }) => `${(s.total / 1000).toFixed(1)} s total, ${(s.mean / 1000).toFixed(2)} s per instance`;
    for (const [label, width] of [['sequential', 1], ['5-at-a-time', 5]] as const) {
      const base = await direct(label, width);
      const ours = await viaBerth(label, width);
      console.log(
        `[${real ? 'real node' : 'kwok'}] ${N} instances ${label}: Berth ${fmt(ours)} | helm install --wait directly ${fmt(base)} | Berth/direct ratio ${(ours.total / base.total).toFixed(2)} (overhead ${((ours.total - base.total) / N / 1000).toFixed(2)} s per instance)`,
      );
    }
  } finally {
    berth.child.kill('SIGTERM');
    await berth.exited;
    await db.drop();
  }
  }

const which = process.env.BERTH_BENCH_NODE ?? 'both';
if (which !== 'real') {
  const cluster = await startCluster({ log: () => {} });
  try {
    await bench(cluster.info, false);
  } finally {
    await cluster.stop();
  }
}
if (which !== 'kwok') {
  const node = await startRealNodeCluster({ log: () => {} });
  try {
    await bench(node.info, true);
  } finally {
    const report = await node.stop();
    if (report.hostLeftovers.length > 0) console.error(`real node left: ${report.hostLeftovers.join('; ')}`);
  }
}
