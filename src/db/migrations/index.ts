// knex records migration names; an explicit source keeps them free of file
// extensions so the same database works however Berth is started.
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Catalog } from '../../catalog/catalog.ts';
import type { SecretBox } from '../../secret-box.ts';
import * as initial from './20261127000000_initial.ts';
import * as claimIndex from './20261127100000_claim_index.ts';
import * as planSnapshot from './20261203100000_plan_snapshot.ts';
import * as resealBound from './20261203200000_reseal_bound.ts';
import * as failureCause from './20261203300000_failure_cause.ts';
import * as failureCauseHalted from './20261203400000_failure_cause_halted.ts';
import * as supersededFailure from './20261203500000_superseded_failure.ts';
import * as credentialExpiry from './20261203600000_credential_expiry.ts';
import * as adminAudit from './20261204100000_admin_audit.ts';
import * as staleCredentials from './20261204400000_stale_credentials.ts';

/** What the starting process knows beyond the database, for migrations that backfill or rewrite from it. */
export interface MigrationContext {
  /** The catalog of the process that migrates (absent when it has none, e.g. `berth migrate` without a readable catalog). */
  catalog?: Catalog;
  /** The encryption keys, for migrations that rewrite stored secrets. */
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
  ['20261203100000_plan_snapshot', planSnapshot],
  ['20261203200000_reseal_bound', resealBound],
  ['20261203300000_failure_cause', failureCause],
  ['20261203400000_failure_cause_halted', failureCauseHalted],
  ['20261203500000_superseded_failure', supersededFailure],
  ['20261203600000_credential_expiry', credentialExpiry],
  ['20261204100000_admin_audit', adminAudit],
  ['20261204400000_stale_credentials', staleCredentials],
];

/** The migrations, given what they may backfill from. */
export function migrationSourceWith(context: MigrationContext): Knex.MigrationSource<Migration> {
  return {
    getMigrations: async () => [...migrations],
    getMigrationName: ([name]) => name,
    getMigration: async ([, migration]) => ({ up: (knex: Knex) => migration.up(knex, context), down: (knex: Knex) => migration.down(knex) }),
  };
}

/** For listing and for migrations that need neither keys nor catalog. */
export const migrationSource: Knex.MigrationSource<Migration> = migrationSourceWith({});

export const latestMigration = migrations[migrations.length - 1]![0];
