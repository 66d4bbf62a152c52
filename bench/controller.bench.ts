// The Kubernetes controller (issue 10 acceptance 9), on a private control plane:
//  1. operation end → Ready=True for 50 ServiceInstances of an asynchronous plan whose provisions take 2 s:
//     the controller long-polling Berth (push) against the same controller polling
//     last_operation as Retry-After says (the baseline: how any other broker is
//     followed), each in its own process, interleaved rounds, medians;
//  2. broker calls per minute with 1,000 idle ServiceInstances (target 0);
//  3. the controller's RSS with 0 and with 1,000 resources.
// "Operation end" is the operation's finished_at in Berth's database; "Ready" is when
// the watch event with Ready=True reaches this process.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig, Watch } from '@kubernetes/client-node';
import { execa } from 'execa';
import pg from 'pg';
import YAML from 'yaml';
import { startCluster } from '../test/support/kube/cluster.ts';
import { REPO, TEST_CREDENTIALS, freePort, spawnBerth } from '../test/support/berth.ts';
import { createTestDatabase } from '../test/support/postgres.ts';

const N = Number(process.env.BENCH_INSTANCES ?? 50);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const IDLE = Number(process.env.BENCH_IDLE ?? 1000);
const STEADY_SECONDS = Number(process.env.BENCH_STEADY_SECONDS ?? 60);

const cluster = await startCluster({ log: () => {} });
const db = await createTestDatabase('berth_bench');
const kubeconfig = cluster.info.kubeconfigPath;
const kubectl = async (args: string[], input?: string) => (await execa(cluster.info.kubectlBin, [...args, '--kubeconfig', kubeconfig], { input })).stdout;
const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
const core = kc.makeApiClient(CoreV1Api);
const children = new Set<ChildProcess>();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

const berth = await spawnBerth({
  DATABASE_URL: db.url,
  CATALOG_PATH: join(REPO, 'test/fixtures/catalog-controller.yaml'),
  BERTH_PROVISIONER_MODULES: join(REPO, 'test/support/gated-provisioner.ts'),
  BERTH_WORKER_CONCURRENCY: '8',
  LOG_LEVEL: 'warn',
});
const state = new pg.Client({ connectionString: db.url });
await state.connect();

async function controller(longPoll: boolean) {
  const port = await freePort();
  const child = spawn(process.execPath, [join(REPO, 'src/cli.ts'), 'controller'], {
    env: {
      PATH: process.env.PATH, HOME: process.env.HOME, KUBECONFIG: kubeconfig, LOG_LEVEL: 'warn',
      BERTH_BROKER_URL: berth.url, BROKER_USERNAME: TEST_CREDENTIALS.username, BROKER_PASSWORD: TEST_CREDENTIALS.password,
      BERTH_CONTROLLER_NAMESPACE: 'berth-system', BERTH_CONTROLLER_METRICS_PORT: String(port), BERTH_CONTROLLER_LONG_POLL: String(longPoll),
      BERTH_CONTROLLER_LEASE_SECONDS: '5',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.add(child);
  const metrics = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  for (;;) {
    try {
      if (JSON.parse(await (await fetch(`http://127.0.0.1:${port}/healthz`)).text()).leading) break;
    } catch {
      // not yet listening
    }
    await sleep(100);
  }
  const calls = async () => (await metrics()).split('\n').filter((l) => l.startsWith('berth_controller_broker_calls_total')).reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
  const stop = async () => {
    child.kill('SIGTERM');
    await once(child, 'exit');
    children.delete(child);
  };
  return { child, calls, stop };
}

const instances = (names: string[], plan = 'async') =>
  names.map((name) => YAML.stringify({ apiVersion: 'services.berth.dev/v1alpha1', kind: 'ServiceInstance', metadata: { name }, spec: { offering: 'gated', plan } })).join('---\n');

/** Applies N instances in a fresh namespace and returns, per instance, ms from its operation's end to Ready=True reaching a watch. */
async function round(longPoll: boolean, label: string): Promise<number[]> {
  const ns = `bench-${label}`;
  await core.createNamespace({ body: { metadata: { name: ns } } });
  const c = await controller(longPoll);
  const readyAt = new Map<string, number>();
  let done = false;
  let watching: AbortController | undefined;
  // Watched again whenever the API server ends the watch.
  const watch = async () => {
    if (done) return;
    watching = await new Watch(kc).watch(`/apis/services.berth.dev/v1alpha1/namespaces/${ns}/serviceinstances`, {}, (_type, obj) => {
      if (!readyAt.has(obj.metadata.uid) && obj.status?.conditions?.some((x: { type: string; status: string }) => x.type === 'Ready' && x.status === 'True')) readyAt.set(obj.metadata.uid, Date.now());
    }, () => void sleep(200).then(watch));
  };
  await watch();
  await kubectl(['apply', '-n', ns, '-f', '-'], instances(Array.from({ length: N }, (_, i) => `i-${i}`), 'slow'));
  const deadline = Date.now() + 300_000;
  while (readyAt.size < N) {
    if (Date.now() > deadline) throw new Error(`round ${label}: ${readyAt.size} of ${N} instances Ready after 300 s`);
    await sleep(100);
  }
  done = true;
  watching?.abort();
  await c.stop();
  const ids = [...readyAt.keys()];
  const rows = (await state.query(`select instance_id, extract(epoch from finished_at) * 1000 as ended from operations where kind = 'provision' and instance_id = any($1)`, [ids])).rows;
  return rows.map((r: { instance_id: string; ended: string }) => readyAt.get(r.instance_id)! - Number(r.ended));
}

try {
  await core.createNamespace({ body: { metadata: { name: 'berth-system' } } });
  await kubectl(['apply', '--server-side', '-f', join(REPO, 'deploy/crds')]);
  await kubectl(['wait', '--for=condition=Established', '--timeout=60s', '-f', join(REPO, 'deploy/crds')]);
  // A new CRD's storage answers 429 for a moment: wait until it lists.
  for (;;) {
    try {
      await kubectl(['get', 'serviceinstances', '-A']);
      break;
    } catch {
      await sleep(500);
    }
  }

  const push: number[] = [];
  const poll: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    push.push(...(await round(true, `push-${r}`)));
    poll.push(...(await round(false, `poll-${r}`)));
  }
  console.log(`operation end → Ready=True, ${N} instances × ${ROUNDS} rounds each (load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}):`);
  console.log(`  long-poll (Berth pushes):      p50 ${median(push).toFixed(0)} ms, p99 ${pct(push, 99).toFixed(0)} ms`);
  console.log(`  baseline, Retry-After polling: p50 ${median(poll).toFixed(0)} ms, p99 ${pct(poll, 99).toFixed(0)} ms`);
  console.log(`  ratio p50 baseline/push: ${(median(poll) / Math.max(1, median(push))).toFixed(1)}×`);

  // Steady state with IDLE idle instances.
  const c = await controller(true);
  const rss0 = rssMiB(c.child.pid!);
  await core.createNamespace({ body: { metadata: { name: 'bench-idle' } } });
  for (let i = 0; i < IDLE; i += 100) {
    await kubectl(['apply', '-n', 'bench-idle', '-f', '-'], instances(Array.from({ length: Math.min(100, IDLE - i) }, (_, k) => `idle-${i + k}`)));
  }
  const started = Date.now();
  for (;;) {
    const out = await kubectl(['get', 'serviceinstances', '-n', 'bench-idle', '-o', 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}']);
    if (out.split('\n').filter((s) => s === 'True').length >= IDLE) break;
    if (Date.now() - started > 900_000) throw new Error('the idle instances did not all become Ready within 15 min');
    await sleep(2000);
  }
  const settleMs = Date.now() - started;
  await sleep(5000);
  const before = await c.calls();
  await sleep(STEADY_SECONDS * 1000);
  const perMinute = (((await c.calls()) - before) * 60) / STEADY_SECONDS;
  const total = N * ROUNDS * 2 + IDLE;
  console.log(`steady state: ${IDLE} idle ServiceInstances (all Ready after ${(settleMs / 1000).toFixed(0)} s; ${total} in the cluster): ${perMinute} broker calls per minute (measured over ${STEADY_SECONDS} s; target 0)`);
  console.log(`controller RSS: ${rss0.toFixed(0)} MiB leading with no idle instances, ${rssMiB(c.child.pid!).toFixed(0)} MiB with ${total} ServiceInstances`);
  await c.stop();
} finally {
  for (const child of children) child.kill('SIGKILL');
  await state.end();
  berth.child.kill('SIGTERM');
  await berth.exited;
  await cluster.stop();
  await db.drop();
}
