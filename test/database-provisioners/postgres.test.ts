// The `postgres` provisioner against the machine's PostgreSQL, through Berth's HTTP API.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { pgNames } from '../../src/provisioners/sql/names.ts';
import { scramSha256Verifier } from '../../src/provisioners/postgres/scram.ts';
import { DbBerth, PG, outcome, pgAs, pgDatabaseExists, pgRoleExists, withPg, type Credentials } from './support.ts';

let h: DbBerth;
before(async () => {
  h = await DbBerth.start();
});
after(async () => {
  await h?.stop();
});

const CREDENTIAL_KEYS = ['database', 'host', 'jdbc-url', 'password', 'port', 'type', 'uri', 'username'];

test('provision, bind twice, use, isolate, unbind one, deprovision: nothing is left', async () => {
  const a = await h.provisioned(PG.service, PG.small);
  const other = await h.provisioned(PG.service, PG.small);
  const b1 = await h.bound(a, PG.service, PG.small);
  const b2 = await h.bound(a, PG.service, PG.small);
  const o1 = await h.bound(other, PG.service, PG.small);
  const database = pgNames.database(a);

  for (const { credentials: c } of [b1, b2]) {
    assert.deepEqual(Object.keys(c).sort(), CREDENTIAL_KEYS);
    assert.equal(c.type, 'postgresql');
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.port, '5432');
    assert.equal(c.database, database);
    assert.equal(c.uri, `postgresql://${c.username}:${c.password}@127.0.0.1:5432/${database}`);
    assert.equal(c['jdbc-url'], `jdbc:postgresql://127.0.0.1:5432/${database}?user=${c.username}&password=${c.password}`);
    assert.ok(c.password!.length >= 32);
  }
  assert.notEqual(b1.credentials.username, b2.credentials.username);
  assert.notEqual(b1.credentials.password, b2.credentials.password);

  // Each binding can create and read tables; what one creates the other can use.
  await pgAs(b1.credentials, async (c) => {
    await c.query('CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)');
    await c.query(`INSERT INTO notes (body) VALUES ('from b1')`);
    assert.deepEqual((await c.query('SELECT body FROM notes')).rows, [{ body: 'from b1' }]);
  });
  await pgAs(b2.credentials, async (c) => {
    await c.query(`INSERT INTO notes (body) VALUES ('from b2')`);
    await c.query('CREATE TABLE tags (name text)');
    await c.query(`INSERT INTO tags VALUES ('t')`);
    assert.deepEqual((await c.query('SELECT body FROM notes ORDER BY id')).rows.map((r) => r.body), ['from b1', 'from b2']);
    // Outside the owner role (RESET ROLE): unbind hands such objects to the instance.
    await c.query('RESET ROLE');
    await c.query('CREATE TABLE private_to_b2 (x int)');
  });
  await pgAs(b1.credentials, async (c) => {
    assert.deepEqual((await c.query('SELECT name FROM tags')).rows, [{ name: 't' }]);
    assert.equal((await c.query('SELECT tableowner FROM pg_tables WHERE tablename = $1', ['notes'])).rows[0].tableowner, pgNames.ownerRole(a));
    // Nothing beyond the database.
    assert.equal(await outcome(() => c.query('CREATE ROLE intruder')), '42501');
    assert.equal(await outcome(() => c.query('CREATE DATABASE intruder')), '42501');
    assert.equal(await outcome(() => c.query(`ALTER DATABASE ${database} CONNECTION LIMIT 1000`)), '42501');
  });

  // No binding can connect to another instance's database.
  assert.equal(await outcome(() => pgAs(b1.credentials, (c) => c.query('SELECT 1'), pgNames.database(other))), '42501');
  assert.equal(await outcome(() => pgAs(o1.credentials, (c) => c.query('SELECT 1'), database)), '42501');
  // Nor can someone without a binding (PUBLIC's CONNECT is revoked).
  await withPg(async (c) => {
    const { rows } = await c.query(`SELECT has_database_privilege('public', $1, 'CONNECT') AS ok`, [database]);
    assert.equal(rows[0].ok, false);
  });

  // Unbind b2 while it has a session open: the session ends, the role goes, its table stays with the instance.
  const open = new pg.Client({ connectionString: b2.credentials.uri });
  open.on('error', () => {});
  await open.connect();
  const unbind = await h.unbind(a, b2.id, PG.service, PG.small);
  assert.equal(unbind.status, 200, unbind.text);
  assert.notEqual(await outcome(() => open.query('SELECT 1')), 'ok', 'the session of an unbound role is ended');
  await open.end().catch(() => {});
  assert.equal(await outcome(() => pgAs(b2.credentials, (c) => c.query('SELECT 1'))), '28000', 'unbound credentials are refused');
  assert.equal(await pgRoleExists(b2.credentials.username!), false);
  await pgAs(b1.credentials, async (c) => {
    assert.equal((await c.query('SELECT count(*)::int AS n FROM notes')).rows[0].n, 2);
    await c.query('INSERT INTO private_to_b2 VALUES (1)');
    assert.equal((await c.query('SELECT tableowner FROM pg_tables WHERE tablename = $1', ['private_to_b2'])).rows[0].tableowner, pgNames.ownerRole(a));
  });

  // Deprovision with b1 still bound and connected: the engine unbinds it, the database and every role go.
  const held = new pg.Client({ connectionString: b1.credentials.uri });
  held.on('error', () => {});
  await held.connect();
  const gone = await h.deprovision(a, PG.service, PG.small);
  assert.equal(gone.body?.state, 'succeeded', gone.text);
  await held.end().catch(() => {});
  assert.equal(await pgDatabaseExists(database), false);
  for (const role of [pgNames.ownerRole(a), b1.credentials.username!, b2.credentials.username!]) assert.equal(await pgRoleExists(role), false, role);
  assert.notEqual(await outcome(() => pgAs(b1.credentials, (c) => c.query('SELECT 1'))), 'ok');

  // The other instance is untouched.
  await pgAs(o1.credentials, (c) => c.query('CREATE TABLE still_here (x int)'));
  assert.equal((await h.deprovision(other, PG.service, PG.small)).body?.state, 'succeeded');
  assert.equal(await pgRoleExists(o1.credentials.username!), false);
  assert.equal(await pgDatabaseExists(pgNames.database(other)), false);
});

test('the stored password is a SCRAM verifier of the handed-out password, never the password', async () => {
  const id = await h.provisioned(PG.service, PG.small);
  const { credentials } = await h.bound(id, PG.service, PG.small);
  const stored = await withPg(async (c) => (await c.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [credentials.username])).rows[0].rolpassword as string);
  const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored);
  assert.ok(m, 'SCRAM-SHA-256 verifier');
  assert.equal(stored, await scramSha256Verifier(credentials.password!, Buffer.from(m[2]!, 'base64'), Number(m[1])));
  assert.ok(!stored.includes(credentials.password!));

  // And our verifier is the one PostgreSQL itself computes for a password and salt.
  await withPg(async (c) => {
    const role = `berth_test_scram_${process.pid}`;
    await c.query('SET password_encryption = \'scram-sha-256\'');
    await c.query(`CREATE ROLE ${role} PASSWORD 'Zz9-_correct horse'`);
    try {
      const pgs = (await c.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role])).rows[0].rolpassword as string;
      const [, iter, salt] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(pgs)!;
      assert.equal(await scramSha256Verifier('Zz9-_correct horse', Buffer.from(salt!, 'base64'), Number(iter)), pgs);
    } finally {
      await c.query(`DROP ROLE ${role}`);
    }
  });
  assert.equal((await h.deprovision(id, PG.service, PG.small)).body?.state, 'succeeded');
});

async function settings(database: string): Promise<{ limit: number; extensions: string[] }> {
  const limit = await withPg(async (c) => (await c.query('SELECT datconnlimit FROM pg_database WHERE datname = $1', [database])).rows[0].datconnlimit as number);
  const u = new URL((await import('./support.ts')).PG_ADMIN_URL);
  u.pathname = `/${database}`;
  const extensions = await withPg(
    async (c) => (await c.query(`SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1`)).rows.map((r) => r.extname as string),
    u.toString(),
  );
  return { limit, extensions };
}

test('plan settings and extensions apply at provision and converge on update', async () => {
  const id = await h.provisioned(PG.service, PG.small, { extensions: ['citext', 'uuid-ossp'] });
  const database = pgNames.database(id);
  assert.deepEqual(await settings(database), { limit: 5, extensions: ['citext', 'uuid-ossp'] });
  const { credentials } = await h.bound(id, PG.service, PG.small);
  await pgAs(credentials, async (c) => {
    await c.query('CREATE TABLE people (email citext PRIMARY KEY, id uuid DEFAULT uuid_generate_v4())');
    await c.query(`INSERT INTO people (email) VALUES ('A@example.com')`);
    assert.equal((await c.query(`SELECT count(*)::int AS n FROM people WHERE email = 'a@EXAMPLE.com'`)).rows[0].n, 1);
  });

  // Plan change (connection limit 5 -> 12) and parameter change (uuid-ossp out, pgcrypto in; citext stays).
  const up = await h.update(id, PG.service, { plan_id: PG.large, parameters: { extensions: ['citext', 'pgcrypto'] } });
  assert.equal(up.first.status, 202, up.first.text);
  assert.equal(up.last.body?.state, 'failed', 'uuid-ossp is in use by a column default');
  assert.match(up.last.body.description, /uuid-ossp.*cannot be removed/);
  assert.equal(up.last.body.instance_usable, true);
  await pgAs(credentials, (c) => c.query('ALTER TABLE people ALTER COLUMN id DROP DEFAULT'));
  const again = await h.update(id, PG.service, { plan_id: PG.large, parameters: { extensions: ['citext', 'pgcrypto'] } });
  assert.equal(again.last.body?.state, 'succeeded', again.last.text);
  assert.deepEqual(await settings(database), { limit: 12, extensions: ['citext', 'pgcrypto'] });
  await pgAs(credentials, async (c) => {
    assert.equal((await c.query(`SELECT length(digest('x', 'sha256'))::int AS n`)).rows[0].n, 32);
    assert.equal((await c.query('SELECT count(*)::int AS n FROM people')).rows[0].n, 1, 'data survives the update');
  });

  // Back to the small plan.
  const down = await h.update(id, PG.service, { plan_id: PG.small });
  assert.equal(down.last.body?.state, 'succeeded', down.last.text);
  assert.equal((await settings(database)).limit, 5);

  // Moving to a plan on another server is refused before anything is queued.
  const move = await h.update(id, PG.service, { plan_id: PG.elsewhere });
  assert.equal(move.first.status, 422, move.first.text);
  assert.match(move.first.body.description, /another server/);

  // An extension the plan does not offer is refused by the plan's schema.
  const bad = await h.update(id, PG.service, { parameters: { extensions: ['plpython3u'] } });
  assert.equal(bad.first.status, 400, bad.first.text);
  assert.equal((await h.deprovision(id, PG.service, PG.small)).body?.state, 'succeeded');
  assert.equal(await pgDatabaseExists(database), false);
});

test('a plan whose server is not configured fails fast, naming the variable, and deprovisions cleanly', async () => {
  const r = await h.provision(PG.service, PG.unconfigured);
  assert.equal(r.first.status, 202);
  assert.equal(r.last.body?.state, 'failed');
  assert.match(r.last.body.description, /BERTH_POSTGRES_NOWHERE_URL/);
  assert.equal((await h.deprovision(r.id, PG.service, PG.unconfigured)).body?.state, 'succeeded');
});

test('binding rotation: the successor gets its own working login; the predecessor keeps working until unbound', async () => {
  const id = await h.provisioned(PG.service, PG.small);
  const first = await h.bound(id, PG.service, PG.small);
  const nextId = h.tracker.binding(id);
  const next = await h.bind(id, PG.service, PG.small, nextId, { predecessor_binding_id: first.id });
  assert.equal(next.reply.status, 201, next.reply.text);
  const creds = next.reply.body.credentials as Credentials;
  assert.notEqual(creds.username, first.credentials.username);
  await pgAs(creds, (c) => c.query('SELECT 1'));
  await pgAs(first.credentials, (c) => c.query('SELECT 1'));
  assert.equal((await h.unbind(id, first.id, PG.service, PG.small)).status, 200);
  await pgAs(creds, (c) => c.query('SELECT 1'));
  assert.equal((await h.deprovision(id, PG.service, PG.small)).body?.state, 'succeeded');
});
