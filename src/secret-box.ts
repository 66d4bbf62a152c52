// AES-256-GCM envelope for everything secret we keep in the database. Each
// ciphertext names the key that sealed it, so keys can rotate: the first key
// in the list seals, every key in the list opens.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

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

  seal(value: unknown): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#keys.get(this.#activeId)!, iv);
    cipher.setAAD(Buffer.from(this.#activeId));
    const body = Buffer.concat([cipher.update(JSON.stringify(value ?? null), 'utf8'), cipher.final()]);
    return ['v1', this.#activeId, iv.toString('base64'), cipher.getAuthTag().toString('base64'), body.toString('base64')].join(':');
  }

  open<T = unknown>(sealed: string | null | undefined): T | undefined {
    if (sealed == null) return undefined;
    const [version, id, iv, tag, body] = sealed.split(':');
    if (version !== 'v1' || !id || iv === undefined || tag === undefined || body === undefined) {
      throw new Error('unrecognised ciphertext format');
    }
    const key = this.#keys.get(id);
    if (!key) throw new Error(`ciphertext sealed with unknown key id "${id}"; add it to BERTH_ENCRYPTION_KEYS`);
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
    decipher.setAAD(Buffer.from(id));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    const plain = Buffer.concat([decipher.update(Buffer.from(body, 'base64')), decipher.final()]).toString('utf8');
    return JSON.parse(plain) as T;
  }

  keyIdOf(sealed: string): string | undefined {
    return sealed.split(':')[1];
  }

  get activeKeyId(): string {
    return this.#activeId;
  }
}
