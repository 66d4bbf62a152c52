// The signed link that opens an instance's dashboard without the platform's
// credentials: `v1.<expiry>.<mac>`, an HMAC-SHA256 over the instance id and the
// expiry (Unix seconds), keyed by a key derived from Berth's encryption keys
// (SecretBox.derivedKeys). The first encryption key signs and every configured
// key verifies, so rotating BERTH_ENCRYPTION_KEYS the documented way (new key
// first, old key kept until `berth keys rotate` has run) keeps links working;
// removing a key revokes the links it signed.
//
// The expiry is rounded up to the next whole UTC day, so every link issued for
// an instance on one day is the same string: repeated provision, update and GET
// answers do not churn what a platform stores and shows.
import { createHmac, timingSafeEqual } from 'node:crypto';

const DAY_MS = 86_400_000;
/** What the keys derived from the encryption keys for dashboard links are derived for (SecretBox.derivedKeys). */
export const DASHBOARD_KEY_PURPOSE = 'berth dashboard link v1';
const FORMAT = /^v1\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

export type TokenCheck = { valid: true; expiresAt: Date } | { valid: false; reason: 'malformed' | 'expired' | 'not-authentic' };

export class DashboardTokens {
  readonly #keys: Buffer[];
  readonly #lifetimeMs: number;

  /** `keys`: the signing key first, then every key that still verifies. */
  constructor(keys: Buffer[], lifetimeMs: number) {
    if (keys.length === 0) throw new Error('a dashboard token needs at least one key');
    this.#keys = keys;
    this.#lifetimeMs = lifetimeMs;
  }

  get lifetimeMs(): number {
    return this.#lifetimeMs;
  }

  /** A token for `instanceId` valid for the configured lifetime (at least), until the end of that UTC day. */
  issue(instanceId: string, now = Date.now()): string {
    const expiresAt = Math.ceil((now + this.#lifetimeMs) / DAY_MS) * DAY_MS;
    return this.#sign(instanceId, expiresAt / 1000, this.#keys[0]!);
  }

  /** For tests and tools: a token with an explicit expiry (Unix seconds). */
  issueUntil(instanceId: string, expiresAtSeconds: number): string {
    return this.#sign(instanceId, expiresAtSeconds, this.#keys[0]!);
  }

  check(instanceId: string, token: unknown, now = Date.now()): TokenCheck {
    const m = typeof token === 'string' ? FORMAT.exec(token) : null;
    if (!m) return { valid: false, reason: 'malformed' };
    const expiresSeconds = Number(m[1]);
    const given = Buffer.from(m[2]!, 'base64url');
    // The signature first: an expired token is reported as expired only when it is one of ours.
    const authentic = this.#keys.some((key) => timingSafeEqual(mac(key, instanceId, expiresSeconds), given));
    if (!authentic) return { valid: false, reason: 'not-authentic' };
    if (expiresSeconds * 1000 <= now) return { valid: false, reason: 'expired' };
    return { valid: true, expiresAt: new Date(expiresSeconds * 1000) };
  }

  #sign(instanceId: string, expiresSeconds: number, key: Buffer): string {
    return `v1.${expiresSeconds}.${mac(key, instanceId, expiresSeconds).toString('base64url')}`;
  }
}

/** JSON of an array: unambiguous whatever characters the instance id holds. */
function mac(key: Buffer, instanceId: string, expiresSeconds: number): Buffer {
  return createHmac('sha256', key).update(JSON.stringify(['berth-dashboard-v1', instanceId, expiresSeconds])).digest();
}
