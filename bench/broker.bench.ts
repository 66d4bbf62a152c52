// Berth's HTTP cost against bare node:http servers doing the same work, at 50
// concurrent connections, for the requests platforms send most: GET /v2/catalog,
// and last_operation over 10,000 instances, polled as platforms poll it: with no
// query, with ?operation=… only, and as Cloud Foundry does
// (?operation=…&plan_id=…&service_id=…). Each server is its own process; rounds
// rotate which goes first; the medians and their ratio are printed.
// Memory: Berth's RSS idle 5 s after start with the shipped catalog and no
// Kubernetes configured (beside an idle bare node process), and its peak RSS
// over all the runs below. Berth is started by bin/berth (its V8 options;
// bin/with-node24.mjs, whose compile cache spares the TypeScript stripper).
// BENCH_VARIANT_NODE_OPTIONS adds the same Berth with other node options to the rounds.
// BENCH_INSTANCES sets the number of seeded instances (10,000).
// BENCH_REFERENCE=<another checkout> adds that checkout's Berth to every round
// (e.g. the previous release), on its own database, for a side-by-side figure.
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import knexFactory from 'knex';
import { spawnBerth, freePort, TEST_CREDENTIALS, TEST_KEYS, REPO } from '../test/support/berth.ts';
import { createTestDatabase } from '../test/support/postgres.ts';
import { SecretBox } from '../src/secret-box.ts';
import { median, result, rssOf } from './support/results.ts';

const CONNECTIONS = 50;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 10_000);
const headers = {
  'X-Broker-API-Version': '2.17',
  Authorization: 'Basic ' + Buffer.from(`${TEST_CREDENTIALS.username}:${TEST_CREDENTIALS.password}`).toString('base64'),
};

async function measure(url: string, path: () => string, seconds: number): Promise<{ rps: number; p99: number; errors: number }> {
  const r = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: seconds,
    headers,
    requests: [{ setupRequest: (req: any) => ({ ...req, path: path() }) }],
  });
  return { rps: r.requests.average, p99: r.latency.p99, errors: r.errors + r.non2xx };
}

async function bare(mode: string, arg: string): Promise<{ url: string; stop: () => void }> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(REPO, 'bench/support/bare-server.ts'), mode, arg, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') };
}

/** Seeds finished instances; returns [instance id, its operation id] pairs. */
async function seed(url: string, given?: Array<[string, string]>): Promise<Array<[string, string]>> {
  const box = new SecretBox(TEST_KEYS);
  const knex = knexFactory({ client: 'pg', connection: url });
  const ids: Array<[string, string]> = [];
  for (let start = 0; start < INSTANCES; start += 1000) {
    const instances = [];
    const ops = [];
    for (let i = start; i < Math.min(INSTANCES, start + 1000); i++) {
      const id = `bench-${i}`;
      // Ciphertexts are bound to their cell, so each row gets its own.
      const cell = (table: string, row: string, column: string) => ({ table, row: [row], column });
      const opId = given ? given[i]![1] : randomUUID();
      ids.push([id, opId]);
      instances.push({
        id,
        service_id: 'svc-gated',
        plan_id: 'plan-fast',
        state: 'ready',
        parameters_enc: box.seal({ size: 1 }, cell('instances', id, 'parameters_enc')),
        provisioner_state_enc: box.seal({}, cell('instances', id, 'provisioner_state_enc')),
      });
      ops.push({ id: opId, instance_id: id, kind: 'provision', state: 'succeeded', description: 'Provisioned', request_enc: box.seal({}, cell('operations', opId, 'request_enc')), finished_at: knex.fn.now() });
    }
    await knex('instances').insert(instances);
    await knex('operations').insert(ops);
  }
  await knex.destroy();
  return ids;
}


/** Interleaved rounds (the order rotates), then the medians and their ratio to bare node:http. */
async function compare(name: string, servers: Array<{ name: string; url: string }>, bareUrl: string, path: () => string, target: number): Promise<void> {
  const all = [{ name: 'bare', url: bareUrl }, ...servers];
  for (const s of all) await measure(s.url, path, 2); // warm-up: JIT, connection pools
  const rps = new Map<string, number[]>(all.map((s) => [s.name, []]));
  const p99 = new Map<string, number[]>(all.map((s) => [s.name, []]));
  const errors = new Map<string, number>(all.map((s) => [s.name, 0]));
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < all.length; i++) {
      const s = all[(round + i) % all.length]!;
      const r = await measure(s.url, path, SECONDS);
      rps.get(s.name)!.push(r.rps);
      p99.get(s.name)!.push(r.p99);
      errors.set(s.name, errors.get(s.name)! + r.errors);
    }
  }
  const base = median(rps.get('bare')!);
  console.log(`${name}: bare node:http ${base.toFixed(0)} req/s (p99 ${median(p99.get('bare')!)} ms)`);
  for (const s of servers) {
    const ratio = median(rps.get(s.name)!) / base;
    console.log(
      `  ${s.name.padEnd(10)} ${median(rps.get(s.name)!).toFixed(0).padStart(6)} req/s (p99 ${median(p99.get(s.name)!)} ms, ${errors.get(s.name)} errors) | ratio ${ratio.toFixed(2)} (target >= ${target}) ${ratio >= target ? 'OK' : 'BELOW TARGET'}`,
    );
    if (s.name === 'Berth') {
      result(
        { target: name, figure: `${median(rps.get(s.name)!).toFixed(0)} req/s, p99 ${median(p99.get(s.name)!)} ms`, baseline: `${base.toFixed(0)} req/s (bare node:http)`, value: ratio, goal: `>= ${target}x` },
        ratio >= target && errors.get(s.name) === 0,
      );
    }
  }
}

const env = (url: string) => ({
  DATABASE_URL: url,
  LOG_LEVEL: 'warn',
  CATALOG_PATH: join(REPO, 'test/fixtures/catalog-conformance.yaml'),
  BERTH_PROVISIONER_MODULES: join(REPO, 'test/support/gated-provisioner.ts'),
  BERTH_WORKER_CONCURRENCY: '1',
  // e.g. BENCH_NODE_OPTIONS=--max-semi-space-size=4 to see what V8's young generation costs in RSS.
  ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
});
/** RSS of an idle Berth (shipped catalog, no KUBECONFIG) a few seconds after start, and of an idle bare node. */
async function idleMemory(): Promise<void> {
  const idleDb = await createTestDatabase('berth_bench_idle');
  // A first start fills the compile cache (after any code change), as the first start after a deploy does; measured is the next.
  const first = await spawnBerth({ DATABASE_URL: idleDb.url, LOG_LEVEL: 'warn' }, { launcher: true });
  first.child.kill('SIGTERM');
  await first.exited;
  const idle = await spawnBerth({ DATABASE_URL: idleDb.url, LOG_LEVEL: 'warn', ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}) }, { launcher: true });
  const bareNode = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
  try {
    await new Promise((r) => setTimeout(r, 5000));
    const [berthRss, bareRss] = [await rssOf(idle.pid), await rssOf(bareNode.pid!)];
    console.log(`idle RSS: Berth ${berthRss.now.toFixed(0)} MB (shipped catalog, no Kubernetes), a bare node process ${bareRss.now.toFixed(0)} MB`);
    result({ target: 'idle RSS, no Kubernetes configured', figure: `${berthRss.now.toFixed(0)} MB`, baseline: `${bareRss.now.toFixed(0)} MB (idle bare node)`, value: berthRss.now, goal: '<= 120 MB' }, berthRss.now <= 120);
  } finally {
    bareNode.kill('SIGKILL');
    idle.child.kill('SIGTERM');
    await idle.exited;
    await idleDb.drop();
  }
}

await idleMemory();
const db = await createTestDatabase('berth_bench');
const berth = await spawnBerth(env(db.url), { launcher: true });
const reference = process.env.BENCH_REFERENCE;
const refDb = reference ? await createTestDatabase('berth_bench_ref') : undefined;
const ref = reference ? await spawnBerth(env(refDb!.url), { repo: reference }) : undefined;
// BENCH_VARIANT_NODE_OPTIONS: the same Berth with other node options (e.g. --max-semi-space-size=4) in the same rounds.
const variantOptions = process.env.BENCH_VARIANT_NODE_OPTIONS;
const variant = variantOptions ? await spawnBerth({ ...env(db.url), NODE_OPTIONS: variantOptions }, { launcher: true }) : undefined;
const servers = [{ name: 'Berth', url: berth.url }, ...(ref ? [{ name: 'reference', url: ref.url }] : []), ...(variant ? [{ name: 'variant', url: variant.url }] : [])];
const stops: Array<() => void> = [];
try {
  console.log(`${CONNECTIONS} connections, ${ROUNDS} interleaved rounds of ${SECONDS} s per server, medians`);
  const catalogBytes = Buffer.from(await (await fetch(`${berth.url}/v2/catalog`, { headers })).arrayBuffer());
  const catalogFile = join(mkdtempSync(join(tmpdir(), 'berth-bench-')), 'catalog.json');
  writeFileSync(catalogFile, catalogBytes);
  const bareCatalog = await bare('catalog', catalogFile);
  stops.push(bareCatalog.stop);
  await compare('GET /v2/catalog', servers, bareCatalog.url, () => '/v2/catalog', 0.9);

  const ids = await seed(db.url);
  // The reference gets the same rows (same ids) in its own database.
  if (refDb) await seed(refDb.url, ids);
  const bareLast = await bare('last-operation', db.url);
  stops.push(bareLast.stop);
  const pick = () => ids[Math.floor(Math.random() * ids.length)]!;
  const lastOperation = (query: (op: string) => string) => () => {
    const [id, op] = pick();
    return `/v2/service_instances/${id}/last_operation${query(op)}`;
  };
  await compare(`last_operation, no query (${INSTANCES} instances)`, servers, bareLast.url, lastOperation(() => ''), 0.8);
  await compare('last_operation?operation=…', servers, bareLast.url, lastOperation((op) => `?operation=${op}`), 0.8);
  await compare('last_operation, Cloud Foundry query', servers, bareLast.url, lastOperation((op) => `?operation=${op}&plan_id=plan-fast&service_id=svc-gated`), 0.8);
  const { peak } = await rssOf(berth.pid);
  console.log(`Berth's peak RSS over these runs: ${peak.toFixed(0)} MB${variant ? `; the variant's (${variantOptions}): ${(await rssOf(variant.pid)).peak.toFixed(0)} MB` : ''}`);
  result({ target: 'RSS during the catalog/last_operation runs (peak)', figure: `${peak.toFixed(0)} MB`, value: peak, goal: '<= 250 MB' }, peak <= 250);
} finally {
  for (const stop of stops) stop();
  for (const p of [berth, ref, variant]) {
    if (!p) continue;
    p.child.kill('SIGTERM');
    await p.exited;
  }
  await db.drop();
  await refDb?.drop();
}
