// The orphan sweeper on the machine's real Postgres and MariaDB servers: planted databases, roles and
// users with Berth's names and no instance are reported, live instances' are not, nor those of an
// instance whose operation is in flight; a live instance whose database is gone is reported missing;
// a deleting sweep removes the orphans it is given and nothing else.
//
// The servers are shared with other tests (and other Berths): every deleting sweep here names its
// orphans (`only`), as an operator does after reading the report.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mysqlNames, pgNames, quoteMysqlIdent, quoteMysqlString, quotePgIdent } from '../../src/provisioners/sql/names.ts';
import { release } from '../support/gated-provisioner.ts';
import { mysqlDatabaseExists, mysqlUserExists, pgDatabaseExists, pgRoleExists, Tracker, withMysql, withPg } from '../database-provisioners/support.ts';
import { AdminBerth, PLANS } from './support.ts';

let h: AdminBerth;
const tracker = new Tracker();
const planted = {
  pgDatabase: pgNames.database(`orphan-${randomUUID()}`),
  pgRole: pgNames.bindingRole(`orphan-${randomUUID()}`, 'b'),
  myDatabase: mysqlNames.database(`orphan-${randomUUID()}`),
  myUser: mysqlNames.bindingUser(`orphan-${randomUUID()}`, 'b'),
  // Berth's prefix, not Berth's name: never swept.
  notOurs: 'berth_i_not_made_by_berth',
};

before(async () => {
  h = await AdminBerth.start();
  await withPg(async (c) => {
    await c.query(`CREATE DATABASE ${quotePgIdent(planted.pgDatabase)}`);
    await c.query(`CREATE ROLE ${quotePgIdent(planted.pgRole)} LOGIN`);
    await c.query(`DROP DATABASE IF EXISTS ${quotePgIdent(planted.notOurs)}`);
    await c.query(`CREATE DATABASE ${quotePgIdent(planted.notOurs)}`);
  });
  await withMysql(async (c) => {
    await c.query(`CREATE DATABASE ${quoteMysqlIdent(planted.myDatabase)}`);
    await c.query(`CREATE USER ${quoteMysqlString(planted.myUser)}@'%' IDENTIFIED BY 'Orphan-pass-123'`);
  });
});

after(async () => {
  release();
  try {
    await withPg(async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${quotePgIdent(planted.pgDatabase)}`);
      await c.query(`DROP DATABASE IF EXISTS ${quotePgIdent(planted.notOurs)}`);
      await c.query(`DROP ROLE IF EXISTS ${quotePgIdent(planted.pgRole)}`);
    });
    await withMysql(async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${quoteMysqlIdent(planted.myDatabase)}`);
      await c.query(`DROP USER IF EXISTS ${quoteMysqlString(planted.myUser)}@'%'`);
    });
    await tracker.cleanup();
  } finally {
    await h?.stop();
  }
});

async function provisioned(plan: { service_id: string; plan_id: string }): Promise<string> {
  const id = tracker.instance();
  const r = await h.test.client.provision(id, { ...plan, organization_guid: 'o', space_guid: 's' });
  assert.equal(r.status, 202, r.text);
  assert.equal((await h.test.client.waitForInstance(id, r.body.operation, 60_000)).body.state, 'succeeded');
  return id;
}

test('the sweeper reports planted orphans and missing databases on Postgres and MariaDB, and deletes only the orphans it is given', async () => {
  const livePg = await provisioned(PLANS.pg);
  const livePgBinding = tracker.binding(livePg);
  assert.equal((await h.test.client.bind(livePg, livePgBinding, PLANS.pg)).status, 201);
  const liveMy = await provisioned(PLANS.my);
  const liveMyBinding = tracker.binding(liveMy);
  assert.equal((await h.test.client.bind(liveMy, liveMyBinding, PLANS.my)).status, 201);
  const goneMy = await provisioned(PLANS.my);
  await withMysql((c) => c.query(`DROP DATABASE ${quoteMysqlIdent(mysqlNames.database(goneMy))}`));
  // An instance whose provision is in flight: a database with its name (being made right now) is no orphan.
  const inFlight = `adm-${randomUUID()}`;
  const held = await h.test.client.provision(inFlight, { service_id: PLANS.gated.service_id, plan_id: PLANS.gated.held, organization_guid: 'o', space_guid: 's' });
  assert.equal(held.status, 202);
  const inFlightDatabase = pgNames.database(inFlight);
  await withPg((c) => c.query(`CREATE DATABASE ${quotePgIdent(inFlightDatabase)}`));
  try {
    const report = await h.admin('POST', '/sweep', {});
    assert.equal(report.status, 200, report.text);
    const orphans: Array<{ id: string; backend: string; kind: string; name: string; deleted?: boolean }> = report.body.orphans;
    const named = (name: string) => orphans.filter((o) => o.name === name || o.name.startsWith(`${name}@`));
    assert.deepEqual(named(planted.pgDatabase).map((o) => [o.backend, o.kind]), [['postgres:local', 'database']]);
    assert.deepEqual(named(planted.pgRole).map((o) => [o.backend, o.kind]), [['postgres:local', 'role']]);
    assert.deepEqual(named(planted.myDatabase).map((o) => [o.backend, o.kind]), [['mysql:local', 'database']]);
    assert.deepEqual(named(planted.myUser).map((o) => [o.backend, o.kind]), [['mysql:local', 'user']]);
    for (const name of [
      planted.notOurs,
      inFlightDatabase,
      pgNames.database(livePg),
      pgNames.ownerRole(livePg),
      pgNames.bindingRole(livePg, livePgBinding),
      mysqlNames.database(liveMy),
      mysqlNames.bindingUser(liveMy, liveMyBinding),
    ]) {
      assert.deepEqual(named(name), [], `${name} is not an orphan`);
    }
    assert.ok(orphans.every((o) => o.deleted === undefined), 'a report deletes nothing');
    assert.deepEqual(
      report.body.missing.filter((m: any) => m.instanceId === goneMy).map((m: any) => [m.kind, m.name]),
      [['Database', mysqlNames.database(goneMy)]],
    );
    assert.ok(!report.body.missing.some((m: any) => m.instanceId === livePg || m.instanceId === liveMy));
    const metrics = await (await fetch(`${h.test.berth.url}/metrics`)).text();
    assert.match(metrics, /berth_orphans\{backend="postgres:local",kind="database"\} [1-9]/);
    assert.match(metrics, /berth_missing_resources\{kind="Database"\} [1-9]/);
    assert.deepEqual((await h.admin('GET', '/sweep')).body, report.body, 'the last report is listed');

    const noReason = await h.admin('POST', '/sweep', { delete: true });
    assert.equal(noReason.status, 400);
    assert.match(noReason.body.description, /needs a reason/);
    assert.equal((await h.admin('POST', '/sweep', { only: ['x'] })).status, 400);

    const chosen = [planted.pgDatabase, planted.pgRole, planted.myDatabase, planted.myUser].flatMap((n) => named(n).map((o) => o.id));
    const cleanup = await h.admin('POST', '/sweep', { delete: true, only: chosen, reason: 'planted by the sweeper test' });
    assert.equal(cleanup.status, 200, cleanup.text);
    const deleted = cleanup.body.orphans.filter((o: any) => o.deleted === true).map((o: any) => o.id).sort();
    assert.deepEqual(deleted, [...chosen].sort());
    assert.equal(await pgDatabaseExists(planted.pgDatabase), false);
    assert.equal(await pgRoleExists(planted.pgRole), false);
    assert.equal(await mysqlDatabaseExists(planted.myDatabase), false);
    assert.equal(await mysqlUserExists(planted.myUser), false);
    // Nothing else went.
    assert.equal(await pgDatabaseExists(planted.notOurs), true);
    assert.equal(await pgDatabaseExists(inFlightDatabase), true);
    assert.equal(await pgDatabaseExists(pgNames.database(livePg)), true);
    assert.equal(await pgRoleExists(pgNames.bindingRole(livePg, livePgBinding)), true);
    assert.equal(await mysqlDatabaseExists(mysqlNames.database(liveMy)), true);
    assert.equal(await mysqlUserExists(mysqlNames.bindingUser(liveMy, liveMyBinding)), true);

    const audit = await h.admin('GET', '/audit?limit=1000');
    assert.deepEqual(
      audit.body.items.filter((e: any) => e.action === 'admin-sweep-delete').map((e: any) => [e.actor, e.reason, e.outcome]).sort(),
      chosen.map((id) => ['alice', 'planted by the sweeper test', id]).sort(),
    );
  } finally {
    await withPg((c) => c.query(`DROP DATABASE IF EXISTS ${quotePgIdent(inFlightDatabase)}`));
  }
});
