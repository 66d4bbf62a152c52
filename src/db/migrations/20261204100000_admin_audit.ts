import type { Knex } from 'knex';

// Admin actions (src/admin/) are audited with who did them (the admin token's name) and why (the reason
// the admin API requires). Platform requests leave both empty: their who is the originating identity.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE audit_events ADD COLUMN actor text, ADD COLUMN reason text`);
  await knex.raw(`CREATE INDEX audit_events_actor_at ON audit_events (at) WHERE actor IS NOT NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX IF EXISTS audit_events_actor_at`);
  await knex.raw(`ALTER TABLE audit_events DROP COLUMN actor, DROP COLUMN reason`);
}
