// Rows sealed under a key that is no longer configured ("poison rows") must not
// stop anything else: the operation that needs them ends `failed` naming the
// key, every other operation runs, and requests that read them get a clear
// error. Berth runs in this process on the real Postgres server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startTestBerth, TEST_KEYS, type TestBerth } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { CATALOG, MODULES } from '../conformance/suite.ts';
import { SecretBox } from '../../src/secret-box.ts';
import { bindingCell, instanceCell, operationCell, org } from './support.ts';

const FAST = { service_id: 'svc-gated', plan_id: 'plan-fast' };
const REMOVED_KEY = SecretBox.generateKeySpec('retired-2025');

describe('rows sealed under a removed key', () => {
  let db: TestDatabase;
  let t: TestBerth;
  const current = new SecretBox(TEST_KEYS);
  const removed = new SecretBox(REMOVED_KEY);

  before(async () => {
    db = await createTestDatabase();
    t = await startTestBerth({ databaseUrl: db.url, catalogPath: CATALOG, env: { BERTH_PROVISIONER_MODULES: MODULES } });
  });

  after(async () => {
    await t?.stop();
    await db?.drop();
  });

  const knex = () => t.berth.stores.knex;

  /** A queued provision as a request would leave it, older than anything else, with chosen keys for the two ciphertexts. */
  async function queueProvision(instanceId: string, keys: { instance: SecretBox; request: SecretBox }): Promise<string> {
    const opId = randomUUID();
    await knex().transaction(async (trx) => {
      await trx('instances').insert({
        id: instanceId,
        service_id: FAST.service_id,
        plan_id: FAST.plan_id,
        state: 'creating',
        parameters_enc: keys.instance.seal({ size: 1 }, instanceCell(instanceId, 'parameters_enc')),
        provisioner_state_enc: keys.instance.seal({}, instanceCell(instanceId, 'provisioner_state_enc')),
      });
      await trx('operations').insert({
        id: opId,
        instance_id: instanceId,
        kind: 'provision',
        state: 'in progress',
        description: 'Queued',
        request_enc: keys.request.seal({ planId: FAST.plan_id }, operationCell(opId)),
        created_at: trx.raw(`now() - interval '1 hour'`),
      });
    });
    return opId;
  }

  it('an operation whose request or instance cannot be decrypted ends failed naming the key, and the others run', async () => {
    const poisonRequest = await queueProvision('poison-request', { instance: current, request: removed });
    const poisonInstance = await queueProvision('poison-instance', { instance: removed, request: current });

    const healthy: Array<[string, string]> = [];
    for (let i = 0; i < 3; i++) {
      const id = `healthy-${i}`;
      const r = await t.client.provision(id, { ...FAST, ...org, parameters: { size: 1 } });
      assert.equal(r.status, 202, r.text);
      healthy.push([id, r.body.operation]);
    }
    for (const [id, op] of healthy) {
      const end = await t.client.waitForInstance(id, op, 30_000);
      assert.deepEqual(end.body, { state: 'succeeded', description: 'Provisioned' }, id);
    }

    for (const [instanceId, opId] of [['poison-request', poisonRequest], ['poison-instance', poisonInstance]]) {
      const end = await t.client.waitForInstance(instanceId!, opId, 30_000);
      assert.equal(end.status, 200, end.text);
      assert.equal(end.body.state, 'failed', instanceId);
      assert.match(end.body.description, /encryption key "retired-2025", which is not in BERTH_ENCRYPTION_KEYS/, instanceId);
      const row = await knex()('operations').where({ id: opId }).first('attempts', 'finished_at');
      assert.equal(row.attempts, 1, `${instanceId}: claimed once, failed at once rather than retried`);
      assert.equal((await knex()('instances').where({ id: instanceId }).first('state')).state, 'create_failed');
    }
  });

  it('requests that read a row sealed under a removed key get a clear error naming the key', async () => {
    const inst = await t.client.request('GET', '/v2/service_instances/poison-instance');
    assert.equal(inst.status, 500, inst.text);
    assert.equal(inst.body.error, 'InternalError');
    assert.match(inst.body.description, /parameters of service instance "poison-instance".*key "retired-2025"/);

    // A ready binding whose credentials were sealed under the removed key.
    const r = await t.client.bind('healthy-0', 'poison-binding', { ...FAST });
    assert.equal(r.status, 202, r.text);
    assert.equal((await t.client.waitForBinding('healthy-0', 'poison-binding', r.body.operation, 30_000)).body.state, 'succeeded');
    await knex()('bindings')
      .where({ instance_id: 'healthy-0', id: 'poison-binding' })
      .update({ credentials_enc: removed.seal({ credentials: { password: 'old' } }, bindingCell('healthy-0', 'poison-binding', 'credentials_enc')) });
    const b = await t.client.fetchBinding('healthy-0', 'poison-binding');
    assert.equal(b.status, 500, b.text);
    assert.match(b.body.description, /credentials of service binding "poison-binding".*key "retired-2025"/);
    assert.doesNotMatch(b.text, /old/);
    // Its last_operation needs no secret: it still answers how the bind ended.
    const lo = await t.client.bindingLastOperation('healthy-0', 'poison-binding');
    assert.equal(lo.status, 200, lo.text);
    assert.equal(lo.body.state, 'succeeded');

    // Berth still serves and still runs operations.
    const more = await t.client.provision('after-poison', { ...FAST, ...org, parameters: { size: 1 } });
    assert.equal(more.status, 202, more.text);
    assert.equal((await t.client.waitForInstance('after-poison', more.body.operation, 30_000)).body.state, 'succeeded');
  });
});
