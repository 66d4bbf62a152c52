import type { Knex } from 'knex';

// Bindings whose credentials expire (a plan's credential_lifetime): Berth's expiry sweep
// (src/operations/credential-expiry.ts) finds the ones due through this partial index (only live,
// expiring, not yet expired bindings are in it) and records here when it ended their credentials.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE bindings ADD COLUMN credentials_expired_at timestamptz`);
  await knex.raw(
    `CREATE INDEX bindings_expiring ON bindings (((metadata->>'expires_at')))
      WHERE state = 'ready' AND credentials_expired_at IS NULL AND metadata \\? 'expires_at'`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX IF EXISTS bindings_expiring`);
  await knex.raw(`ALTER TABLE bindings DROP COLUMN credentials_expired_at`);
}
