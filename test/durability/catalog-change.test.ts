// A rolling catalog update: replicas on one database run different catalogs
// for a while, and plans (or whole services) are retired while instances of
// them remain. No operation may fail because the replica that runs it has an
// older or newer catalog than the one that accepted it, and an instance of a
// retired plan can still be fetched, unbound and deprovisioned, for real.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { spawnBerth, startTestBerth, type BerthProcess, type TestBerth } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import type { OsbClient } from '../support/osb-client.ts';
import { pgNames } from '../../src/provisioners/sql/names.ts';
import { CATALOG as DB_CATALOG, PG, pgDatabaseExists, pgRoleExists, serverEnv, Tracker } from '../database-provisioners/support.ts';
import { RECORDING_CATALOG } from '../support/recording-provisioner.ts';
import {
  bindBody,
  checkInvariants,
  createDatabases,
  liveResources,
  provisionBody,
  query,
  RECORDING_PLANS,
  RECORDING_SERVICE_ID,
  recordingEnv,
  waitForOperation,
  type Databases,
} from './helpers.ts';

type CatalogDoc = { services: Array<{ id: string; name: string; plans: Array<{ id: string; name: string } & Record<string, unknown>> } & Record<string, unknown>> };

/** Writes `file` changed by `edit` into `dir`; returns its path. */
function catalogVariant(file: string, dir: string, name: string, edit: (doc: CatalogDoc) => void): string {
  const doc = parse(readFileSync(file, 'utf8'), { merge: true }) as CatalogDoc;
  edit(doc);
  const path = join(dir, name);
  writeFileSync(path, stringify(doc, { aliasDuplicateObjects: false }));
  return path;
}

// The next catalog retires the `async` plan, adds a plan to the service and a whole new service.
const NEXT_PLAN = '7d3c1a52-5f0e-4b8e-9a51-2c6f3f0b9a21';
const NEXT_SERVICE = '7d3c1a52-5f0e-4b8e-9a51-2c6f3f0b9b01';
const NEXT_SERVICE_PLAN = '7d3c1a52-5f0e-4b8e-9a51-2c6f3f0b9b11';

async function finished(client: () => OsbClient, reply: { status: number; text: string; body: any }, target: { instanceId: string; bindingId?: string }) {
  assert.equal(reply.status, 202, reply.text);
  return waitForOperation(client, { ...target, operation: reply.body.operation }, 60_000);
}

describe('durability: replicas on different catalogs', () => {
  let dbs: Databases;
  let dir: string;
  let old: BerthProcess;
  let next: BerthProcess;

  before(async () => {
    dbs = await createDatabases();
    dir = mkdtempSync(join(tmpdir(), 'berth-catalogs-'));
    const nextCatalog = catalogVariant(RECORDING_CATALOG, dir, 'next.yaml', (doc) => {
      const service = doc.services[0]!;
      const retired = service.plans.find((p) => p.id === RECORDING_PLANS.async)!;
      service.plans = service.plans.filter((p) => p !== retired);
      service.plans.push({ ...retired, id: NEXT_PLAN, name: 'async-next' });
      doc.services.push({ ...service, id: NEXT_SERVICE, name: 'recording-next', plans: [{ ...retired, id: NEXT_SERVICE_PLAN, name: 'only' }] });
    });
    // The old replica only accepts requests; every operation runs on the replica with the other catalog.
    [old, next] = await Promise.all([
      spawnBerth(recordingEnv(dbs.berth.url, dbs.recording.url, { BERTH_WORKER_CONCURRENCY: '0' })),
      spawnBerth(recordingEnv(dbs.berth.url, dbs.recording.url, { CATALOG_PATH: nextCatalog })),
    ]);
  });

  after(async () => {
    for (const p of [old, next]) if (p && p.child.exitCode === null && p.child.signalCode === null) process.kill(p.pid, 'SIGTERM');
    const codes = await Promise.all([old, next].filter(Boolean).map((p) => p.exited));
    await dbs?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(codes, codes.map(() => 0), 'both replicas shut down cleanly');
  });

  it('runs operations on a replica whose catalog lacks their plan, and removes instances of retired plans and services', async () => {
    const viaOld = () => old.client;
    const viaNext = () => next.client;
    const outcomes: Array<[string, { state: string; description: string }]> = [];
    const run = async (what: string, client: () => OsbClient, reply: Promise<any>, target: { instanceId: string; bindingId?: string }) => {
      outcomes.push([what, await finished(client, await reply, target)]);
    };

    // Accepted by the old catalog (which has the plan), run by the next one (which retired it).
    const id = 'cc-retired';
    await run('provision', viaOld, old.client.provision(id, provisionBody('async')), { instanceId: id });
    await run('bind b1', viaOld, old.client.bind(id, 'b1', bindBody('async')), { instanceId: id, bindingId: 'b1' });
    await run('update', viaOld, old.client.update(id, { service_id: RECORDING_SERVICE_ID, parameters: { size: 2 } }), { instanceId: id });
    await run('bind b2', viaOld, old.client.bind(id, 'b2', bindBody('async')), { instanceId: id, bindingId: 'b2' });

    // The replica whose catalog retired the plan still serves the instance and removes it.
    const fetched = await next.client.request('GET', `/v2/service_instances/${id}`);
    assert.equal(fetched.status, 200, fetched.text);
    assert.deepEqual([fetched.body.plan_id, fetched.body.parameters], [RECORDING_PLANS.async, { size: 2 }]);
    const binding = await next.client.fetchBinding(id, 'b1');
    assert.equal(binding.status, 200, binding.text);
    assert.equal(typeof binding.body.credentials?.password, 'string');
    await run('unbind b1', viaNext, next.client.unbind(id, 'b1', RECORDING_SERVICE_ID, RECORDING_PLANS.async), { instanceId: id, bindingId: 'b1' });
    await run('deprovision', viaNext, next.client.deprovision(id, RECORDING_SERVICE_ID, RECORDING_PLANS.async), { instanceId: id });
    assert.deepEqual(await liveResources(dbs.recording.url, id), [], 'the retired plan\'s instance and its bindings left nothing behind');

    // The other way round: instances of a plan and a service the old catalog does not have yet.
    const onNextPlan = 'cc-next-plan';
    const onNextService = 'cc-next-service';
    await run('provision (next plan)', viaNext, next.client.provision(onNextPlan, { ...provisionBody('async'), plan_id: NEXT_PLAN }), { instanceId: onNextPlan });
    await run(
      'provision (next service)',
      viaNext,
      next.client.provision(onNextService, { ...provisionBody('async'), service_id: NEXT_SERVICE, plan_id: NEXT_SERVICE_PLAN }),
      { instanceId: onNextService },
    );
    const unknownToOld = await old.client.request('GET', `/v2/service_instances/${onNextService}`);
    assert.equal(unknownToOld.status, 200, unknownToOld.text);
    assert.equal(unknownToOld.body.service_id, NEXT_SERVICE);
    await run('deprovision (next plan)', viaOld, old.client.deprovision(onNextPlan, RECORDING_SERVICE_ID, NEXT_PLAN), { instanceId: onNextPlan });
    await run('deprovision (next service)', viaOld, old.client.deprovision(onNextService, NEXT_SERVICE, NEXT_SERVICE_PLAN), { instanceId: onNextService });

    // An instance can move off a retired plan, to a plan of the catalog.
    const moving = 'cc-moving';
    await run('provision (moving)', viaOld, old.client.provision(moving, provisionBody('async')), { instanceId: moving });
    const stay = await next.client.update(moving, { service_id: RECORDING_SERVICE_ID, parameters: { size: 3 } });
    assert.equal(stay.status, 422, stay.text);
    assert.match(stay.body.description, /no longer in the catalog; change it to a plan of the catalog, or delete the instance/);
    await run('update (moving)', viaNext, next.client.update(moving, { service_id: RECORDING_SERVICE_ID, plan_id: NEXT_PLAN }), { instanceId: moving });
    const moved = await old.client.request('GET', `/v2/service_instances/${moving}`);
    assert.equal(moved.body.plan_id, NEXT_PLAN, moved.text);
    await run('deprovision (moving)', viaOld, old.client.deprovision(moving, RECORDING_SERVICE_ID, NEXT_PLAN), { instanceId: moving });

    const failed = outcomes.filter(([, o]) => o.state !== 'succeeded');
    assert.deepEqual(failed, [], 'every operation succeeded');
    assert.equal(outcomes.length, 13);
    const runners = await query<{ pid: number }>(dbs.recording.url, `SELECT DISTINCT pid FROM step_runs`);
    assert.deepEqual(runners.map((r) => r.pid), [next.pid], 'every operation ran on the replica with the next catalog');
    await checkInvariants(dbs.berth.url, dbs.recording.url);
  });

  it('still validates new requests against the replica\'s own catalog', async () => {
    const r = await next.client.provision('cc-refused', provisionBody('async'));
    assert.equal(r.status, 400, r.text);
    assert.match(r.body.description, /not in this broker's catalog/);
  });
});

describe('durability: a postgres instance whose plan was retired', () => {
  let state: TestDatabase;
  let dir: string;
  let berth: TestBerth | undefined;
  const tracker = new Tracker();

  before(async () => {
    state = await createTestDatabase('berth_cc_pg');
    dir = mkdtempSync(join(tmpdir(), 'berth-catalogs-'));
  });

  after(async () => {
    try {
      await tracker.cleanup();
    } finally {
      await berth?.stop().catch(() => {});
      await state?.drop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  it('can be fetched, unbound and deprovisioned after a restart on a catalog without the plan; its database is dropped', async () => {
    berth = await startTestBerth({ databaseUrl: state.url, catalogPath: DB_CATALOG, env: serverEnv() });
    const id = tracker.instance();
    const bindingId = tracker.binding(id);
    const created = await berth.client.provision(id, { service_id: PG.service, plan_id: PG.small, organization_guid: 'org', space_guid: 'space' });
    assert.equal((await finished(() => berth!.client, created, { instanceId: id })).state, 'succeeded');
    const bound = await berth.client.bind(id, bindingId, { service_id: PG.service, plan_id: PG.small });
    assert.equal(bound.status, 201, bound.text);
    const role = bound.body.credentials.username as string;
    assert.ok(await pgDatabaseExists(pgNames.database(id)));
    await berth.stop();

    const retired = catalogVariant(DB_CATALOG, dir, 'retired.yaml', (doc) => {
      for (const s of doc.services) s.plans = s.plans.filter((p) => p.id !== PG.small);
    });
    berth = await startTestBerth({ databaseUrl: state.url, catalogPath: retired, env: serverEnv() });
    const fetched = await berth.client.request('GET', `/v2/service_instances/${id}`);
    assert.equal(fetched.status, 200, fetched.text);
    assert.equal(fetched.body.plan_id, PG.small);
    const binding = await berth.client.fetchBinding(id, bindingId);
    assert.equal(binding.status, 200, binding.text);

    const unbound = await berth.client.unbind(id, bindingId, PG.service, PG.small);
    assert.equal(unbound.status, 200, unbound.text);
    assert.equal(await pgRoleExists(role), false, 'the binding role is gone');
    const deleted = await berth.client.deprovision(id, PG.service, PG.small);
    assert.deepEqual(await finished(() => berth!.client, deleted, { instanceId: id }), { state: 'succeeded', description: 'Deprovisioned' });
    assert.equal(await pgDatabaseExists(pgNames.database(id)), false, 'the database is dropped');
    assert.equal(await pgRoleExists(pgNames.ownerRole(id)), false, 'the owner role is dropped');
  });
});
