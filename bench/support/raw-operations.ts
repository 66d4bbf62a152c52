// The raw SQL baseline for bench/replicas.bench.ts: the transactions one
// zero-cost asynchronous provision costs Berth, sent straight with pg, with no
// HTTP, no broker and no engine around them. Per operation: the request
// (instance row + operation row, one transaction), the claim (lock the
// operation, skipping locked ones, and take its lease) and the finish (operation
// succeeded, instance ready, one transaction). `concurrency` loops share a pool
// of 10 connections (Berth's default). Prints {"opsPerSecond": …}.
// Usage: raw-operations.ts <database-url> <warm-up count> <count> <concurrency>
import pg from 'pg';
import { randomUUID } from 'node:crypto';

const [url, warmup, count, concurrency] = process.argv.slice(2);
const pool = new pg.Pool({ connectionString: url, max: 10 });
const owner = randomUUID();

async function tx(work: (c: pg.PoolClient) => Promise<void>): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await work(c);
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    c.release();
  }
}

async function operation(instanceId: string): Promise<void> {
  const opId = randomUUID();
  await tx(async (c) => {
    await c.query(`INSERT INTO instances (id, service_id, plan_id, state, parameters_enc) VALUES ($1, 'svc', 'plan', 'creating', 'x')`, [instanceId]);
    await c.query(`INSERT INTO operations (id, instance_id, kind, state, description, request_enc) VALUES ($1, $2, 'provision', 'in progress', 'Provisioning', 'x')`, [opId, instanceId]);
  });
  await tx(async (c) => {
    const { rows } = await c.query(`SELECT id FROM operations WHERE id = $1 AND finished_at IS NULL FOR UPDATE SKIP LOCKED`, [opId]);
    if (rows.length !== 1) throw new Error('not claimable');
    await c.query(
      `UPDATE operations SET lease_owner = $1, lease_expires_at = now() + interval '30 seconds', lease_renewed_at = now(), attempts = attempts + 1, updated_at = now() WHERE id = $2`,
      [owner, opId],
    );
  });
  await tx(async (c) => {
    await c.query(
      `UPDATE operations SET state = 'succeeded', description = 'Provisioned', finished_at = now(), updated_at = now(), lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 AND lease_owner = $2`,
      [opId, owner],
    );
    await c.query(`UPDATE instances SET state = 'ready', updated_at = now() WHERE id = $1`, [instanceId]);
  });
}

async function run(prefix: string, n: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Number(concurrency) }, async () => {
      for (let i = next++; i < n; i = next++) await operation(`${prefix}-${i}`);
    }),
  );
}

await run('warmup', Number(warmup));
const started = performance.now();
await run('bench', Number(count));
const seconds = (performance.now() - started) / 1000;
await pool.end();
process.stdout.write(JSON.stringify({ opsPerSecond: Number(count) / seconds }) + '\n');
