// The admin API on a real Berth (real Postgres state, the machine's Postgres server, the gated test
// provisioner for operations that hold or fail): its own credentials both ways, listing filters,
// force-fail and retry through the durable engine, repair and purge, each audited with who and why.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig, ConfigError } from '../../src/config.ts';
import { pgNames, quotePgIdent } from '../../src/provisioners/sql/names.ts';
import { release } from '../support/gated-provisioner.ts';
import { TEST_CREDENTIALS } from '../support/berth.ts';
import { pgAs, pgDatabaseExists, Tracker, withPg } from '../database-provisioners/support.ts';
import { ADMIN_TOKEN, AdminBerth, PLANS, PLATFORM_TOKEN } from './support.ts';

let h: AdminBerth;
const tracker = new Tracker();
before(async () => {
  h = await AdminBerth.start();
});
after(async () => {
  release();
  try {
    await tracker.cleanup();
  } finally {
    await h?.stop();
  }
});

const basic = 'Basic ' + Buffer.from(`${TEST_CREDENTIALS.username}:${TEST_CREDENTIALS.password}`).toString('base64');

async function provisionGated(plan: 'held' | 'failing', id = `adm-${randomUUID()}`): Promise<{ id: string; operation: string }> {
  const r = await h.test.client.provision(id, { service_id: PLANS.gated.service_id, plan_id: PLANS.gated[plan], organization_guid: 'o', space_guid: 's' });
  assert.equal(r.status, 202, r.text);
  return { id, operation: r.body.operation };
}

/** Until a worker holds the operation (its lease is live). */
async function leased(operationId: string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    const r = await h.admin('GET', `/operations?stuck=0s&limit=1000`);
    if (r.body.items.some((o: any) => o.id === operationId && o.leaseOwner)) return;
    await sleep(50);
  }
  throw new Error(`operation ${operationId} was never claimed`);
}

describe('admin API credentials', () => {
  test('the admin API takes only admin tokens, and the OSB API refuses them', async () => {
    const none = await h.admin('GET', '/instances', undefined, null);
    assert.equal(none.status, 401);
    assert.equal(none.body.error, 'Unauthorized');
    assert.match(none.body.description, /BERTH_ADMIN_TOKENS/);
    assert.equal((await h.admin('GET', '/instances', undefined, basic)).status, 401, 'platform basic credentials');
    assert.equal((await h.admin('GET', '/instances', undefined, `Bearer ${PLATFORM_TOKEN}`)).status, 401, 'platform bearer token');
    assert.equal((await h.admin('GET', '/instances', undefined, `Bearer ${ADMIN_TOKEN}x`)).status, 401, 'a token that is not quite the admin token');
    assert.equal((await h.admin('GET', '/instances')).status, 200);

    const osb = (authorization: string) => h.test.client.request('GET', '/v2/catalog', { headers: { Authorization: authorization } });
    assert.equal((await osb(`Bearer ${ADMIN_TOKEN}`)).status, 401, 'admin token on /v2');
    assert.equal((await osb(`Bearer ${PLATFORM_TOKEN}`)).status, 200);
    assert.equal((await osb(basic)).status, 200);
  });

  test('an admin token that is also a platform credential is refused at start', () => {
    const env = { DATABASE_URL: 'postgres://x@127.0.0.1/x', BERTH_ENCRYPTION_KEYS: 'k1:' + Buffer.alloc(32, 1).toString('base64'), BERTH_BEARER_TOKENS: PLATFORM_TOKEN };
    assert.throws(() => loadConfig({ ...env, BERTH_ADMIN_TOKENS: `bob:${PLATFORM_TOKEN}` }), (err: Error) => err instanceof ConfigError && /also a platform credential/.test(err.message));
    assert.throws(() => loadConfig({ ...env, BERTH_ADMIN_TOKENS: 'no-name-here-0123456789' }), (err: Error) => err instanceof ConfigError && /NAME:TOKEN/.test(err.message));
    assert.equal(loadConfig({ ...env, BERTH_ADMIN_TOKENS: `bob:${ADMIN_TOKEN}` }).admin.tokens[0]!.name, 'bob');
  });
});

describe('force-fail and retry', () => {
  test('a force-failed operation ends failed naming the admin, its worker cannot overwrite it, and a retry runs it again', async () => {
    const { id, operation } = await provisionGated('held');
    await leased(operation);

    const noReason = await h.admin('POST', `/operations/${operation}/fail`, {});
    assert.equal(noReason.status, 400);
    assert.match(noReason.body.description, /reason/);

    const failed = await h.admin('POST', `/operations/${operation}/fail`, { reason: 'backend ticket 4711: provisioning hangs' });
    assert.equal(failed.status, 200, failed.text);
    assert.equal(failed.body.description, 'Failed by an administrator (alice): backend ticket 4711: provisioning hangs');
    const seen = await h.test.client.lastOperation(id, operation);
    assert.equal(seen.body.state, 'failed');
    assert.match(seen.body.description, /administrator \(alice\)/);

    // The worker that held it stops and hands its lease back without writing anything: the outcome stays.
    release(id);
    for (let i = 0; i < 1200; i++) {
      const row = await h.test.berth.stores.knex('operations').where({ id: operation }).first('lease_owner');
      if (row.lease_owner === null) break;
      await sleep(50);
    }
    const row = await h.test.berth.stores.knex('operations').where({ id: operation }).first('state', 'description', 'lease_owner');
    assert.deepEqual(row, { state: 'failed', description: failed.body.description, lease_owner: null });
    assert.equal(await h.test.berth.stores.instances.stateOf(id), 'create_failed');

    const again = await h.admin('POST', `/operations/${operation}/fail`, { reason: 'twice' });
    assert.equal(again.status, 409);
    assert.equal(again.body.error, 'AlreadyEnded');

    const retried = await h.admin('POST', `/operations/${operation}/retry`, { reason: 'backend fixed' });
    assert.equal(retried.status, 202, retried.text);
    assert.notEqual(retried.body.operationId, operation);
    const done = await h.test.client.waitForInstance(id, retried.body.operationId, 60_000);
    assert.equal(done.body.state, 'succeeded', done.text);
    assert.equal(await h.test.berth.stores.instances.stateOf(id), 'ready');
    assert.equal((await h.test.client.lastOperation(id, operation)).body.state, 'failed', 'the old operation stays failed');

    const stale = await h.admin('POST', `/operations/${operation}/retry`, { reason: 'again' });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.error, 'Superseded', stale.text);
    assert.equal((await h.admin('POST', `/operations/${retried.body.operationId}/retry`, { reason: 'x-y-z' })).body.error, 'NotFailed');
    assert.equal((await h.admin('POST', `/operations/${randomUUID()}/retry`, { reason: 'nothing' })).status, 404);

    const audit = (await h.test.berth.stores.audit.forInstance(id)).filter((e) => e.actor);
    assert.deepEqual(
      audit.map((e) => [e.action, e.actor, e.reason, e.operationId]),
      [
        ['admin-fail', 'alice', 'backend ticket 4711: provisioning hangs', operation],
        ['admin-retry', 'alice', 'backend fixed', retried.body.operationId],
      ],
    );
    const listed = await h.admin('GET', `/audit?instance=${encodeURIComponent(id)}`);
    assert.deepEqual(listed.body.items.map((e: any) => e.action), ['admin-retry', 'admin-fail']);
  });
});

describe('listing', () => {
  test('instances, bindings and operations filter by failed, stuck, plan, offering, state and kind, in pages', async () => {
    const held = await provisionGated('held');
    const failing = await provisionGated('failing');
    await h.ended(failing.operation);
    await leased(held.operation);

    const ids = (r: { body: { items: Array<{ id: string }> } }) => r.body.items.map((i) => i.id);
    const failedInstances = ids(await h.admin('GET', '/instances?failed=true&limit=1000'));
    assert.ok(failedInstances.includes(failing.id));
    assert.ok(!failedInstances.includes(held.id));
    const stuck = await h.admin('GET', '/instances?stuck=0s&limit=1000');
    assert.ok(ids(stuck).includes(held.id));
    assert.ok(!ids(stuck).includes(failing.id));
    assert.ok(!ids(await h.admin('GET', '/instances?stuck=1h&limit=1000')).includes(held.id), 'not stuck for an hour');
    assert.deepEqual(ids(await h.admin('GET', `/instances?plan=failing&offering=admin-gated&limit=1000`)).filter((x) => x === failing.id || x === held.id), [failing.id]);
    assert.ok(ids(await h.admin('GET', '/instances?offering=admin-gated&state=creating&limit=1000')).includes(held.id));
    const instance = (await h.admin('GET', `/instances?instance=${held.id}`)).body.items[0];
    assert.equal(instance.lastOperation.id, held.operation);
    assert.equal(instance.maintenanceVersion, null);

    const ops = await h.admin('GET', `/operations?kind=provision&failed=true&limit=1000`);
    assert.ok(ids(ops).includes(failing.operation));
    assert.ok(!ids(ops).includes(held.operation));

    // Every instance once, page by page.
    const all = ids(await h.admin('GET', '/instances?limit=1000'));
    const paged: string[] = [];
    let next: string | undefined;
    do {
      const page = await h.admin('GET', `/instances?limit=1${next ? `&continue=${next}` : ''}`);
      assert.equal(page.status, 200, page.text);
      paged.push(...ids(page));
      next = page.body.continue;
    } while (next);
    assert.deepEqual(paged, all);
    const opsAll = ids(await h.admin('GET', '/operations?limit=1000'));
    const opsPaged: string[] = [];
    next = undefined;
    do {
      const page = await h.admin('GET', `/operations?limit=2${next ? `&continue=${next}` : ''}`);
      opsPaged.push(...ids(page));
      next = page.body.continue;
    } while (next);
    assert.deepEqual(opsPaged, opsAll);

    const bad = await h.admin('GET', '/instances?stuck=soon');
    assert.equal(bad.status, 400);
    assert.match(bad.body.description, /stuck: must be a duration such as 90s/);
    const badCursor = await h.admin('GET', '/instances?continue=nonsense');
    assert.equal(badCursor.status, 400);
    assert.match(badCursor.body.description, /start again without it/);
    const unknown = await h.admin('GET', '/instances?colour=red');
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.description, /Filters: state, plan/);
    assert.equal((await h.admin('GET', '/nothing-here')).status, 404);

    const fail = await h.admin('POST', `/operations/${held.operation}/fail`, { reason: 'listing test done' });
    assert.equal(fail.status, 200);
    release(held.id);
  });
});

describe('repair and purge', () => {
  test('repair re-creates a dropped database through a durable operation; purge forgets the instance without touching the server; both audited', async () => {
    const id = tracker.instance();
    const first = await h.test.client.provision(id, { ...PLANS.pg, organization_guid: 'o', space_guid: 's' });
    assert.equal(first.status, 202, first.text);
    assert.equal((await h.test.client.waitForInstance(id, first.body.operation, 60_000)).body.state, 'succeeded');
    const bindingId = tracker.binding(id);
    const bound = await h.test.client.bind(id, bindingId, PLANS.pg);
    assert.equal(bound.status, 201, bound.text);

    await withPg((c) => c.query(`DROP DATABASE ${quotePgIdent(pgNames.database(id))} WITH (FORCE)`));
    const report = await h.admin('POST', '/sweep', {});
    assert.equal(report.status, 200, report.text);
    assert.ok(
      report.body.missing.some((m: any) => m.instanceId === id && m.kind === 'Database' && m.name === pgNames.database(id)),
      `the sweep reports the dropped database: ${JSON.stringify(report.body.missing)}`,
    );

    const repair = await h.admin('POST', `/instances/${id}/repair`, { reason: 'database dropped by mistake' });
    assert.equal(repair.status, 202, repair.text);
    assert.equal((await h.ended(repair.body.operationId)).state, 'succeeded');
    assert.equal(await pgDatabaseExists(pgNames.database(id)), true);
    // The binding's login works again, on the re-created database.
    assert.equal(await pgAs(bound.body.credentials, async (c) => (await c.query('SELECT 1 AS one')).rows[0].one), 1);
    assert.equal(await h.test.berth.stores.instances.stateOf(id), 'ready');
    const afterRepair = await h.admin('POST', '/sweep', {});
    assert.ok(!afterRepair.body.missing.some((m: any) => m.instanceId === id), JSON.stringify(afterRepair.body.missing));

    const notReady = await h.admin('POST', `/instances/${(await provisionGated('failing')).id}/repair`, { reason: 'try' });
    assert.equal(notReady.status, 409, notReady.text);
    assert.match(notReady.body.description, /only a ready instance can be repaired/);

    const purged = await h.admin('POST', `/instances/${id}/purge`, { reason: 'moved to another broker' });
    assert.equal(purged.status, 200, purged.text);
    assert.equal((await h.test.client.request('GET', `/v2/service_instances/${id}`)).status, 404);
    assert.equal((await h.test.client.deprovision(id, PLANS.pg.service_id, PLANS.pg.plan_id)).status, 410);
    assert.equal(await pgDatabaseExists(pgNames.database(id)), true, 'purge does not call the provisioner');
    assert.equal((await h.admin('POST', `/instances/${id}/purge`, { reason: 'again' })).status, 409);

    const audit = (await h.test.berth.stores.audit.forInstance(id)).filter((e) => e.actor);
    assert.deepEqual(
      audit.map((e) => [e.action, e.actor, e.reason]),
      [
        ['admin-repair', 'alice', 'database dropped by mistake'],
        ['admin-purge', 'alice', 'moved to another broker'],
      ],
    );
    // The repair ran as a normal operation and was audited as one too.
    assert.ok((await h.test.berth.stores.audit.forInstance(id)).some((e) => e.action === 'repair' && e.outcome === 'succeeded'));
  });
});
