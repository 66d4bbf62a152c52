// Ciphertexts are bound to their row, and deleting an object erases its
// secrets. Berth runs in this process on the real Postgres server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestBerth, type TestBerth } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { CATALOG, MODULES } from '../conformance/suite.ts';
import { org } from './support.ts';

const UPS = { service_id: 'svc-ups', plan_id: 'plan-ups' };
const FAST = { service_id: 'svc-gated', plan_id: 'plan-fast' };

describe('stored secrets are bound to their rows and erased with them', () => {
  let db: TestDatabase;
  let t: TestBerth;

  before(async () => {
    db = await createTestDatabase();
    t = await startTestBerth({ databaseUrl: db.url, catalogPath: CATALOG, env: { BERTH_PROVISIONER_MODULES: MODULES } });
  });

  after(async () => {
    await t?.stop();
    await db?.drop();
  });

  const knex = () => t.berth.stores.knex;

  it('a binding whose credentials were copied from another binding gets a clear error, not the other password', async () => {
    for (const [id, password] of [['copy-a', 'alpha-secret'], ['copy-b', 'beta-secret']] as const) {
      const p = await t.client.provision(id, { ...UPS, ...org, parameters: { credentials: { password } } }, false);
      assert.equal(p.status, 201, p.text);
      const b = await t.client.bind(id, `${id}-binding`, { ...UPS }, false);
      assert.equal(b.status, 201, b.text);
    }
    const before = await t.client.fetchBinding('copy-b', 'copy-b-binding');
    assert.equal(before.body.credentials.password, 'beta-secret');

    const source = await knex()('bindings').where({ instance_id: 'copy-a', id: 'copy-a-binding' }).first('credentials_enc');
    await knex()('bindings').where({ instance_id: 'copy-b', id: 'copy-b-binding' }).update({ credentials_enc: source.credentials_enc });

    const r = await t.client.fetchBinding('copy-b', 'copy-b-binding');
    assert.equal(r.status, 500, r.text);
    assert.doesNotMatch(r.text, /alpha-secret/);
    assert.match(r.body.description, /credentials of service binding "copy-b-binding".*copied from another row/);
    // The idempotent repeat of the bind reads the same row: the same clear error.
    const again = await t.client.bind('copy-b', 'copy-b-binding', { ...UPS }, false);
    assert.equal(again.status, 500, again.text);
    assert.doesNotMatch(again.text, /alpha-secret/);
    // The binding it was copied from is untouched.
    assert.equal((await t.client.fetchBinding('copy-a', 'copy-a-binding')).body.credentials.password, 'alpha-secret');
  });

  it('an instance whose parameters were copied from another instance gets a clear error', async () => {
    const source = await knex()('instances').where({ id: 'copy-a' }).first('parameters_enc');
    await knex()('instances').where({ id: 'copy-b' }).update({ parameters_enc: source.parameters_enc });
    const r = await t.client.request('GET', '/v2/service_instances/copy-b');
    assert.equal(r.status, 500, r.text);
    assert.doesNotMatch(r.text, /alpha-secret/);
    assert.match(r.body.description, /parameters of service instance "copy-b".*copied from another row/);
  });

  it('an unbound binding and a deprovisioned instance keep no secrets', async () => {
    const id = 'erase-1';
    const p = await t.client.provision(id, { ...FAST, ...org, parameters: { size: 2, name: 'secret-name' } });
    assert.equal(p.status, 202, p.text);
    assert.equal((await t.client.waitForInstance(id, p.body.operation)).body.state, 'succeeded');
    const u = await t.client.update(id, { ...FAST, parameters: { size: 3 } });
    assert.equal(u.status, 202, u.text);
    assert.equal((await t.client.waitForInstance(id, u.body.operation)).body.state, 'succeeded');
    for (const bindingId of ['erase-b1', 'erase-b2']) {
      const b = await t.client.bind(id, bindingId, { ...FAST, parameters: { role: 'reader' } });
      assert.equal(b.status, 202, b.text);
      assert.equal((await t.client.waitForBinding(id, bindingId, b.body.operation)).body.state, 'succeeded');
    }
    const secretsOf = (bindingId: string) =>
      knex()('bindings').where({ instance_id: id, id: bindingId }).first('state', 'parameters_enc', 'credentials_enc', 'provisioner_state_enc');
    const live = await secretsOf('erase-b1');
    assert.ok(live.parameters_enc && live.credentials_enc && live.provisioner_state_enc, 'a live binding has its secrets');

    const ub = await t.client.unbind(id, 'erase-b1', FAST.service_id, FAST.plan_id);
    assert.equal(ub.status, 202, ub.text);
    assert.equal((await t.client.waitForBinding(id, 'erase-b1', ub.body.operation)).body.state, 'succeeded');
    assert.deepEqual(await secretsOf('erase-b1'), { state: 'deleted', parameters_enc: null, credentials_enc: null, provisioner_state_enc: null });
    assert.ok((await secretsOf('erase-b2')).credentials_enc, 'the other binding keeps its credentials');

    const d = await t.client.deprovision(id, FAST.service_id, FAST.plan_id);
    assert.equal(d.status, 202, d.text);
    assert.equal((await t.client.waitForInstance(id, d.body.operation)).body.state, 'succeeded');
    assert.deepEqual(await knex()('instances').where({ id }).first('state', 'parameters_enc', 'provisioner_state_enc'), {
      state: 'deleted',
      parameters_enc: null,
      provisioner_state_enc: null,
    });
    assert.deepEqual(await secretsOf('erase-b2'), { state: 'deleted', parameters_enc: null, credentials_enc: null, provisioner_state_enc: null });
    const requests = await knex()('operations').where({ instance_id: id }).select('kind', 'request_enc');
    assert.ok(requests.some((o) => o.kind === 'update'));
    assert.deepEqual(requests.filter((o) => o.request_enc !== null), [], 'no operation of the deleted instance keeps its request (update parameters)');

    // The id can be provisioned again, and its history still answers.
    const again = await t.client.provision(id, { ...FAST, ...org, parameters: { size: 1 } });
    assert.equal(again.status, 202, again.text);
    assert.equal((await t.client.waitForInstance(id, again.body.operation)).body.state, 'succeeded');
    assert.equal((await t.client.lastOperation(id, u.body.operation)).body.state, 'succeeded');
  });
});
