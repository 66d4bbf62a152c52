// No lease past the deadline (issue 16, point 4): a provisioner that ignores
// the abort (like a statement whose cancel cannot reach its server) keeps its
// worker busy beyond the plan's maximum_polling_duration. The worker must not
// renew its lease past the operation's deadline, so that the operation can be
// taken over and failed instead of being held for as long as the stuck call
// lasts; when the call finally returns, the operation ends failed naming the
// deadline.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config.ts';
import { startBerth, type Berth } from '../../src/main.ts';
import { ProvisionerRegistry, type Provisioner } from '../../src/provisioners/provisioner.ts';
import { TEST_CREDENTIALS, TEST_KEYS } from '../support/berth.ts';
import { OsbClient } from '../support/osb-client.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

const SERVICE = '5b1f7e0c-8a3d-4c55-9d0e-6a2b3c4d5e01';
const PLAN = '5b1f7e0c-8a3d-4c55-9d0e-6a2b3c4d5e11';
const DEADLINE_S = 2;
const LEASE_S = 1;

let letGo!: () => void;
const stuck = new Promise<void>((resolve) => (letGo = resolve));

/** Provisions by waiting for the test, deaf to op.signal; then fails as a statement cancelled late does. */
const stuckProvisioner: Provisioner = {
  kind: 'stuck',
  parsePlanConfig: () => ({ config: {} }),
  isAsync: () => true,
  provision: () =>
    stuck.then(() => {
      throw new Error('canceling statement due to user request');
    }),
  update: async () => {},
  deprovision: async () => {},
  bind: async () => ({ credentials: {} }),
  unbind: async () => {},
};

let state: TestDatabase;
let berth: Berth | undefined;
before(async () => {
  state = await createTestDatabase('berth_test_lease');
  const dir = mkdtempSync(join(tmpdir(), 'berth-lease-'));
  const catalog = join(dir, 'catalog.yaml');
  writeFileSync(
    catalog,
    stringify({
      services: [
        {
          id: SERVICE,
          name: 'stuck',
          description: 'A service whose provision ignores aborts.',
          bindable: false,
          plans: [{ id: PLAN, name: 'stuck', description: 'Short deadline.', maximum_polling_duration: DEADLINE_S, provisioner: { kind: 'stuck' } }],
        },
      ],
    }),
  );
  const config = loadConfig({
    PORT: '0',
    LOG_LEVEL: process.env.BERTH_TEST_LOG_LEVEL ?? 'silent',
    CATALOG_PATH: catalog,
    BROKER_USERNAME: TEST_CREDENTIALS.username,
    BROKER_PASSWORD: TEST_CREDENTIALS.password,
    BERTH_ENCRYPTION_KEYS: TEST_KEYS,
    BERTH_DATA_DIR: dir,
    BERTH_POLL_INTERVAL_MS: '50',
    BERTH_LEASE_SECONDS: String(LEASE_S),
    DATABASE_URL: state.url,
  });
  berth = await startBerth(config, { provisioners: new ProvisionerRegistry([stuckProvisioner]) });
});
after(async () => {
  letGo();
  await berth?.stop(2000).catch(() => {});
  await state?.drop();
});

test('a worker stuck past the deadline does not renew its lease beyond it; the operation then fails naming the deadline', async () => {
  const client = new OsbClient(berth!.url, TEST_CREDENTIALS);
  const id = 'lease-past-deadline';
  const p = await client.provision(id, { service_id: SERVICE, plan_id: PLAN, organization_guid: 'org', space_guid: 'space' });
  assert.equal(p.status, 202, p.text);

  const db = new pg.Client({ connectionString: state.url });
  await db.connect();
  let latestLease = 0;
  let deadline = 0;
  try {
    // Watch the lease until three lease periods after the deadline (the worker is still stuck all along).
    for (;;) {
      const { rows } = await db.query<{ lease: Date | null; deadline: Date }>(
        'SELECT lease_expires_at AS lease, deadline_at AS deadline FROM operations WHERE instance_id = $1',
        [id],
      );
      deadline = rows[0]!.deadline.getTime();
      if (rows[0]!.lease) latestLease = Math.max(latestLease, rows[0]!.lease.getTime());
      if (Date.now() > deadline + 3 * LEASE_S * 1000) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await db.end();
  }
  assert.ok(latestLease > 0, 'the operation was claimed');
  // Both stamped by the database (the lease is capped at deadline_at in SQL): compared exactly.
  assert.ok(latestLease <= deadline, `the lease ran to ${latestLease - deadline} ms past the deadline`);

  letGo();
  const last = await client.waitForInstance(id, p.body.operation, 30_000);
  assert.equal(last.body?.state, 'failed', last.text);
  assert.match(last.body.description, new RegExp(`maximum_polling_duration of ${DEADLINE_S} s`));
});
