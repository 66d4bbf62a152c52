// The `postgres` provisioner on the local PostgreSQL (127.0.0.1:5432 or
// BERTH_TEST_POSTGRES_URL): binds per second (create role + verify login) and
// provision→bind→unbind→deprovision cycles per second, each beside a baseline
// doing the same work with raw SQL through pg, measured in this run.
//
// Three layers: raw pg (the baseline), the provisioner called directly, and
// Berth's HTTP API (in-process Berth, its state in a throwaway database on the
// same server). The contenders of a table run in interleaved rounds, so a
// change in machine load during the run affects them alike and the ratios stay
// meaningful. BENCH_SECONDS / BENCH_CYCLE_SECONDS set the time per contender.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { result } from './support/results.ts';
import { startTestBerth } from '../test/support/berth.ts';
import { ADMIN_URL, createTestDatabase } from '../test/support/postgres.ts';
import { CATALOG, PG, bindingOp, direct, instanceOp, serverEnv } from '../test/database-provisioners/support.ts';
import { pgNames, quotePgIdent } from '../src/provisioners/sql/names.ts';
import type { JsonObject } from '../src/provisioners/provisioner.ts';

const BIND_SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const CYCLE_SECONDS = Number(process.env.BENCH_CYCLE_SECONDS ?? 10);
const ROUNDS = 3;

interface Contender {
  label: string;
  step: () => Promise<void>;
}

interface Result {
  label: string;
  n: number;
  ms: number;
}

/**
 * Runs every contender once untimed (warm-up), then ROUNDS rounds in which
 * each runs for seconds/ROUNDS (at least `min` steps per round).
 */
async function compare(contenders: Contender[], seconds: number, min = 1): Promise<Result[]> {
  const results = contenders.map((c) => ({ label: c.label, n: 0, ms: 0 }));
  for (const c of contenders) await c.step();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, c] of contenders.entries()) {
      const start = performance.now();
      let n = 0;
      while (n < min || performance.now() - start < (seconds * 1000) / ROUNDS) {
        await c.step();
        n++;
      }
      results[i]!.n += n;
      results[i]!.ms += performance.now() - start;
    }
  }
  return results;
}

function report(title: string, results: Result[]): void {
  const [baseline] = results;
  const rate = (r: Result) => r.n / (r.ms / 1000);
  const width = Math.max(...results.map((r) => r.label.length)) + 2;
  process.stdout.write(`\n${title}\n`);
  for (const [i, r] of results.entries()) {
    const perSecond = rate(r);
    process.stdout.write(
      `  ${r.label.padEnd(width)}${perSecond.toFixed(perSecond < 10 ? 2 : 1).padStart(7)} /s  ${(r.ms / r.n).toFixed(0).padStart(5)} ms each  (n=${r.n})` +
        (i === 0 ? '  baseline\n' : `  ${(perSecond / rate(baseline!)).toFixed(2)}× baseline\n`),
    );
    // Issue 13, target 5: postgres binds through HTTP against the raw SQL doing the same work.
    if (r.label.startsWith('HTTP PUT binding')) {
      const ratio = perSecond / rate(baseline!);
      result(
        { target: 'postgres binds through HTTP vs raw SQL (role + verified login)', figure: `${perSecond.toFixed(1)} /s`, baseline: `${rate(baseline!).toFixed(1)} /s (raw pg)`, value: ratio, goal: '>= 0.85x' },
        ratio >= 0.85,
      );
    }
  }
}

async function login(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  await c.query('SELECT 1');
  await c.end();
}

/** Instance ids used, so everything they led to is removed even if the bench fails midway. */
class Instances {
  readonly ids: string[] = [];
  next(): string {
    const id = randomUUID();
    this.ids.push(id);
    return id;
  }
  async cleanup(admin: pg.Client): Promise<void> {
    for (const id of this.ids) {
      await admin.query(`DROP DATABASE IF EXISTS ${quotePgIdent(pgNames.database(id))} WITH (FORCE)`);
      const { rows } = await admin.query<{ rolname: string }>(
        `SELECT m.rolname FROM pg_auth_members am JOIN pg_roles o ON o.oid = am.roleid JOIN pg_roles m ON m.oid = am.member WHERE o.rolname = $1`,
        [pgNames.ownerRole(id)],
      );
      for (const r of rows) await admin.query(`DROP ROLE IF EXISTS ${quotePgIdent(r.rolname)}`);
      await admin.query(`DROP ROLE IF EXISTS ${quotePgIdent(pgNames.ownerRole(id))}`);
    }
  }
}

async function main(): Promise<void> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  const host = new URL(ADMIN_URL).host;
  const instances = new Instances();
  const d = direct();
  const state = await createTestDatabase('berth_bench_state');
  const scratch = await createTestDatabase('berth_bench_raw');
  const rawRoles = new Set<string>();
  const rawDatabases = new Set<string>();
  let berth: Awaited<ReturnType<typeof startTestBerth>> | undefined;
  let seq = 0;
  try {
    const version = (await admin.query('SHOW server_version')).rows[0].server_version;
    const load = (await import('node:os')).loadavg()[0]!.toFixed(1);
    process.stdout.write(`PostgreSQL ${version} at ${host}; load average ${load}; ${ROUNDS} interleaved rounds per table\n`);
    const plan = d.plan(PG.small);

    // Berth, its HTTP client, and one instance per layer for the bind measurements.
    berth = await startTestBerth({ databaseUrl: state.url, catalogPath: CATALOG, env: { ...serverEnv(), BERTH_POLL_INTERVAL_MS: '10' } });
    const client = berth.client;
    const settle = async (poll: () => Promise<{ status: number; body: any }>) => {
      for (;;) {
        const r = await poll();
        if (r.status === 410 || (r.status === 200 && r.body?.state !== 'in progress')) {
          if (r.status === 200 && r.body.state !== 'succeeded') throw new Error(`operation failed: ${JSON.stringify(r.body)}`);
          return;
        }
        await new Promise((res) => setTimeout(res, 5));
      }
    };
    const body = { service_id: PG.service, plan_id: PG.small, organization_guid: 'o', space_guid: 's' };
    const apiInstance = instances.next();
    const p = await client.provision(apiInstance, body);
    await settle(() => client.lastOperation(apiInstance, p.body.operation));
    const instanceId = instances.next();
    const instanceState: JsonObject = {};
    await d.postgres.provision(instanceOp(plan, instanceId, instanceState));

    // ---- binds ----------------------------------------------------------------------------
    const binds = await compare(
      [
        {
          label: 'raw pg: CREATE ROLE + login + DROP ROLE',
          step: async () => {
            const role = `berth_bench_r_${process.pid}_${seq++}`;
            rawRoles.add(role);
            await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'bench-Pw-${seq}'`);
            await login(`postgres://${role}:bench-Pw-${seq}@${host}/${scratch.name}`);
            await admin.query(`DROP ROLE ${role}`);
            rawRoles.delete(role);
          },
        },
        {
          label: 'provisioner.bind (role + verified login)',
          step: async () => {
            await d.postgres.bind(bindingOp(plan, instanceId, instanceState, randomUUID(), {}));
          },
        },
        {
          label: 'provisioner.bind + unbind',
          step: async () => {
            const b = randomUUID();
            const s: JsonObject = {};
            await d.postgres.bind(bindingOp(plan, instanceId, instanceState, b, s));
            await d.postgres.unbind(bindingOp(plan, instanceId, instanceState, b, s));
          },
        },
        {
          label: 'HTTP PUT binding (synchronous bind)',
          step: async () => {
            const r = await client.bind(apiInstance, randomUUID(), { service_id: PG.service, plan_id: PG.small });
            if (r.status !== 201) throw new Error(`bind: ${r.status} ${r.text}`);
          },
        },
      ],
      BIND_SECONDS,
    );
    report('postgres binds per second (create role + verify login)', binds);
    await d.postgres.deprovision(instanceOp(plan, instanceId, instanceState)); // also drops the bind-only roles
    const del = await client.deprovision(apiInstance, PG.service, PG.small);
    await settle(() => client.lastOperation(apiInstance, del.body.operation));

    // ---- cycles ---------------------------------------------------------------------------
    const cycles = await compare(
      [
        {
          label: 'raw pg: CREATE DATABASE/ROLE×2, login, DROP×3',
          step: async () => {
            const i = seq++;
            const db = `berth_bench_db_${process.pid}_${i}`;
            const owner = `berth_bench_o_${process.pid}_${i}`;
            const user = `berth_bench_u_${process.pid}_${i}`;
            rawDatabases.add(db);
            rawRoles.add(owner).add(user);
            await admin.query(`CREATE DATABASE ${db}`);
            await admin.query(`CREATE ROLE ${owner} NOLOGIN`);
            await admin.query(`GRANT CONNECT, CREATE ON DATABASE ${db} TO ${owner}`);
            await admin.query(`CREATE ROLE ${user} LOGIN PASSWORD 'bench-Pw-${i}' IN ROLE ${owner}`);
            await login(`postgres://${user}:bench-Pw-${i}@${host}/${db}`);
            await admin.query(`DROP ROLE ${user}`);
            await admin.query(`DROP DATABASE ${db} WITH (FORCE)`);
            await admin.query(`DROP ROLE ${owner}`);
            rawDatabases.delete(db);
            rawRoles.delete(owner);
            rawRoles.delete(user);
          },
        },
        {
          label: 'provisioner: provision→bind→unbind→deprovision',
          step: async () => {
            const id = instances.next();
            const s: JsonObject = {};
            await d.postgres.provision(instanceOp(plan, id, s));
            const b = randomUUID();
            const bs: JsonObject = {};
            await d.postgres.bind(bindingOp(plan, id, s, b, bs));
            await d.postgres.unbind(bindingOp(plan, id, s, b, bs));
            await d.postgres.deprovision(instanceOp(plan, id, s));
          },
        },
        {
          label: 'HTTP API: provision→bind→unbind→deprovision',
          step: async () => {
            const id = instances.next();
            const pr = await client.provision(id, body);
            await settle(() => client.lastOperation(id, pr.body.operation));
            const b = randomUUID();
            const br = await client.bind(id, b, { service_id: PG.service, plan_id: PG.small });
            if (br.status !== 201) throw new Error(`bind: ${br.status} ${br.text}`);
            const ur = await client.unbind(id, b, PG.service, PG.small);
            if (ur.status !== 200) throw new Error(`unbind: ${ur.status} ${ur.text}`);
            const dr = await client.deprovision(id, PG.service, PG.small);
            await settle(() => client.lastOperation(id, dr.body.operation));
          },
        },
      ],
      CYCLE_SECONDS,
    );
    report('postgres cycles per second (provision→bind→unbind→deprovision)', cycles);
    process.stdout.write('\n(ratio > 1: faster than the baseline. Berth\'s bind also pre-hashes a SCRAM verifier and checkpoints the password;\n' +
      ' its cycle also revokes PUBLIC, grants, sets the connection limit and owns the public schema; the HTTP rows add Berth\'s own state writes.)\n');
  } finally {
    await berth?.stop().catch(() => {});
    for (const db of rawDatabases) await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => {});
    for (const role of rawRoles) await admin.query(`DROP ROLE IF EXISTS ${role}`).catch(() => {});
    await instances.cleanup(admin).catch((err) => process.stderr.write(`cleanup: ${err}\n`));
    await d.postgres.close();
    await admin.end();
    await scratch.drop();
    await state.drop();
  }
}

await main();
