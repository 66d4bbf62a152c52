// The protocol checks every /v2 request passes, in the order the OSB spec
// implies: API version (412/400), then authentication (429/401), then the
// identity headers. Plain functions over headers, so that Express (app.ts) and
// the lean router for the hottest routes (hot-path.ts) run the very same ones.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import type { Credential } from '../config.ts';
import type { RequestMeta } from '../broker/types.ts';
import { errors } from '../osb/errors.ts';
import type { JsonObject } from '../osb/model.ts';
import { MAX_MINOR, MIN_MINOR } from '../osb/versions.ts';
import { assertStorable } from './body-limits.ts';
import type { AuthThrottle } from './auth-throttle.ts';
import { requestedWaitSeconds } from './long-poll.ts';

/** X-Broker-API-Request-Identity, as echoed and logged (bounded). */
export function requestIdentityOf(headers: IncomingHttpHeaders): string | undefined {
  const id = headers['x-broker-api-request-identity'];
  return typeof id === 'string' && id !== '' ? id.slice(0, 256) : undefined;
}

/** The API minor version the request speaks; 400 without the header, 412 outside 2.13–2.17. */
export function apiMinorOf(headers: IncomingHttpHeaders): number {
  const header = headers['x-broker-api-version'];
  if (typeof header !== 'string' || header.trim() === '') throw errors.versionMissing();
  const m = /^\s*2\.(\d{1,3})\s*$/.exec(header);
  const minor = m ? Number(m[1]) : NaN;
  if (!(minor >= MIN_MINOR && minor <= MAX_MINOR)) throw errors.versionUnsupported(header.slice(0, 40));
  return minor;
}

const digest = (s: string | Buffer) => createHash('sha256').update(s).digest();

/** Checks an Authorization header against one or more pairs (several allow rotation), in constant time. */
export function credentialMatcher(credentials: Credential[]): (header: string | undefined) => boolean {
  const wanted = credentials.map((c) => digest(`${c.username}:${c.password}`));
  // Platforms send the canonical header: its digest is compared first (one hash, no decoding).
  const canonical = credentials.map((c) => digest(`Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`));
  return (header = '') => {
    const direct = digest(header);
    let hit = false;
    // Not short-circuited: every pair is compared, so the time does not tell which pair (or whether any) matched.
    for (const w of canonical) hit = timingSafeEqual(direct, w) || hit;
    if (hit) return true;
    const m = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(header);
    // The whole "user:password" string is compared, so passwords may contain colons.
    const got = digest(m ? Buffer.from(m[1]!, 'base64') : Buffer.from(`\0${header}`));
    let ok = false;
    for (const w of wanted) ok = timingSafeEqual(got, w) || ok;
    return m !== null && ok;
  };
}

export interface Authenticator {
  matches: (header: string | undefined) => boolean;
  throttle: AuthThrottle;
  log: Logger;
}

/**
 * 401 for missing or refused credentials; 429 (before any check) for a client
 * that failed too often. Refusals are logged at warn once per client and
 * throttle window, so a flood of guesses cannot flood the log.
 */
export function authenticate(auth: Authenticator, client: string, header: string | undefined, url: string): void {
  const { throttle, log } = auth;
  const wait = throttle.retryAfterSeconds(client);
  if (wait > 0) throw errors.tooManyAuthFailures(wait);
  if (auth.matches(header)) {
    throttle.succeeded(client);
    return;
  }
  // No credentials at all is not a guess (clients often try without first): not counted.
  if (header === undefined) throw errors.unauthorized(false);
  const outcome = throttle.failed(client);
  const windowSeconds = Math.round(throttle.windowMs / 1000);
  if (outcome.firstInWindow) {
    log.warn({ client, route: url.split('?')[0]?.slice(0, 200) }, `refused basic-auth credentials (further refusals from this client are not logged for ${windowSeconds} s)`);
  }
  if (outcome.throttledNow) {
    log.warn({ client, failures: throttle.limit, seconds: windowSeconds }, 'too many refused credentials: this client gets 429 until its window ends');
  }
  throw errors.unauthorized(true);
}

/** X-Broker-API-Originating-Identity, decoded for the audit trail; 400 when it is not "<platform> <base64 JSON object>". */
export function originatingIdentityOf(headers: IncomingHttpHeaders): RequestMeta['originatingIdentity'] {
  const raw = headers['x-broker-api-originating-identity'];
  if (raw === undefined) return undefined;
  const m = typeof raw === 'string' ? /^\s*(\S+)\s+([A-Za-z0-9+/=_-]+)\s*$/.exec(raw) : null;
  let value: unknown;
  if (m) {
    try {
      value = JSON.parse(Buffer.from(m[2]!, 'base64').toString('utf8'));
    } catch {
      value = undefined;
    }
  }
  if (!m || typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw errors.badRequest('X-Broker-API-Originating-Identity must be "<platform> <base64-encoded JSON object>".');
  }
  assertStorable(value, 'X-Broker-API-Originating-Identity');
  return { platform: m[1]!, value: value as JsonObject };
}

/** Every check a /v2 request passes, in order; what the broker is told about the request. */
export function checkRequest(auth: Authenticator, req: { headers: IncomingHttpHeaders; url: string; client: string }): RequestMeta {
  const apiMinor = apiMinorOf(req.headers);
  authenticate(auth, req.client, req.headers.authorization, req.url);
  return { apiMinor, requestIdentity: requestIdentityOf(req.headers), originatingIdentity: originatingIdentityOf(req.headers), waitSeconds: requestedWaitSeconds(req.headers) };
}
