import type { Knex } from 'knex';

// A failed create or delete is the answer to its identical repeats (platforms such as Korifi re-send
// the same request on every reconcile and poll once after each: a new try each time hid the failure).
// An update of the instance is how a platform moves on from a failed delete; it records that here,
// after which a delete runs again.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE operations ADD COLUMN superseded_at timestamptz`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE operations DROP COLUMN superseded_at`);
}
