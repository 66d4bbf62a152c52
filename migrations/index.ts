// knex records migration names; an explicit source keeps them free of file
// extensions so the same database works however Berth is started.
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { SecretBox } from '../src/secret-box.ts';
import * as initial from './20261127000000_initial.ts';
import * as claimIndex from './20261127100000_claim_index.ts';
import * as resealBound from './20261203200000_reseal_bound.ts';

/** What migrations that rewrite stored secrets need besides the database. */
export interface MigrationContext {
  box?: SecretBox;
  log?: Logger;
}

interface MigrationModule {
  up(knex: Knex, context: MigrationContext): Promise<void>;
  down(knex: Knex): Promise<void>;
}

type Migration = readonly [string, MigrationModule];

const migrations: readonly Migration[] = [
  ['20261127000000_initial', initial],
  ['20261127100000_claim_index', claimIndex],
  ['20261203200000_reseal_bound', resealBound],
];

export function migrationSourceWith(context: MigrationContext): Knex.MigrationSource<Migration> {
  return {
    getMigrations: async () => [...migrations],
    getMigrationName: ([name]) => name,
    getMigration: async ([, migration]) => ({ up: (knex) => migration.up(knex, context), down: (knex) => migration.down(knex) }),
  };
}

/** For listing and for migrations that need no keys. */
export const migrationSource = migrationSourceWith({});

export const latestMigration = migrations[migrations.length - 1]![0];
