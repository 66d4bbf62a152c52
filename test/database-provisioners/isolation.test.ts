// Postgres tenant isolation (issue 16, point 9), with real logins as the
// binding roles Berth hands out. The shared server trusts 127.0.0.1, so these
// prove the CONNECT privilege and connection limits, which apply under trust.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import pg from 'pg';
import pino from 'pino';
import { loadConfig } from '../../src/config.ts';
import { startBerth } from '../../src/main.ts';
import { pgNames } from '../../src/provisioners/sql/names.ts';
import { TEST_CREDENTIALS, TEST_KEYS } from '../support/berth.ts';
import { createTestDatabase } from '../support/postgres.ts';
import { CATALOG, DbBerth, PG, outcome, pgAs, serverEnv, withPg, type Credentials } from './support.ts';

let h: DbBerth;
before(async () => {
  h = await DbBerth.start();
});
after(async () => {
  await h?.stop();
});

const rolconnlimit = (role: string) => withPg(async (c) => (await c.query<{ n: number }>('SELECT rolconnlimit AS n FROM pg_roles WHERE rolname = $1', [role])).rows[0]?.n);

test("a binding role's sessions are capped at the plan's connection limit in every database, also after a plan change", async () => {
  const id = await h.provisioned(PG.service, PG.small); // connection_limit: 5
  const { id: bindingId, credentials } = await h.bound(id, PG.service, PG.small);
  const role = pgNames.bindingRole(id, bindingId);
  assert.equal(await rolconnlimit(role), 5);

  // Five sessions in the instance database (its own limit is 5 too)...
  const held: pg.Client[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      const c = new pg.Client({ connectionString: credentials.uri });
      c.on('error', () => {});
      await c.connect();
      held.push(c);
    }
    // ...and none more anywhere else, e.g. in the server's `postgres` database.
    assert.equal(await outcome(() => pgAs(credentials, (c) => c.query('SELECT 1'), 'postgres')), '53300', 'too many connections for role');
  } finally {
    await Promise.all(held.map((c) => c.end().catch(() => {})));
  }

  const updated = await h.update(id, PG.service, { plan_id: PG.large }); // connection_limit: 12
  assert.equal(updated.last.body?.state, 'succeeded', updated.last.text);
  assert.equal(await rolconnlimit(role), 12, 'existing binding roles follow the new plan');
  const second = await h.bound(id, PG.service, PG.large);
  assert.equal(await rolconnlimit(pgNames.bindingRole(id, second.id)), 12);
  assert.equal((await h.deprovision(id, PG.service, PG.large)).body?.state, 'succeeded');
});

test("a binding role cannot connect to another tenant's database nor to Berth's state database", async () => {
  const mine = await h.provisioned(PG.service, PG.small);
  const theirs = await h.provisioned(PG.service, PG.small);
  const { credentials }: { credentials: Credentials } = await h.bound(mine, PG.service, PG.small);
  assert.equal(await outcome(() => pgAs(credentials, (c) => c.query('SELECT 1'))), 'ok', 'its own database');
  assert.equal(await outcome(() => pgAs(credentials, (c) => c.query('SELECT 1'), pgNames.database(theirs))), '42501', "another tenant's database");
  assert.equal(await outcome(() => pgAs(credentials, (c) => c.query('SELECT 1'), h.state.name)), '42501', "Berth's state database");
  for (const id of [mine, theirs]) assert.equal((await h.deprovision(id, PG.service, PG.small)).body?.state, 'succeeded');
});

test('at start Berth logs which databases every role may connect to, with what the operator must run', async () => {
  const state = await createTestDatabase('berth_test_inspect');
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  const config = loadConfig({
    PORT: '0',
    CATALOG_PATH: CATALOG,
    BROKER_USERNAME: TEST_CREDENTIALS.username,
    BROKER_PASSWORD: TEST_CREDENTIALS.password,
    BERTH_ENCRYPTION_KEYS: TEST_KEYS,
    DATABASE_URL: state.url,
    ...serverEnv(),
  });
  const berth = await startBerth(config, { log: pino({ level: 'info' }, sink) });
  try {
    const closed = lines.find((l) => l.msg === 'closed the state database to other roles (REVOKE CONNECT, TEMPORARY FROM PUBLIC)');
    assert.equal(closed?.database, state.name);
    let warning: Record<string, unknown> | undefined;
    for (let i = 0; i < 200 && !warning; i++) {
      warning = lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('binding roles can connect to'));
      if (!warning) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(warning, 'the warning was logged');
    assert.equal(warning.level, 40);
    assert.equal(warning.server, 'local');
    assert.ok((warning.databases as string[]).includes('postgres'), JSON.stringify(warning));
    assert.match(String(warning.msg), /REVOKE CONNECT ON DATABASE <name> FROM PUBLIC/);
    assert.ok(!(warning.databases as string[]).includes(state.name), 'its own state database is closed');
  } finally {
    await berth.stop(2000);
    await state.drop();
  }
});
