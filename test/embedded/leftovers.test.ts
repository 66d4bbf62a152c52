// A test run that leaves berth* databases, roles or users behind on the shared
// servers fails at the end and names them (test/support/global-setup.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { REPO } from '../support/berth.ts';
import { ADMIN_URL } from '../support/postgres.ts';

test('a run that leaves a database, a role and a MariaDB user behind fails and lists them', async () => {
  const name = `berth_leak_${randomBytes(5).toString('hex')}`;
  // A run of its own, not a subtest of this one.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  try {
    const run = spawnSync(
      process.execPath,
      ['--test', '--test-global-setup=test/support/global-setup.ts', join('test/fixtures/leftovers/leaks.fixture.ts')],
      { cwd: REPO, env: { ...env, BERTH_KUBE: '0', BERTH_TEST_LEFTOVER_GRACE_MS: '0', LEAK_NAME: name }, encoding: 'utf8' },
    );
    const output = run.stdout + run.stderr;
    assert.match(output, /pass 1/, `the leaking test itself passes:\n${output}`);
    assert.notEqual(run.status, 0, `the run must fail:\n${output}`);
    assert.match(output, new RegExp(`Postgres databases: (.*, )?${name}\\b`), output);
    assert.match(output, new RegExp(`Postgres roles: (.*, )?${name}\\b`), output);
    assert.match(output, new RegExp(`MariaDB users: (.*, )?${name}@localhost\\b`), output);
  } finally {
    const c = new pg.Client({ connectionString: ADMIN_URL });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name}`);
    await c.query(`DROP ROLE IF EXISTS ${name}`);
    await c.end();
    const m = await mysql.createConnection({ uri: process.env.BERTH_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/' });
    await m.query(`DROP USER IF EXISTS '${name}'@'localhost'`);
    await m.end();
  }
});
