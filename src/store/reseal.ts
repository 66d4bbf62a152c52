// Re-sealing stored secrets: each ciphertext is opened and sealed again for
// its own cell under the key that seals now. Used by the migration that binds
// old ciphertexts to their rows and by `berth keys rotate`, after which keys
// other than the first in BERTH_ENCRYPTION_KEYS can be removed.
import type { Knex } from 'knex';
import { UndecryptableError, type SecretBox } from '../secret-box.ts';

export interface SecretTable {
  table: string;
  /** Primary key columns, in the order the ciphertexts' row binding uses. */
  key: readonly string[];
  columns: readonly string[];
}

/** Every column Berth keeps sealed. */
export const SECRET_TABLES: readonly SecretTable[] = [
  { table: 'instances', key: ['id'], columns: ['parameters_enc', 'provisioner_state_enc'] },
  { table: 'bindings', key: ['instance_id', 'id'], columns: ['parameters_enc', 'credentials_enc', 'provisioner_state_enc'] },
  { table: 'operations', key: ['id'], columns: ['request_enc'] },
];

export interface ResealCount {
  table: string;
  /** Rows with at least one ciphertext written again. */
  resealed: number;
  /** Rows that could not be opened (their key is missing, or they were altered); left as they are. */
  unreadable: number;
  /** Key ids the unreadable rows name. */
  missingKeyIds: string[];
  /** Rows written by someone else between our read and our write; a later pass sees them again. */
  changedMeanwhile: number;
}

const BATCH = 500;

/**
 * Re-seals, under the active key, every ciphertext that `which` selects:
 * `legacy` only those in the old format (not bound to their row), `stale`
 * every one not already sealed in the current format under the active key.
 */
export async function resealRows(
  knex: Knex,
  box: SecretBox,
  which: 'legacy' | 'stale',
  tables: readonly SecretTable[] = SECRET_TABLES,
): Promise<ResealCount[]> {
  const current = `v2:${box.activeKeyId}:`;
  const counts: ResealCount[] = [];
  for (const { table, key, columns } of tables) {
    const count: ResealCount = { table, resealed: 0, unreadable: 0, missingKeyIds: [], changedMeanwhile: 0 };
    const missing = new Set<string>();
    const needsWork = (q: Knex.QueryBuilder) =>
      q.where((w) => {
        for (const c of columns) {
          if (which === 'legacy') w.orWhereRaw(`left(??, 3) = 'v1:'`, [c]);
          else w.orWhere((x) => x.whereNotNull(c).whereRaw(`left(??, ?) <> ?`, [c, current.length, current]));
        }
      });
    let after: string[] | undefined;
    for (;;) {
      const q = knex(table).select([...key, ...columns]).orderBy(key.map((column) => ({ column }))).limit(BATCH);
      needsWork(q);
      if (after) q.whereRaw(`(${key.map(() => '??').join(', ')}) > (${key.map(() => '?').join(', ')})`, [...key, ...after]);
      const rows = (await q) as Array<Record<string, string | null>>;
      if (rows.length === 0) break;
      after = key.map((k) => rows.at(-1)![k]!);
      await knex.transaction(async (trx) => {
        for (const row of rows) {
          const rowKey = key.map((k) => row[k]!);
          const set: Record<string, string> = {};
          const unchanged: Record<string, string> = {};
          try {
            for (const column of columns) {
              const sealed = row[column];
              if (sealed == null || box.isCurrent(sealed)) continue;
              if (which === 'legacy' && !sealed.startsWith('v1:')) continue;
              const field = { table, row: rowKey, column };
              set[column] = box.seal(box.openForReseal(sealed, field), field);
              unchanged[column] = sealed;
            }
          } catch (err) {
            if (!(err instanceof UndecryptableError)) throw err;
            count.unreadable++;
            if (err.reason === 'unknown-key' && err.keyId) missing.add(err.keyId);
            continue;
          }
          if (Object.keys(set).length === 0) continue;
          // Written only if nobody changed the row since we read it (a live Berth may be writing).
          const n = await trx(table)
            .where(Object.fromEntries(key.map((k, i) => [k, rowKey[i]])))
            .where(unchanged)
            .update(set);
          if (n === 1) count.resealed++;
          else count.changedMeanwhile++;
        }
      });
    }
    count.missingKeyIds = [...missing].sort();
    counts.push(count);
  }
  return counts;
}
