// The protocol checks every /v2 request passes, in the order the OSB spec
// implies: API version (412/400), then authentication (429/401), then the
// identity headers. Plain functions over headers, so that Express (app.ts) and
// the lean router for the hottest routes (hot-path.ts) run the very same ones.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { Credential } from '../config.ts';
import type { RequestMeta } from '../broker/types.ts';
import { errors, type OsbError } from '../osb/errors.ts';
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

const BASIC = /^Basic +([A-Za-z0-9+/=]+) *$/i;
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** The token of an `Authorization: Bearer <token>` header, if it is one. */
export function bearerTokenOf(header: string): string | undefined {
  return BEARER.exec(header)?.[1];
}

/**
 * Checks an Authorization header against basic-auth pairs and static bearer tokens (several of each allow
 * rotation), in constant time: both sides are hashed, so neither the comparison nor its length tells anything.
 */
export function credentialMatcher(credentials: Credential[], tokens: readonly string[] = []): (header: string | undefined) => boolean {
  const wanted = credentials.map((c) => digest(`${c.username}:${c.password}`));
  const wantedTokens = tokens.map((t) => digest(t));
  // Platforms send the canonical header: its digest is compared first (one hash, no decoding).
  const canonical = [
    ...credentials.map((c) => digest(`Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`)),
    ...tokens.map((t) => digest(`Bearer ${t}`)),
  ];
  return (header = '') => {
    const direct = digest(header);
    let hit = false;
    // Not short-circuited: every pair is compared, so the time does not tell which pair (or whether any) matched.
    for (const w of canonical) hit = timingSafeEqual(direct, w) || hit;
    if (hit) return true;
    if (wantedTokens.length > 0) {
      const token = bearerTokenOf(header);
      if (token !== undefined) {
        const got = digest(token);
        let ok = false;
        for (const w of wantedTokens) ok = timingSafeEqual(got, w) || ok;
        return ok;
      }
    }
    const m = BASIC.exec(header);
    // The whole "user:password" string is compared, so passwords may contain colons.
    const got = digest(m ? Buffer.from(m[1]!, 'base64') : Buffer.from(`\0${header}`));
    let ok = false;
    for (const w of wanted) ok = timingSafeEqual(got, w) || ok;
    return m !== null && ok;
  };
}

/** What a TokenReview said about a bearer token: an allowed identity, one not allowed, or no identity at all. */
export type TokenVerdict = { kind: 'allowed'; identity: string } | { kind: 'not-allowed'; identity: string } | { kind: 'refused' };

export interface TokenChecker {
  /** The verdict at once when it is cached, else a promise of it; rejects when the cluster could not be asked. */
  check(token: string): TokenVerdict | Promise<TokenVerdict>;
}

export interface Authenticator {
  /** Basic-auth pairs and static bearer tokens (constant time, synchronous). */
  matches: (header: string | undefined) => boolean;
  /** Set with BERTH_TLS_CLIENT_CA_FILE: a client certificate verified against that CA is a credential too. */
  clientCertificates?: boolean;
  /** Set with BERTH_TOKENREVIEW=true: bearer tokens that are no static token are asked about. */
  tokens?: TokenChecker;
  throttle: AuthThrottle;
  log: Logger;
}

/** Connections whose client certificate was logged already: once per connection, not per request. */
const certificateLogged = new WeakSet<object>();

/** True when the connection presented a client certificate the configured CA verified (logged once per connection). */
function verifiedClientCertificate(log: Logger, socket: Socket | undefined): boolean {
  const tlsSocket = socket as TLSSocket | undefined;
  if (tlsSocket?.authorized !== true) return false;
  if (!certificateLogged.has(tlsSocket)) {
    certificateLogged.add(tlsSocket);
    const cert = tlsSocket.getPeerCertificate();
    log.info({ subject: cert.subject, serialNumber: cert.serialNumber, fingerprint256: cert.fingerprint256 }, 'authenticated by client certificate');
  }
  return true;
}

function refuse(auth: Authenticator, client: string, url: string, scheme: 'basic' | 'bearer', error: OsbError): never {
  const { throttle, log } = auth;
  const outcome = throttle.failed(client);
  const windowSeconds = Math.round(throttle.windowMs / 1000);
  if (outcome.firstInWindow) {
    log.warn({ client, route: url.split('?')[0]?.slice(0, 200) }, `refused ${scheme === 'bearer' ? 'bearer token' : 'basic-auth credentials'} (further refusals from this client are not logged for ${windowSeconds} s)`);
  }
  if (outcome.throttledNow) {
    log.warn({ client, failures: throttle.limit, seconds: windowSeconds }, 'too many refused credentials: this client gets 429 until its window ends');
  }
  throw error;
}

/**
 * 401 for missing or refused credentials; 429 (before any check) for a client
 * that failed too often. Refusals are logged at warn once per client and
 * throttle window, so a flood of guesses cannot flood the log. Any one accepted
 * credential authenticates: basic auth, a static bearer token, a verified client
 * certificate, or a bearer token the cluster's TokenReview vouches for. Only the
 * last may need to wait (an API call, unless its verdict is cached): then a promise.
 */
export function authenticate(auth: Authenticator, client: string, header: string | undefined, url: string, socket?: Socket): void | Promise<void> {
  const { throttle } = auth;
  const wait = throttle.retryAfterSeconds(client);
  if (wait > 0) throw errors.tooManyAuthFailures(wait);
  if (auth.matches(header) || (auth.clientCertificates === true && verifiedClientCertificate(auth.log, socket))) {
    throttle.succeeded(client);
    return;
  }
  // No credentials at all is not a guess (clients often try without first): not counted.
  if (header === undefined) throw errors.unauthorized(false);
  const token = bearerTokenOf(header);
  if (token === undefined) refuse(auth, client, url, 'basic', errors.unauthorized(true));
  if (!auth.tokens) refuse(auth, client, url, 'bearer', errors.unauthorized(true, 'bearer'));
  const settle = (verdict: TokenVerdict): void => {
    if (verdict.kind === 'allowed') return throttle.succeeded(client);
    refuse(auth, client, url, 'bearer', verdict.kind === 'not-allowed' ? errors.identityNotAllowed(verdict.identity) : errors.unauthorized(true, 'bearer'));
  };
  let verdict: TokenVerdict | Promise<TokenVerdict>;
  try {
    verdict = auth.tokens.check(token);
  } catch {
    throw errors.authenticationUnavailable();
  }
  if (!(verdict instanceof Promise)) return settle(verdict);
  return verdict.then(settle, () => {
    // The checker logged why; the client only learns that it is not its fault.
    throw errors.authenticationUnavailable();
  });
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

/** Every check a /v2 request passes, in order; what the broker is told about the request (a promise only while a bearer token is being reviewed). */
export function checkRequest(
  auth: Authenticator,
  req: { headers: IncomingHttpHeaders; url: string; client: string; socket?: Socket },
): RequestMeta | Promise<RequestMeta> {
  const apiMinor = apiMinorOf(req.headers);
  const authenticated = authenticate(auth, req.client, req.headers.authorization, req.url, req.socket);
  return authenticated instanceof Promise ? authenticated.then(() => metaOf(req.headers, apiMinor)) : metaOf(req.headers, apiMinor);
}

/** The checks after authentication: what the broker is told about the request. */
function metaOf(headers: IncomingHttpHeaders, apiMinor: number): RequestMeta {
  return { apiMinor, requestIdentity: requestIdentityOf(headers), originatingIdentity: originatingIdentityOf(headers), waitSeconds: requestedWaitSeconds(headers) };
}
