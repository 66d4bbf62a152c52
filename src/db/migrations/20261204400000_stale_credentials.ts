import type { Knex } from 'knex';

// Bindings whose credentials an instance update made out of date (a new host, port, database or URI, e.g. a
// user-provided instance's new credentials parameters): set by the update that changed them, shown in GET binding
// metadata (berth_credentials_stale) and on the Kubernetes front (CredentialsCurrent=False). A new binding (a
// rotation) starts without them; the stale one keeps them until it is unbound.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE bindings ADD COLUMN credentials_stale_since timestamptz, ADD COLUMN credentials_stale_reason text`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE bindings DROP COLUMN credentials_stale_since, DROP COLUMN credentials_stale_reason`);
}
