// Deterministic Kubernetes names derived from OSB ids, which may contain any
// character: a hash keeps them valid DNS labels, bounded and collision-free.
import { createHash } from 'node:crypto';

const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';

/** 20 base32 characters (100 bits) of SHA-256 over the parts. */
export function idHash(...parts: string[]): string {
  const digest = createHash('sha256').update(parts.join('\u0000')).digest();
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < 20) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    if (out.length >= 20) break;
  }
  return out;
}

export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'berth' } as const;
export const INSTANCE_LABEL = 'berth.dev/instance';
export const BINDING_LABEL = 'berth.dev/binding';
export const INSTANCE_ID_ANNOTATION = 'berth.dev/instance-id';
export const BINDING_ID_ANNOTATION = 'berth.dev/binding-id';
