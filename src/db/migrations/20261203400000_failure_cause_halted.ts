import type { Knex } from 'knex';

// A create halted by the platform's own delete records that on its own row. A synchronous
// provision or bind waiting for it is answered 422 ConcurrencyError from that, instead of
// looking for the delete that halted it: that delete may already have finished and had its
// stored request erased, which answered the waiting request 500.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE operations DROP CONSTRAINT operations_failure_cause_known`);
  await knex.raw(`ALTER TABLE operations ADD CONSTRAINT operations_failure_cause_known CHECK (failure_cause IN ('request', 'halted'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`UPDATE operations SET failure_cause = NULL WHERE failure_cause = 'halted'`);
  await knex.raw(`ALTER TABLE operations DROP CONSTRAINT operations_failure_cause_known`);
  await knex.raw(`ALTER TABLE operations ADD CONSTRAINT operations_failure_cause_known CHECK (failure_cause IN ('request'))`);
}
