// The 20261203200000_reseal_bound migration: rows sealed in the old unbound
// format are re-sealed bound to their cell when Berth starts, secrets of
// objects deleted before it are erased, and a row under a key that is no
// longer configured is left for later instead of stopping the start.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import knexFactory, { type Knex } from 'knex';
import { startTestBerth, TEST_KEYS, type TestBerth } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { CATALOG, MODULES } from '../conformance/suite.ts';
import { migrationSource } from '../../src/db/migrations/index.ts';
import { migrateLatest } from '../../src/db/database.ts';
import { SecretBox } from '../../src/secret-box.ts';
import { bindingCell, instanceCell, sealV1 } from './support.ts';

const UPS = { service_id: 'svc-ups', plan_id: 'plan-ups' };
const UNCONFIGURED_KEY = SecretBox.generateKeySpec('lost');

describe('migration 20261203200000_reseal_bound', () => {
  let db: TestDatabase;
  let knex: Knex;
  let t: TestBerth | undefined;

  before(async () => {
    db = await createTestDatabase();
    knex = knexFactory({ client: 'pg', connection: db.url, pool: { min: 0, max: 2 } });
    // The schema as it was before this migration.
    await knex.migrate.up({ migrationSource });
    await knex.migrate.up({ migrationSource });
    const v1 = (value: unknown) => sealV1(TEST_KEYS, value);
    const instance = (id: string, state: string, parameters: string) => ({ id, ...UPS, state, parameters_enc: parameters, provisioner_state_enc: v1({}) });
    await knex('instances').insert([
      instance('legacy-1', 'ready', v1({ credentials: { password: 'legacy-pw' } })),
      instance('legacy-deleted', 'deleted', v1({ credentials: { password: 'deleted-pw' } })),
      instance('legacy-lost-key', 'ready', sealV1(UNCONFIGURED_KEY, { credentials: { password: 'lost' } })),
    ]);
    const binding = (id: string, state: string) => ({
      instance_id: 'legacy-1',
      id,
      ...UPS,
      state,
      parameters_enc: v1({}),
      credentials_enc: v1({ credentials: { password: 'legacy-pw' } }),
      provisioner_state_enc: v1({}),
    });
    await knex('bindings').insert([binding('lb-1', 'ready'), binding('lb-deleted', 'deleted')]);
    await knex('operations').insert([
      { id: 'op-legacy', instance_id: 'legacy-1', kind: 'provision', state: 'succeeded', description: 'Provisioned', request_enc: v1({ planId: UPS.plan_id }), finished_at: knex.fn.now() },
      { id: 'op-deleted', instance_id: 'legacy-deleted', kind: 'update', state: 'succeeded', description: 'Updated', request_enc: v1({ parameters: { credentials: { password: 'deleted-pw' } } }), finished_at: knex.fn.now() },
    ]);
  });

  after(async () => {
    await t?.stop();
    await knex?.destroy();
    await db?.drop();
  });

  it('refuses to run without the keys, changing nothing', async () => {
    await assert.rejects(migrateLatest(knex), /needs the encryption keys/);
    assert.match((await knex('bindings').where({ id: 'lb-deleted' }).first('credentials_enc')).credentials_enc, /^v1:/);
  });

  it('re-seals legacy rows bound to their cells when Berth starts, and erases what deleted objects kept', async () => {
    t = await startTestBerth({ databaseUrl: db.url, catalogPath: CATALOG, env: { BERTH_PROVISIONER_MODULES: MODULES } });
    assert.ok(await knex('knex_migrations').where({ name: '20261203200000_reseal_bound' }).first());

    const box = new SecretBox(TEST_KEYS);
    const i = await knex('instances').where({ id: 'legacy-1' }).first();
    assert.match(i.parameters_enc, /^v2:test:/);
    assert.deepEqual(box.open(i.parameters_enc, instanceCell('legacy-1', 'parameters_enc')), { credentials: { password: 'legacy-pw' } });
    const b = await knex('bindings').where({ id: 'lb-1' }).first();
    for (const column of ['parameters_enc', 'credentials_enc', 'provisioner_state_enc']) assert.match(b[column], /^v2:test:/, column);
    assert.deepEqual(box.open(b.credentials_enc, bindingCell('legacy-1', 'lb-1', 'credentials_enc')), { credentials: { password: 'legacy-pw' } });
    assert.match((await knex('operations').where({ id: 'op-legacy' }).first()).request_enc, /^v2:test:/);

    assert.deepEqual(await knex('bindings').where({ id: 'lb-deleted' }).first('parameters_enc', 'credentials_enc', 'provisioner_state_enc'), {
      parameters_enc: null,
      credentials_enc: null,
      provisioner_state_enc: null,
    });
    assert.deepEqual(await knex('instances').where({ id: 'legacy-deleted' }).first('parameters_enc', 'provisioner_state_enc'), {
      parameters_enc: null,
      provisioner_state_enc: null,
    });
    assert.equal((await knex('operations').where({ id: 'op-deleted' }).first()).request_enc, null);

    // Under a key Berth does not have: left as it was, reported when read.
    assert.match((await knex('instances').where({ id: 'legacy-lost-key' }).first()).parameters_enc, /^v1:lost:/);
    const lost = await t.client.request('GET', '/v2/service_instances/legacy-lost-key');
    assert.equal(lost.status, 500, lost.text);
    assert.match(lost.body.description, /key "lost"/);

    // Through the API the re-sealed rows read as before.
    const r = await t.client.fetchBinding('legacy-1', 'lb-1');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.credentials.password, 'legacy-pw');
    const g = await t.client.request('GET', '/v2/service_instances/legacy-1');
    assert.equal(g.status, 200, g.text);
    assert.equal(g.body.service_id, UPS.service_id);
  });
});
