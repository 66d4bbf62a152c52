// knex records migration names; an explicit source keeps them free of file
// extensions so the same database works however Berth is started.
import type { Knex } from 'knex';
import * as initial from './20261127000000_initial.ts';
import * as claimIndex from './20261127100000_claim_index.ts';

type Migration = readonly [string, Knex.Migration];

const migrations: readonly Migration[] = [
  ['20261127000000_initial', initial],
  ['20261127100000_claim_index', claimIndex],
];

export const migrationSource: Knex.MigrationSource<Migration> = {
  getMigrations: async () => [...migrations],
  getMigrationName: ([name]) => name,
  getMigration: async ([, migration]) => migration,
};

export const latestMigration = migrations[migrations.length - 1]![0];
