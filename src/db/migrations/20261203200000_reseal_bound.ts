// Binds every stored ciphertext to its cell (table, row key, column): older
// rows were sealed with only the key id as additional data, so a value copied
// into another row opened there. Also erases the secrets that deleted
// instances and bindings kept, and lets those columns be NULL from now on.
// Needs the encryption keys (passed in by migrateLatest); ciphertexts whose
// key is no longer configured are left as they are and reported.
import type { Knex } from 'knex';
import type { MigrationContext } from './index.ts';
import { resealRows, type SecretTable } from '../../store/reseal.ts';

// The sealed columns as of this migration.
const TABLES: readonly SecretTable[] = [
  { table: 'instances', key: ['id'], columns: ['parameters_enc', 'provisioner_state_enc'] },
  { table: 'bindings', key: ['instance_id', 'id'], columns: ['parameters_enc', 'credentials_enc', 'provisioner_state_enc'] },
  { table: 'operations', key: ['id'], columns: ['request_enc'] },
];

export async function up(knex: Knex, context: MigrationContext = {}): Promise<void> {
  await knex.raw('ALTER TABLE instances ALTER COLUMN parameters_enc DROP NOT NULL');
  await knex.raw('ALTER TABLE bindings ALTER COLUMN parameters_enc DROP NOT NULL');
  await knex.raw('ALTER TABLE operations ALTER COLUMN request_enc DROP NOT NULL');

  const erasedBinding = { parameters_enc: null, credentials_enc: null, provisioner_state_enc: null };
  await knex('bindings').where({ state: 'deleted' }).update(erasedBinding);
  await knex('bindings').whereIn('instance_id', knex('instances').select('id').where({ state: 'deleted' })).update(erasedBinding);
  await knex('instances').where({ state: 'deleted' }).update({ parameters_enc: null, provisioner_state_enc: null });
  await knex('operations')
    .whereNotNull('finished_at')
    .whereIn('instance_id', knex('instances').select('id').where({ state: 'deleted' }))
    .update({ request_enc: null });

  const { box, log } = context;
  if (!box) {
    const legacy = await knex.raw(
      `SELECT 1 FROM instances WHERE left(parameters_enc, 3) = 'v1:' OR left(provisioner_state_enc, 3) = 'v1:'
       UNION ALL SELECT 1 FROM bindings WHERE left(parameters_enc, 3) = 'v1:' OR left(credentials_enc, 3) = 'v1:' OR left(provisioner_state_enc, 3) = 'v1:'
       UNION ALL SELECT 1 FROM operations WHERE left(request_enc, 3) = 'v1:' LIMIT 1`,
    );
    if (legacy.rows.length > 0) throw new Error('migration 20261203200000_reseal_bound re-seals stored secrets and needs the encryption keys (BERTH_ENCRYPTION_KEYS)');
    return;
  }
  const counts = await resealRows(knex, box, 'legacy', TABLES);
  const resealed = Object.fromEntries(counts.map((c) => [c.table, c.resealed]));
  log?.info({ resealed, key: box.activeKeyId }, 'stored secrets re-sealed, bound to their rows');
  for (const c of counts.filter((x) => x.unreadable > 0)) {
    log?.warn(
      { table: c.table, rows: c.unreadable, missingKeyIds: c.missingKeyIds },
      'rows sealed under keys that are not configured were left as they are; requests and operations that need them will fail naming the key',
    );
  }
}

export async function down(): Promise<void> {
  throw new Error('20261203200000_reseal_bound cannot be undone: older Berth versions cannot open row-bound ciphertexts');
}
