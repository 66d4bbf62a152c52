// Upgrades driven by maintenance_info on the machine's PostgreSQL and MariaDB/MySQL: Berth is restarted
// on a new catalog (as an operator rolls one out), the plans' maintenance versions and settings move,
// and only an update carrying the new maintenance_info applies them.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type mysql from 'mysql2/promise';
import { maintenanceTargets, standingOf } from '../../src/catalog/maintenance.ts';
import { behindMaintenanceSql } from '../../src/store/instances.ts';
import { pgNames, mysqlNames } from '../../src/provisioners/sql/names.ts';
import { startTestBerth, type TestBerth } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { serverEnv, Tracker, withMysql, withPg } from './support.ts';

const SERVICE_PG = 'a1e0c6f2-5b1e-4a57-9a3c-1f5e00000001';
const SERVICE_MY = 'a1e0c6f2-5b1e-4a57-9a3c-1f5e00000002';
const PLAN_PG = 'a1e0c6f2-5b1e-4a57-9a3c-1f5e00000011';
const PLAN_MY = 'a1e0c6f2-5b1e-4a57-9a3c-1f5e00000021';

interface Rollout {
  version: string;
  pg: { connection_limit: number; extensions?: string[] };
  my: { max_user_connections: number };
}

/** A catalog file (JSON is YAML) with one postgres and one mysql plan at `r`'s maintenance version and settings. */
function catalogFile(dir: string, r: Rollout): string {
  const plan = (id: string, provisioner: object) => ({
    id,
    name: 'standard',
    description: 'Upgraded by maintenance_info.',
    maintenance_info: { version: r.version, description: `rollout ${r.version}` },
    maximum_polling_duration: 120,
    provisioner,
  });
  const catalog = {
    services: [
      { id: SERVICE_PG, name: 'upgrade-pg', description: 'PostgreSQL', bindable: true, instances_retrievable: true, plan_updateable: true,
        plans: [plan(PLAN_PG, { kind: 'postgres', server: 'local', allowed_extensions: ['pgcrypto'], ...r.pg })] },
      { id: SERVICE_MY, name: 'upgrade-my', description: 'MySQL', bindable: true, instances_retrievable: true, plan_updateable: true,
        plans: [plan(PLAN_MY, { kind: 'mysql', server: 'local', ...r.my })] },
    ],
  };
  const file = join(dir, `catalog-${r.version}.yaml`);
  writeFileSync(file, JSON.stringify(catalog, null, 2));
  return file;
}

const dir = mkdtempSync(join(tmpdir(), 'berth-upgrades-'));
const V1 = catalogFile(dir, { version: '1.0.0', pg: { connection_limit: 5 }, my: { max_user_connections: 3 } });
const V2 = catalogFile(dir, { version: '2.0.0', pg: { connection_limit: 7, extensions: ['citext'] }, my: { max_user_connections: 4 } });
/** An operator rolled the catalog back to a version below what instances are at. */
const V1_5 = catalogFile(dir, { version: '1.5.0', pg: { connection_limit: 6 }, my: { max_user_connections: 3 } });
/** A new version whose change the server cannot make: the extension does not exist there. */
const V3 = catalogFile(dir, { version: '3.0.0', pg: { connection_limit: 9, extensions: ['citext', 'berth_no_such_extension'] }, my: { max_user_connections: 4 } });

const tracker = new Tracker();
let state: TestDatabase;
let t: TestBerth | undefined;

async function rollOut(catalogPath: string): Promise<TestBerth> {
  await t?.stop();
  t = await startTestBerth({ databaseUrl: state.url, catalogPath, env: { ...serverEnv(), BERTH_PROBE_INTERVAL_SECONDS: '0.1' } });
  return t;
}

async function provisioned(serviceId: string, planId: string): Promise<string> {
  const id = tracker.instance();
  const r = await t!.client.provision(id, { service_id: serviceId, plan_id: planId, organization_guid: 'org', space_guid: 'space' });
  assert.equal(r.status, 202, r.text);
  assert.equal((await t!.client.waitForInstance(id, r.body.operation, 60_000)).body.state, 'succeeded');
  return id;
}

async function bound(instanceId: string, serviceId: string, planId: string): Promise<string> {
  const id = tracker.binding(instanceId);
  const r = await t!.client.bind(instanceId, id, { service_id: serviceId, plan_id: planId });
  assert.equal(r.status, 201, r.text);
  return id;
}

/** PATCH and wait; the final last_operation reply (or the first reply when it was not 202). */
async function update(id: string, serviceId: string, body: object) {
  const first = await t!.client.update(id, { service_id: serviceId, ...body });
  if (first.status !== 202) return { first, last: first };
  return { first, last: await t!.client.waitForInstance(id, first.body.operation, 60_000) };
}

async function versionOf(id: string): Promise<string | undefined> {
  const r = await t!.client.request('GET', `/v2/service_instances/${id}`);
  assert.equal(r.status, 200, r.text);
  return r.body.maintenance_info?.version;
}

async function behindMetric(planId: string): Promise<number | undefined> {
  const text = await (await fetch(`${t!.berth.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('berth_instances_behind_maintenance{') && l.includes(`plan_id="${planId}"`));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

const pgConnectionLimit = (id: string) =>
  withPg(async (c) => (await c.query<{ datconnlimit: number }>('SELECT datconnlimit FROM pg_database WHERE datname = $1', [pgNames.database(id)])).rows[0]?.datconnlimit);
const pgRoleLimit = (id: string, bindingId: string) =>
  withPg(async (c) => (await c.query<{ rolconnlimit: number }>('SELECT rolconnlimit FROM pg_roles WHERE rolname = $1', [pgNames.bindingRole(id, bindingId)])).rows[0]?.rolconnlimit);
const pgExtensions = (id: string) =>
  withPg(async (c) => (await c.query<{ extname: string }>("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY extname")).rows.map((r) => r.extname), urlOf(pgNames.database(id)));
const mysqlUserLimit = (id: string, bindingId: string) =>
  withMysql(async (c) => {
    const [rows] = await c.execute<mysql.RowDataPacket[]>('SELECT max_user_connections AS n FROM mysql.user WHERE User = ?', [mysqlNames.bindingUser(id, bindingId)]);
    return rows[0] ? Number(rows[0].n) : undefined;
  });

function urlOf(database: string): string {
  const u = new URL(serverEnv().BERTH_POSTGRES_LOCAL_URL!);
  u.pathname = `/${database}`;
  return u.toString();
}

let pgA: string;
let pgB: string;
let myM: string;
let bindingA: string;
let bindingM: string;

before(async () => {
  state = await createTestDatabase('berth_test_upgrades');
  await rollOut(V1);
  pgA = await provisioned(SERVICE_PG, PLAN_PG);
  pgB = await provisioned(SERVICE_PG, PLAN_PG);
  myM = await provisioned(SERVICE_MY, PLAN_MY);
  bindingA = await bound(pgA, SERVICE_PG, PLAN_PG);
  bindingM = await bound(myM, SERVICE_MY, PLAN_MY);
});

after(async () => {
  try {
    await tracker.cleanup();
  } finally {
    await t?.stop().catch(() => {});
    await state?.drop();
  }
});

test('a new maintenance version shows: GET instance keeps the instance\'s version, the catalog has the new one, the metric and the listing count those behind', async () => {
  assert.equal(await versionOf(pgA), '1.0.0');
  await rollOut(V2);
  const catalog = await t!.client.request('GET', '/v2/catalog');
  const pgPlan = catalog.body.services.find((s: { id: string }) => s.id === SERVICE_PG).plans[0];
  assert.deepEqual(pgPlan.maintenance_info, { version: '2.0.0', description: 'rollout 2.0.0' });
  assert.equal(await versionOf(pgA), '1.0.0');
  assert.equal(await versionOf(myM), '1.0.0');
  assert.equal(await behindMetric(PLAN_PG), 2);
  assert.equal(await behindMetric(PLAN_MY), 1);
  const listed = await t!.berth.stores.instances.behindMaintenance(maintenanceTargets([{ id: PLAN_PG, maintenanceVersion: '2.0.0' }, { id: PLAN_MY, maintenanceVersion: '2.0.0' }]));
  assert.deepEqual(
    listed.map((i) => [i.id, i.planId, i.maintenanceVersion, i.planVersion]),
    [
      [pgA, PLAN_PG, '1.0.0', '2.0.0'],
      [pgB, PLAN_PG, '1.0.0', '2.0.0'],
      [myM, PLAN_MY, '1.0.0', '2.0.0'],
    ],
  );
});

test('an update without maintenance_info changes nothing of the maintenance: the instance keeps its plan settings and version', async () => {
  const r = await update(pgA, SERVICE_PG, { parameters: { extensions: ['pgcrypto'] } });
  assert.equal(r.first.status, 202, r.first.text);
  assert.equal(r.last.body.state, 'succeeded', r.last.text);
  // The parameter change is made; the plan's new connection limit and extension are not.
  assert.deepEqual(await pgExtensions(pgA), ['pgcrypto']);
  assert.equal(await pgConnectionLimit(pgA), 5);
  assert.equal(await versionOf(pgA), '1.0.0');
  assert.equal(await behindMetric(PLAN_PG), 2);
});

test('an update with the new maintenance_info upgrades for real: postgres connection limits and extensions, mysql connection limit; the version moves', async () => {
  const r = await update(pgA, SERVICE_PG, { maintenance_info: { version: '2.0.0' }, previous_values: { maintenance_info: { version: '1.0.0' } } });
  assert.equal(r.first.status, 202, r.first.text);
  assert.equal(r.last.body.state, 'succeeded', r.last.text);
  assert.equal(await pgConnectionLimit(pgA), 7);
  assert.equal(await pgRoleLimit(pgA, bindingA), 7, "the binding's login gets the new limit too");
  assert.deepEqual(await pgExtensions(pgA), ['citext', 'pgcrypto']);
  assert.equal(await versionOf(pgA), '2.0.0');
  // The other instance of the plan is untouched until it is upgraded.
  assert.equal(await pgConnectionLimit(pgB), 5);
  assert.equal(await versionOf(pgB), '1.0.0');

  const m = await update(myM, SERVICE_MY, { maintenance_info: { version: '2.0.0' } });
  assert.equal(m.last.body.state, 'succeeded', m.last.text);
  assert.equal(await mysqlUserLimit(myM, bindingM), 4);
  assert.equal(await versionOf(myM), '2.0.0');

  assert.equal(await behindMetric(PLAN_PG), 1);
  assert.equal(await behindMetric(PLAN_MY), 0);
  // Sending the version the instance is at again is a no-op.
  const again = await update(pgA, SERVICE_PG, { maintenance_info: { version: '2.0.0' } });
  assert.equal(again.first.status, 200, again.first.text);
});

test('a catalog rolled back below an instance\'s version: the upgrade request is refused (MaintenanceInfoConflict), other updates keep the instance as it is', async () => {
  await rollOut(V1_5);
  const r = await t!.client.update(pgA, { service_id: SERVICE_PG, maintenance_info: { version: '1.5.0' } });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.body.error, 'MaintenanceInfoConflict');
  assert.match(r.body.description, /is at maintenance version 2\.0\.0, newer than the catalog's 1\.5\.0; Berth does not downgrade/);
  // A version the catalog does not have is refused as before.
  const stale = await t!.client.update(pgA, { service_id: SERVICE_PG, maintenance_info: { version: '2.0.0' } });
  assert.equal(stale.status, 422, stale.text);
  assert.equal(stale.body.error, 'MaintenanceInfoConflict');
  // An instance below the rolled-back version still moves up to it.
  const up = await update(pgB, SERVICE_PG, { maintenance_info: { version: '1.5.0' } });
  assert.equal(up.last.body.state, 'succeeded', up.last.text);
  assert.equal(await pgConnectionLimit(pgB), 6);
  assert.equal(await versionOf(pgB), '1.5.0');
  // An update without maintenance_info runs with the plan as pgA has it (2.0.0): nothing is taken back.
  const other = await update(pgA, SERVICE_PG, { parameters: { extensions: [] } });
  assert.equal(other.last.body.state, 'succeeded', other.last.text);
  assert.equal(await pgConnectionLimit(pgA), 7);
  assert.deepEqual(await pgExtensions(pgA), ['citext']);
  assert.equal(await versionOf(pgA), '2.0.0');
});

test('an upgrade the server cannot make fails with a description, reports the instance usable, and leaves its version', async () => {
  await rollOut(V3);
  const r = await update(pgB, SERVICE_PG, { maintenance_info: { version: '3.0.0' } });
  assert.equal(r.first.status, 202, r.first.text);
  assert.equal(r.last.body.state, 'failed', r.last.text);
  assert.equal(r.last.body.instance_usable, true);
  assert.match(r.last.body.description, /Extension "berth_no_such_extension" cannot be installed on this server/);
  assert.equal(await versionOf(pgB), '1.5.0');
  assert.equal(await behindMetric(PLAN_PG), 2);
  // Still usable: a new binding logs in.
  const b = await bound(pgB, SERVICE_PG, PLAN_PG);
  assert.ok(await pgRoleLimit(pgB, b));
});

test('the SQL condition of "behind" (the store query, the admin listing\'s filter) agrees with semver precedence', async () => {
  const versions = ['0.9.0', '1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0', '1.0.0+build.7', '1.2.0', '1.10.0', '10.0.0'];
  const targets = new Map(versions.map((v) => [`plan-${v}`, v]));
  const rows = [...targets.keys()].flatMap((planId) => [...versions, null].map((x) => [planId, x]));
  const condition = behindMaintenanceSql(targets, { plan: 'i.plan_id', version: 'i.maintenance_version' });
  const knex = t!.berth.database.knex;
  const result = await knex.raw(
    `SELECT i.plan_id, i.maintenance_version, ${condition.sql} AS behind FROM (VALUES ${rows.map(() => '(?, CAST(? AS text))').join(', ')}) AS i(plan_id, maintenance_version)`,
    [...condition.bindings, ...rows.flat()],
  );
  assert.equal(result.rows.length, rows.length);
  for (const r of result.rows as Array<{ plan_id: string; maintenance_version: string | null; behind: boolean }>) {
    const expected = standingOf(r.maintenance_version ?? undefined, targets.get(r.plan_id)) === 'behind';
    assert.equal(r.behind, expected, `${r.maintenance_version} behind ${targets.get(r.plan_id)}`);
  }
});
