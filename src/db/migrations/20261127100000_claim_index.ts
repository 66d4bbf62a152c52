import type { Knex } from 'knex';

// Workers look for the oldest unfinished operations; without this the claim scans and sorts the queue.
export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX operations_unfinished_by_age ON operations (created_at) WHERE finished_at IS NULL');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS operations_unfinished_by_age');
}
