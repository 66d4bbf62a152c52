// AES-256-GCM envelope for everything secret we keep in the database. Each
// ciphertext names the key that sealed it, so keys can rotate: the first key
// in the list seals, every key in the list opens.
//
// Format `v2:<key id>:<iv>:<tag>:<body>`. The additional authenticated data
// binds a ciphertext to the cell it was written for (table, row key, column),
// so a value copied into another row or column fails to open instead of
// handing out someone else's secret. The older `v1` format authenticated only
// the key id; it is opened solely by the code that re-seals it (the
// 20261203200000_reseal_bound migration and `berth keys rotate`).
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/** The database cell a ciphertext belongs to. `row` is the row's primary key, column by column. */
export interface SealedField {
  table: string;
  row: readonly string[];
  column: string;
}

export type UndecryptableReason = 'unknown-key' | 'not-authentic' | 'legacy-format' | 'malformed';

/** A stored secret that cannot be opened; the message says which key or what to do, never the value. */
export class UndecryptableError extends Error {
  readonly reason: UndecryptableReason;
  readonly keyId: string | undefined;
  readonly field: SealedField;
  constructor(reason: UndecryptableReason, keyId: string | undefined, field: SealedField) {
    super(describeProblem(reason, keyId, field));
    this.name = 'UndecryptableError';
    this.reason = reason;
    this.keyId = keyId;
    this.field = field;
  }
}

const NOUNS: Record<string, string> = { instances: 'service instance', bindings: 'service binding', operations: 'operation' };

function describeField(field: SealedField): string {
  const what = field.column.replace(/_enc$/, '').replaceAll('_', ' ');
  const noun = NOUNS[field.table] ?? `${field.table} row`;
  return `the stored ${what} of ${noun} ${JSON.stringify(field.row.at(-1) ?? '')}`;
}

function describeProblem(reason: UndecryptableReason, keyId: string | undefined, field: SealedField): string {
  const where = describeField(field);
  switch (reason) {
    case 'unknown-key':
      return `Cannot decrypt ${where}: it was sealed with encryption key "${keyId}", which is not in BERTH_ENCRYPTION_KEYS; the broker's operator must add that key back.`;
    case 'not-authentic':
      return `Cannot decrypt ${where}: it does not authenticate under encryption key "${keyId}" (altered, or copied from another row).`;
    case 'legacy-format':
      return `Cannot decrypt ${where}: it is in the old ciphertext format, which is not bound to its row; the broker's operator must run \`berth keys rotate\` to re-seal it.`;
    case 'malformed':
      return `Cannot decrypt ${where}: it is not a ciphertext Berth wrote.`;
  }
}

export class SecretBox {
  readonly #keys: Map<string, Buffer>;
  readonly #activeId: string;

  constructor(spec: string) {
    this.#keys = new Map();
    const entries = spec.split(',').map((s) => s.trim()).filter(Boolean);
    if (entries.length === 0) throw new Error('BERTH_ENCRYPTION_KEYS is empty');
    for (const entry of entries) {
      const sep = entry.indexOf(':');
      if (sep <= 0) throw new Error('BERTH_ENCRYPTION_KEYS entries must look like "<key-id>:<base64 32-byte key>"');
      const id = entry.slice(0, sep);
      const key = Buffer.from(entry.slice(sep + 1), 'base64');
      if (key.length !== 32) throw new Error(`encryption key "${id}" must be 32 bytes (base64), got ${key.length}`);
      if (!/^[A-Za-z0-9_-]+$/.test(id)) throw new Error(`encryption key id "${id}" may contain only letters, digits, "-" and "_"`);
      this.#keys.set(id, key);
    }
    this.#activeId = entries[0]!.slice(0, entries[0]!.indexOf(':'));
  }

  static generateKeySpec(id = 'k1'): string {
    return `${id}:${randomBytes(32).toString('base64')}`;
  }

  /** Seals `value` for one cell: it opens only with the same `field`. */
  seal(value: unknown, field: SealedField): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#keys.get(this.#activeId)!, iv);
    cipher.setAAD(boundAad(this.#activeId, field));
    const body = Buffer.concat([cipher.update(JSON.stringify(value ?? null), 'utf8'), cipher.final()]);
    return ['v2', this.#activeId, iv.toString('base64'), cipher.getAuthTag().toString('base64'), body.toString('base64')].join(':');
  }

  /** Opens what `seal` wrote for the same `field`; throws UndecryptableError otherwise. */
  open<T = unknown>(sealed: string | null | undefined, field: SealedField): T | undefined {
    if (sealed == null) return undefined;
    const parts = parse(sealed, field);
    if (parts.version === 'v1') {
      // The missing key first: without it even re-sealing cannot help.
      throw new UndecryptableError(this.#keys.has(parts.id) ? 'legacy-format' : 'unknown-key', parts.id, field);
    }
    return this.#decrypt<T>(parts, boundAad(parts.id, field), field);
  }

  /**
   * Opens a ciphertext in either format. Only for re-sealing: a `v1` value is
   * not bound to its row, so whoever calls this must write the value back
   * sealed for its cell at once.
   */
  openForReseal<T = unknown>(sealed: string, field: SealedField): T {
    const parts = parse(sealed, field);
    return this.#decrypt<T>(parts, parts.version === 'v1' ? Buffer.from(parts.id) : boundAad(parts.id, field), field);
  }

  /** Whether `sealed` is already in the current format under the key that seals now. */
  isCurrent(sealed: string): boolean {
    return sealed.startsWith(`v2:${this.#activeId}:`);
  }

  get activeKeyId(): string {
    return this.#activeId;
  }

  /**
   * One key per encryption key, derived for `purpose` (HKDF-SHA256), the active key's first: for
   * signing with the active key and verifying with any (e.g. dashboard links), never the keys themselves.
   */
  derivedKeys(purpose: string): Buffer[] {
    const ids = [this.#activeId, ...[...this.#keys.keys()].filter((id) => id !== this.#activeId)];
    return ids.map((id) => Buffer.from(hkdfSync('sha256', this.#keys.get(id)!, Buffer.alloc(0), purpose, 32)));
  }

  #decrypt<T>(parts: Parts, aad: Buffer, field: SealedField): T {
    const key = this.#keys.get(parts.id);
    if (!key) throw new UndecryptableError('unknown-key', parts.id, field);
    let plain: string;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(parts.iv, 'base64'));
      decipher.setAAD(aad);
      decipher.setAuthTag(Buffer.from(parts.tag, 'base64'));
      plain = Buffer.concat([decipher.update(Buffer.from(parts.body, 'base64')), decipher.final()]).toString('utf8');
    } catch {
      throw new UndecryptableError('not-authentic', parts.id, field);
    }
    try {
      return JSON.parse(plain) as T;
    } catch {
      throw new UndecryptableError('malformed', parts.id, field);
    }
  }
}

interface Parts {
  version: 'v1' | 'v2';
  id: string;
  iv: string;
  tag: string;
  body: string;
}

function parse(sealed: string, field: SealedField): Parts {
  const [version, id, iv, tag, body, extra] = sealed.split(':');
  if ((version !== 'v1' && version !== 'v2') || !id || !iv || !tag || body === undefined || extra !== undefined) {
    throw new UndecryptableError('malformed', undefined, field);
  }
  return { version, id, iv, tag, body };
}

/** JSON of an array: unambiguous whatever characters the ids hold. */
function boundAad(keyId: string, field: SealedField): Buffer {
  return Buffer.from(JSON.stringify(['berth-v2', keyId, field.table, field.row, field.column]));
}
