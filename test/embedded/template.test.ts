// A first embedded start copies an initialised, migrated PGlite cluster (the
// template) instead of initialising one, which took 10 s or more; a data
// directory that holds a cluster is never replaced. (How long a start takes
// is measured in bench/embedded-start.bench.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrateLatest, migrationsApplied, openDatabase, type Database } from '../../src/db/database.ts';

// initdb draws a fresh system identifier for every cluster; copies share it.
const systemIdentifier = async (db: Database): Promise<string> =>
  String((await db.knex.raw('SELECT system_identifier FROM pg_control_system()')).rows[0].system_identifier);

test('a first embedded start copies a migrated template cluster, and a later start keeps its data', async () => {
  const dirs = [mkdtempSync(join(tmpdir(), 'berth-tpl-')), mkdtempSync(join(tmpdir(), 'berth-tpl-'))];
  try {
    const ids: string[] = [];
    for (const dataDir of dirs) {
      const db = await openDatabase({ dataDir, poolSize: 1 });
      try {
        assert.equal(await migrationsApplied(db.knex), true, 'migrated before any migration ran in this directory');
        assert.deepEqual(await migrateLatest(db.knex), [], 'nothing left to apply');
        ids.push(await systemIdentifier(db));
        await db.knex.raw('CREATE TABLE kept (v text)');
        await db.knex('kept').insert({ v: dataDir });
      } finally {
        await db.close();
      }
    }
    assert.equal(ids[0], ids[1], 'both data directories are copies of one cluster, not two initdb runs');

    const again = await openDatabase({ dataDir: dirs[0]!, poolSize: 1 });
    try {
      assert.deepEqual(await again.knex('kept').pluck('v'), [dirs[0]], 'the restart kept the data');
    } finally {
      await again.close();
    }
  } finally {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
});
