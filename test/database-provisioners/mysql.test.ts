// The `mysql` provisioner against the machine's MariaDB, through Berth's HTTP API.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import mysql from 'mysql2/promise';
import { mysqlNames } from '../../src/provisioners/sql/names.ts';
import { nativePasswordHash } from '../../src/provisioners/mysql/mysql.ts';
import { DbBerth, MY, mysqlAs, mysqlDatabaseExists, mysqlUserExists, outcome, withMysql, type Credentials } from './support.ts';

let h: DbBerth;
before(async () => {
  h = await DbBerth.start();
});
after(async () => {
  await h?.stop();
});

const CREDENTIAL_KEYS = ['database', 'host', 'jdbc-url', 'password', 'port', 'type', 'uri', 'username'];

test('provision, bind twice, use, isolate, unbind one, deprovision: nothing is left', async () => {
  const a = await h.provisioned(MY.service, MY.small);
  const other = await h.provisioned(MY.service, MY.small);
  const b1 = await h.bound(a, MY.service, MY.small);
  const b2 = await h.bound(a, MY.service, MY.small);
  const o1 = await h.bound(other, MY.service, MY.small);
  const database = mysqlNames.database(a);

  for (const { credentials: c } of [b1, b2]) {
    assert.deepEqual(Object.keys(c).sort(), CREDENTIAL_KEYS);
    assert.equal(c.type, 'mysql');
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.port, '3306');
    assert.equal(c.database, database);
    assert.ok(c.username!.length <= 32);
    assert.equal(c.uri, `mysql://${c.username}:${c.password}@127.0.0.1:3306/${database}`);
    assert.equal(c['jdbc-url'], `jdbc:mysql://127.0.0.1:3306/${database}?user=${c.username}&password=${c.password}`);
  }
  assert.notEqual(b1.credentials.username, b2.credentials.username);

  await mysqlAs(b1.credentials, async (c) => {
    await c.query('CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT NOT NULL)');
    await c.query(`INSERT INTO notes (body) VALUES ('from b1')`);
  });
  await mysqlAs(b2.credentials, async (c) => {
    await c.query(`INSERT INTO notes (body) VALUES ('from b2')`);
    await c.query('CREATE TABLE tags (name VARCHAR(20))');
    const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT body FROM notes ORDER BY id');
    assert.deepEqual(rows.map((r) => r.body), ['from b1', 'from b2']);
  });
  await mysqlAs(b1.credentials, async (c) => {
    await c.query('SELECT * FROM tags');
    assert.equal(await outcome(() => c.query('CREATE DATABASE intruder')), 'ER_DBACCESS_DENIED_ERROR');
    assert.equal(await outcome(() => c.query('SELECT * FROM mysql.user')), 'ER_TABLEACCESS_DENIED_ERROR');
  });

  // The password is really checked, and no binding reaches another instance's database.
  assert.equal(await outcome(() => mysqlAs({ ...b1.credentials, uri: b1.credentials.uri!.replace(b1.credentials.password!, 'wrong') }, (c) => c.query('SELECT 1'))), 'ER_ACCESS_DENIED_ERROR', 'a wrong password is refused');
  assert.equal(await outcome(() => mysqlAs(b1.credentials, (c) => c.query('SELECT 1'), mysqlNames.database(other))), 'ER_DBACCESS_DENIED_ERROR');
  assert.equal(await outcome(() => mysqlAs(o1.credentials, (c) => c.query('SELECT 1'), database)), 'ER_DBACCESS_DENIED_ERROR');

  // Unbind b2 while it has a session: the session ends and the credentials are refused; b1 still works.
  const open = await mysql.createConnection({ uri: b2.credentials.uri });
  open.on('error', () => {});
  assert.equal((await h.unbind(a, b2.id, MY.service, MY.small)).status, 200);
  assert.notEqual(await outcome(() => open.query('SELECT 1')), 'ok', 'the session of an unbound user is ended');
  open.destroy();
  // MariaDB answers a dropped user with 1045 or, depending on the auth exchange, 1698; both are refusals.
  assert.match(await outcome(() => mysqlAs(b2.credentials, (c) => c.query('SELECT 1'))), /^ER_ACCESS_DENIED_(NO_PASSWORD_)?ERROR$/);
  assert.equal(await mysqlUserExists(b2.credentials.username!), false);
  await mysqlAs(b1.credentials, async (c) => {
    const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT count(*) AS n FROM notes');
    assert.equal(Number(rows[0]!.n), 2);
  });

  // Deprovision with b1 bound and connected.
  const held = await mysql.createConnection({ uri: b1.credentials.uri });
  held.on('error', () => {});
  const gone = await h.deprovision(a, MY.service, MY.small);
  assert.equal(gone.body?.state, 'succeeded', gone.text);
  held.destroy();
  assert.equal(await mysqlDatabaseExists(database), false);
  assert.equal(await mysqlUserExists(b1.credentials.username!), false);
  assert.notEqual(await outcome(() => mysqlAs(b1.credentials, (c) => c.query('SELECT 1'))), 'ok');

  await mysqlAs(o1.credentials, (c) => c.query('CREATE TABLE still_here (x INT)'));
  assert.equal((await h.deprovision(other, MY.service, MY.small)).body?.state, 'succeeded');
  assert.equal(await mysqlUserExists(o1.credentials.username!), false);
  assert.equal(await mysqlDatabaseExists(mysqlNames.database(other)), false);
});

test('what trace shows (the resources endpoint): the database, each binding\'s user logging in, a user dropped outside Berth as missing', async () => {
  const a = await h.provisioned(MY.service, MY.small);
  const b = await h.bound(a, MY.service, MY.small);
  const look = async () => {
    const r = await h.client.request('GET', `/berth/v1/service_instances/${a}/resources`);
    assert.equal(r.status, 200, r.text);
    return r.body;
  };
  const before = await look();
  assert.equal(before.kind, 'mysql');
  assert.deepEqual(before.binding_ids, [b.id]);
  const [db] = before.resources;
  assert.deepEqual([db.kind, db.name, db.state], ['Database', mysqlNames.database(a), 'ready']);
  assert.match(db.message, /^on server "local" \(127\.0\.0\.1:3306\), character set utf8mb4/);
  const [user] = db.children;
  assert.equal(user.binding_id, b.id);
  assert.equal(user.name, `'${b.credentials.username}'@'%'`);
  assert.equal(user.state, 'ready', user.message);
  assert.match(user.message, /logged in with the binding's credentials just now/);
  assert.ok(!JSON.stringify(before).includes(b.credentials.password!), 'never a password');

  await withMysql((c) => c.query(`DROP USER '${b.credentials.username}'@'%'`));
  const after = await look();
  assert.equal(after.resources[0].children[0].state, 'missing');
  assert.match(after.resources[0].children[0].message, /does not exist on server "local"/);
  assert.equal((await h.deprovision(a, MY.service, MY.small)).body?.state, 'succeeded');
  assert.equal((await h.client.request('GET', `/berth/v1/service_instances/${a}/resources`)).status, 404);
});

test('MariaDB is sent the password hash, never the password, and it matches what the server computes', async () => {
  const id = await h.provisioned(MY.service, MY.small);
  const { credentials } = await h.bound(id, MY.service, MY.small);
  const [stored, computed] = await withMysql(async (c) => {
    const [rows] = await c.execute<mysql.RowDataPacket[]>(
      'SELECT authentication_string AS s, PASSWORD(?) AS p FROM mysql.user WHERE User = ?',
      [credentials.password!, credentials.username!],
    );
    return [rows[0]!.s as string, rows[0]!.p as string];
  });
  assert.equal(stored, nativePasswordHash(credentials.password!));
  assert.equal(stored, computed);
  assert.equal((await h.deprovision(id, MY.service, MY.small)).body?.state, 'succeeded');
});

async function connectionsAllowed(credentials: Credentials, max: number): Promise<number> {
  const conns: mysql.Connection[] = [];
  try {
    for (let i = 0; i < max; i++) {
      const c = await mysql.createConnection({ uri: credentials.uri }).catch(() => undefined);
      if (!c) break;
      c.on('error', () => {});
      conns.push(c);
    }
    return conns.length;
  } finally {
    for (const c of conns) c.destroy();
  }
}

test('plan settings apply at provision and converge on update (character set, per-user connection limit)', async () => {
  const id = await h.provisioned(MY.service, MY.small);
  const database = mysqlNames.database(id);
  const { credentials } = await h.bound(id, MY.service, MY.small);
  const charset = () =>
    withMysql(async (c) => {
      const [rows] = await c.execute<mysql.RowDataPacket[]>('SELECT DEFAULT_CHARACTER_SET_NAME AS cs FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database]);
      return rows[0]!.cs as string;
    });
  assert.equal(await charset(), 'utf8mb4');
  assert.equal(await connectionsAllowed(credentials, 6), 3);

  const up = await h.update(id, MY.service, { plan_id: MY.large });
  assert.equal(up.last.body?.state, 'succeeded', up.last.text);
  assert.equal(await charset(), 'latin1');
  await new Promise((r) => setTimeout(r, 200)); // let the server notice the closed connections
  assert.equal(await connectionsAllowed(credentials, 10), 7, 'the existing binding got the new plan limit');

  const r = await h.provision(MY.service, MY.unconfigured);
  assert.equal(r.last.body?.state, 'failed');
  assert.match(r.last.body.description, /BERTH_MYSQL_NOWHERE_URL/);
  assert.equal((await h.deprovision(r.id, MY.service, MY.unconfigured)).body?.state, 'succeeded');

  assert.equal((await h.deprovision(id, MY.service, MY.large)).body?.state, 'succeeded');
  assert.equal(await mysqlDatabaseExists(database), false);
});
