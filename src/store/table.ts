// What every table store shares: the connection it runs on (the pool, or one
// transaction: see unit-of-work.ts) and the SecretBox that seals its secret
// columns. Every ciphertext is sealed for its cell (see secret-box.ts).
import type { Knex } from 'knex';
import type { SealedField, SecretBox } from '../secret-box.ts';

/** The pool, or a transaction. */
export type Db = Knex | Knex.Transaction;

/** SQL NULL read as undefined. */
export const opt = <T>(v: T | null): T | undefined => (v === null ? undefined : v);

export abstract class Table {
  protected readonly db: Db;
  protected readonly box: SecretBox;
  constructor(db: Db, box: SecretBox) {
    this.db = db;
    this.box = box;
  }

  /** Seals `value` for its cell; undefined is stored as NULL. */
  protected seal(value: unknown, field: SealedField): string | null {
    return value === undefined ? null : this.box.seal(value, field);
  }
}
