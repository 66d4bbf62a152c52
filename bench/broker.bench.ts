// Berth's HTTP overhead against bare node:http servers doing the same work,
// at 50 concurrent connections: GET /v2/catalog, and last_operation with
// 10,000 instances in the database. Prints requests/s, p99 and the ratios.
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

const CONNECTIONS = 50;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const INSTANCES = 10_000;
const headers = {
  'X-Broker-API-Version': '2.17',
  Authorization: 'Basic ' + Buffer.from(`${TEST_CREDENTIALS.username}:${TEST_CREDENTIALS.password}`).toString('base64'),
};

async function measure(url: string, path: () => string): Promise<{ rps: number; p99: number; errors: number }> {
  const run = (duration: number) =>
    autocannon({
      url,
      connections: CONNECTIONS,
      duration,
      headers,
      requests: [{ setupRequest: (req: any) => ({ ...req, path: path() }) }],
    });
  await run(2); // warm-up: JIT, connection pools
  const r = await run(SECONDS);
  return { rps: r.requests.average, p99: r.latency.p99, errors: r.errors + r.non2xx };
}

async function bare(mode: string, arg: string): Promise<{ url: string; stop: () => void }> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(REPO, 'bench/support/bare-server.ts'), mode, arg, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') };
}

async function seed(url: string): Promise<string[]> {
  const box = new SecretBox(TEST_KEYS);
  const knex = knexFactory({ client: 'pg', connection: url });
  const ids: string[] = [];
  for (let start = 0; start < INSTANCES; start += 1000) {
    const instances = [];
    const ops = [];
    for (let i = start; i < start + 1000; i++) {
      const id = `bench-${i}`;
      ids.push(id);
      // Ciphertexts are bound to their cell, so each row gets its own.
      const cell = (table: string, row: string, column: string) => ({ table, row: [row], column });
      const opId = randomUUID();
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

const line = (name: string, berth: { rps: number; p99: number; errors: number }, base: { rps: number; p99: number }, target: number) => {
  const ratio = berth.rps / base.rps;
  console.log(
    `${name}: Berth ${berth.rps.toFixed(0)} req/s p99 ${berth.p99} ms (${berth.errors} errors) | bare node:http ${base.rps.toFixed(0)} req/s p99 ${base.p99} ms | ratio ${ratio.toFixed(2)} (target >= ${target}) ${ratio >= target ? 'OK' : 'BELOW TARGET'}`,
  );
};

const db = await createTestDatabase('berth_bench');
const berth = await spawnBerth({
  DATABASE_URL: db.url,
  LOG_LEVEL: 'warn',
  CATALOG_PATH: join(REPO, 'test/fixtures/catalog-conformance.yaml'),
  BERTH_PROVISIONER_MODULES: join(REPO, 'test/support/gated-provisioner.ts'),
  BERTH_WORKER_CONCURRENCY: '1',
});
try {
  const catalogBytes = Buffer.from(await (await fetch(`${berth.url}/v2/catalog`, { headers })).arrayBuffer());
  const catalogFile = join(mkdtempSync(join(tmpdir(), 'berth-bench-')), 'catalog.json');
  writeFileSync(catalogFile, catalogBytes);

  const bareCatalog = await bare('catalog', catalogFile);
  const baseCatalog = await measure(bareCatalog.url, () => '/v2/catalog');
  bareCatalog.stop();
  const berthCatalog = await measure(berth.url, () => '/v2/catalog');
  line('catalog', berthCatalog, baseCatalog, 0.7);

  const ids = await seed(db.url);
  const pick = () => `/v2/service_instances/${ids[Math.floor(Math.random() * ids.length)]}/last_operation`;
  const bareLast = await bare('last-operation', db.url);
  const baseLast = await measure(bareLast.url, pick);
  bareLast.stop();
  const berthLast = await measure(berth.url, pick);
  line(`last_operation (${INSTANCES} instances)`, berthLast, baseLast, 0.5);
} finally {
  berth.child.kill('SIGTERM');
  await berth.exited;
  await db.drop();
}
