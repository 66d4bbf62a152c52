// The record of an instance's plan (src/catalog/plan-snapshot.ts): read back it
// gives provisioners what the catalog's plan gives them, and the migration that
// introduced it backfills rows written before it from the catalog of the
// process that migrates, leaving alone what that catalog cannot tell (plans it
// does not have, queued updates).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import knexFactory, { type Knex } from 'knex';
import { join } from 'node:path';
import { loadCatalog } from '../../src/catalog/catalog.ts';
import { PlanSnapshots, snapshotOf } from '../../src/catalog/plan-snapshot.ts';
import type { CatalogPlan } from '../../src/catalog/catalog.ts';
import { migrateLatest } from '../../src/db/database.ts';
import { migrationSourceWith } from '../../src/db/migrations/index.ts';
import { loadProvisioners } from '../../src/main.ts';
import { loadConfig } from '../../src/config.ts';
import pino from 'pino';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { RECORDING_CATALOG, RECORDING_MODULE, RECORDING_PLANS, RECORDING_SERVICE_ID } from '../support/recording-provisioner.ts';
import { REPO } from '../support/berth.ts';

let db: TestDatabase;
let knex: Knex;

before(async () => {
  db = await createTestDatabase('berth_snapmig');
  knex = knexFactory({ client: 'pg', connection: db.url, pool: { min: 0, max: 2 } });
});

after(async () => {
  await knex?.destroy();
  await db?.drop();
});

test('backfills the plans of existing instances and of their unfinished operations where the catalog has them', async () => {
  // The schema as it was before the migration.
  const before = migrationSourceWith({});
  await knex.migrate.up({ migrationSource: before, name: '20261127000000_initial' });
  await knex.migrate.up({ migrationSource: before, name: '20261127100000_claim_index' });
  const instance = (id: string, planId: string, state = 'ready') => ({ id, service_id: RECORDING_SERVICE_ID, plan_id: planId, state, parameters_enc: 'sealed' });
  await knex('instances').insert([
    instance('known', RECORDING_PLANS.async),
    instance('retired-before', 'a-plan-no-catalog-has'),
    instance('gone', RECORDING_PLANS.async, 'deleted'),
  ]);
  const operation = (id: string, instanceId: string, kind: string, finished: boolean) => ({
    id,
    instance_id: instanceId,
    kind,
    state: finished ? 'succeeded' : 'in progress',
    description: 'Queued',
    request_enc: 'sealed',
    finished_at: finished ? knex.fn.now() : null,
  });
  await knex('operations').insert([
    operation('deprovision-known', 'known', 'deprovision', false),
    operation('provision-known', 'known', 'provision', true),
    operation('deprovision-retired', 'retired-before', 'deprovision', false),
  ]);

  const config = loadConfig({ CATALOG_PATH: RECORDING_CATALOG, BERTH_PROVISIONER_MODULES: RECORDING_MODULE });
  const provisioners = await loadProvisioners(config, pino({ level: 'silent' }));
  const catalog = loadCatalog(RECORDING_CATALOG, provisioners.parseConfig);
  assert.deepEqual(await migrateLatest(knex, { catalog }), [
    '20261203100000_plan_snapshot',
    '20261203200000_reseal_bound',
    '20261203300000_failure_cause',
    '20261203400000_failure_cause_halted',
    '20261203500000_superseded_failure',
    '20261203600000_credential_expiry',
    '20261204100000_admin_audit',
    '20261204400000_stale_credentials',
  ]);

  const expected = JSON.parse(JSON.stringify(snapshotOf(catalog.plan(RECORDING_PLANS.async)!)));
  const snapshots = Object.fromEntries(
    ((await knex('instances').select('id', 'plan_snapshot')) as Array<{ id: string; plan_snapshot: unknown }>).map((r) => [r.id, r.plan_snapshot]),
  );
  assert.deepEqual(snapshots, { known: expected, 'retired-before': null, gone: null });
  const ops = Object.fromEntries(
    ((await knex('operations').select('id', 'plan_snapshot')) as Array<{ id: string; plan_snapshot: unknown }>).map((r) => [r.id, r.plan_snapshot]),
  );
  assert.deepEqual(ops, { 'deprovision-known': expected, 'provision-known': null, 'deprovision-retired': null });
  await provisioners.close();
});

test('a recorded plan, read back, gives provisioners what the catalog plan gives them', async () => {
  const config = loadConfig({ BERTH_PROVISIONER_MODULES: RECORDING_MODULE });
  const provisioners = await loadProvisioners(config, pino({ level: 'silent' }));
  const files = [RECORDING_CATALOG, join(REPO, 'catalog.yaml'), join(REPO, 'test/fixtures/catalog-helm.yaml'), join(REPO, 'test/fixtures/database-provisioners/catalog.yaml')];
  const snapshots = new PlanSnapshots(provisioners.parseConfig);
  const seen = (p: CatalogPlan) => ({
    id: p.id,
    name: p.name,
    bindable: p.bindable,
    planUpdateable: p.planUpdateable,
    bindingRotatable: p.bindingRotatable,
    maximumPollingDurationSeconds: p.maximumPollingDurationSeconds,
    maintenanceVersion: p.maintenanceVersion,
    provisioner: { kind: p.provisioner.kind, config: p.provisioner.config },
    options: p.options,
    service: { id: p.service.id, name: p.service.name, bindable: p.service.bindable, requires: p.service.requires },
    async: (['provision', 'update', 'deprovision', 'bind', 'unbind'] as const).map((k) => provisioners.forPlan(p).isAsync(k, p)),
  });
  let plans = 0;
  for (const file of files) {
    for (const plan of loadCatalog(file, provisioners.parseConfig).plans) {
      const stored = JSON.parse(JSON.stringify(snapshotOf(plan)));
      assert.deepEqual(seen(snapshots.plan(stored)), seen(plan), `${file}: ${plan.name}`);
      plans++;
    }
  }
  assert.ok(plans > 10);
  await provisioners.close();
});
