// Helpers for the encryption tests: the ciphertext format Berth wrote before
// ciphertexts were bound to their rows, and the cells of the tables.
import { createCipheriv, randomBytes } from 'node:crypto';
import type { SealedField } from '../../src/secret-box.ts';

/** Seals as Berth did before row binding (`v1`: the additional data is only the key id). */
export function sealV1(keySpec: string, value: unknown): string {
  const [id, key] = keySpec.split(':') as [string, string];
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(key, 'base64'), iv);
  cipher.setAAD(Buffer.from(id));
  const body = Buffer.concat([cipher.update(JSON.stringify(value ?? null), 'utf8'), cipher.final()]);
  return ['v1', id, iv.toString('base64'), cipher.getAuthTag().toString('base64'), body.toString('base64')].join(':');
}

export const instanceCell = (id: string, column: string): SealedField => ({ table: 'instances', row: [id], column });
export const bindingCell = (instanceId: string, id: string, column: string): SealedField => ({ table: 'bindings', row: [instanceId, id], column });
export const operationCell = (id: string): SealedField => ({ table: 'operations', row: [id], column: 'request_enc' });

export const org = { organization_guid: 'org-1', space_guid: 'space-1' };
