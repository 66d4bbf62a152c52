import type { Knex } from 'knex';

// Why a failed operation failed, when it was the request's own data (e.g. a bind
// naming a namespace that does not exist): a synchronous request is then answered
// 400 rather than 500. NULL for every other failure and for older rows.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE operations ADD COLUMN failure_cause text CONSTRAINT operations_failure_cause_known CHECK (failure_cause IN ('request'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE operations DROP COLUMN IF EXISTS failure_cause');
}
