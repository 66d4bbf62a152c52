// The one way Berth turns ids into names: SHA-256 over an unambiguous
// encoding of the parts, in lower-case base32, cut to a length. Names derived
// this way are deterministic (a re-run after a crash finds what the first run
// made), bounded and made of [a-z2-7] only, whatever the ids contain.
//
// Two encodings of the parts are in use and frozen: every name already
// created depends on them (test/unit/lib/hash-names.test.ts pins golden values).
import { createHash } from 'node:crypto';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** Lower-case RFC 4648 base32 without padding. */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** The first `chars` base32 characters of SHA-256 over `text`. */
export function hashName(text: string, chars: number): string {
  return base32(createHash('sha256').update(text, 'utf8').digest()).slice(0, chars);
}

/** SQL server names: 26 characters (130 bits) over the JSON array of the parts (unambiguous for any strings). */
export function nameHash(domain: string, ...parts: string[]): string {
  return hashName(JSON.stringify([domain, ...parts]), 26);
}

/** Kubernetes names: 20 characters (100 bits) over the parts joined by NUL (ids cannot contain NUL). */
export function idHash(...parts: string[]): string {
  return hashName(parts.join('\u0000'), 20);
}
