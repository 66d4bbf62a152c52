// The protocol checks every /v2 request passes, in the order the OSB spec
// implies: API version (412/400), then authentication (401), then the body.
import { createHash, timingSafeEqual, randomUUID } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import type { Credential } from '../config.ts';
import { errors, OsbError } from '../osb/errors.ts';
import { isDatabaseUnavailable, isRejectedInput } from '../db/errors.ts';
import { UndecryptableError } from '../secret-box.ts';
import { assertStorable, storableString } from './body.ts';
import { MAX_MINOR, MIN_MINOR } from '../osb/versions.ts';
import type { Metrics } from '../observability/metrics.ts';
import { clientOf, type AuthThrottle } from './auth-throttle.ts';
import type { RequestMeta } from '../service/broker-service.ts';
import type { JsonObject } from '../osb/model.ts';


declare module 'express-serve-static-core' {
  interface Locals {
    meta: RequestMeta;
  }
}

export function apiVersion(): RequestHandler {
  return (req, res, next) => {
    const header = req.get('X-Broker-API-Version');
    if (header === undefined || header.trim() === '') return next(errors.versionMissing());
    const m = /^\s*2\.(\d{1,3})\s*$/.exec(header);
    const minor = m ? Number(m[1]) : NaN;
    if (!(minor >= MIN_MINOR && minor <= MAX_MINOR)) return next(errors.versionUnsupported(header.slice(0, 40)));
    res.locals.meta = { apiMinor: minor, requestIdentity: res.locals.meta?.requestIdentity, originatingIdentity: undefined };
    next();
  };
}

const digest = (s: string | Buffer) => createHash('sha256').update(s).digest();

/** Checks an Authorization header against one or more pairs (several allow rotation), in constant time. */
export function credentialMatcher(credentials: Credential[]): (header: string | undefined) => boolean {
  const wanted = credentials.map((c) => digest(`${c.username}:${c.password}`));
  // Platforms send the canonical header; its digest is checked first (one hash, no decoding).
  const canonical = credentials.map((c) => digest(`Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`));
  return (header = '') => {
    const direct = digest(header);
    let hit = false;
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

/**
 * 401 for missing or refused credentials; 429 (before any check) for a client
 * that failed too often. Refusals are logged at warn once per client and
 * throttle window, so a flood of guesses cannot flood the log.
 */
export function basicAuth(credentials: Credential[], throttle: AuthThrottle, log: Logger): RequestHandler {
  const matches = credentialMatcher(credentials);
  return (req, _res, next) => {
    const client = clientOf(req);
    const wait = throttle.retryAfterSeconds(client);
    if (wait > 0) return next(errors.tooManyAuthFailures(wait));
    const header = req.headers.authorization;
    if (matches(header)) {
      throttle.succeeded(client);
      return next();
    }
    // No credentials at all is not a guess (clients often try without first): not counted.
    if (header === undefined) return next(errors.unauthorized(false));
    const outcome = throttle.failed(client);
    const windowSeconds = Math.round(throttle.windowMs / 1000);
    if (outcome.firstInWindow) {
      log.warn({ client, route: req.originalUrl.split('?')[0]?.slice(0, 200) }, `refused basic-auth credentials (further refusals from this client are not logged for ${windowSeconds} s)`);
    }
    if (outcome.throttledNow) {
      log.warn({ client, failures: throttle.limit, seconds: windowSeconds }, 'too many refused credentials: this client gets 429 until its window ends');
    }
    next(errors.unauthorized(true));
  };
}

/** X-Broker-API-Request-Identity is echoed; X-Broker-API-Originating-Identity is decoded for the audit trail. */
export function identities(): RequestHandler {
  return (req, res, next) => {
    const raw = req.get('X-Broker-API-Originating-Identity');
    if (raw === undefined) return next();
    const m = /^\s*(\S+)\s+([A-Za-z0-9+/=_-]+)\s*$/.exec(raw);
    let value: unknown;
    if (m) {
      try {
        value = JSON.parse(Buffer.from(m[2]!, 'base64').toString('utf8'));
      } catch {
        value = undefined;
      }
    }
    if (!m || typeof value !== 'object' || value === null || Array.isArray(value)) {
      return next(errors.badRequest('X-Broker-API-Originating-Identity must be "<platform> <base64-encoded JSON object>".'));
    }
    try {
      assertStorable(value, 'X-Broker-API-Originating-Identity');
    } catch (err) {
      return next(err);
    }
    res.locals.meta.originatingIdentity = { platform: m[1]!, value: value as JsonObject };
    next();
  };
}

export function requestIdentity(): RequestHandler {
  return (req, res, next) => {
    const id = req.get('X-Broker-API-Request-Identity');
    if (id) res.set('X-Broker-API-Request-Identity', id.slice(0, 256));
    res.locals.meta = { apiMinor: 0, requestIdentity: id?.slice(0, 256), originatingIdentity: undefined };
    next();
  };
}

export function accessLog(log: Logger, metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const route = (req.route?.path as string | undefined) ?? 'unmatched';
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.httpRequests.inc({ route, method: req.method, status: String(res.statusCode) });
      metrics.httpDuration.observe({ route, method: req.method }, seconds);
      const level = res.statusCode >= 500 ? 'error' : 'debug';
      log[level](
        { method: req.method, route, status: res.statusCode, ms: Math.round(seconds * 1000), requestIdentity: res.locals.meta?.requestIdentity },
        'request',
      );
    });
    next();
  };
}

/** Maps anything thrown while serving a request to the OSB error that answers it. */
export function toOsbError(err: unknown, log: Logger, route: string | undefined): OsbError {
  const e = err as { type?: string; status?: number; limit?: number };
  if (err instanceof OsbError) return err;
  if (e?.type === 'entity.parse.failed') return errors.badRequest('The request body is not valid JSON.');
  if (e?.type === 'entity.too.large') return errors.payloadTooLarge(`${Math.round((e.limit ?? 0) / 1024)} kB`);
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') return errors.badRequest('The request body uses an unsupported encoding or charset; send UTF-8 JSON.');
  if (e?.type === 'request.aborted') return errors.badRequest('The request was aborted by the client.');
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) return errors.badRequest('The request is malformed.');
  if (err instanceof UndecryptableError) {
    log.error({ route, table: err.field.table, column: err.field.column, keyId: err.keyId, reason: err.reason }, 'a stored secret cannot be decrypted');
    return errors.undecryptable(err.message);
  }
  if (isDatabaseUnavailable(err)) {
    log.warn({ route }, 'database unavailable');
    return errors.unavailable();
  }
  if (isRejectedInput(err)) {
    log.warn({ route, code: (err as { code?: unknown }).code }, 'input rejected by the database');
    return errors.badRequest('The request contains a value that cannot be stored.');
  }
  const ref = randomUUID();
  log.error({ err, ref, route }, 'unhandled error');
  return errors.internal(ref);
}

export function errorHandler(log: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const osb = toOsbError(err, log, req.route?.path);
    if (res.headersSent) return;
    res.status(osb.status).set(osb.headers).json(osb.body());
  };
}

/** Reads accepts_incomplete: absent or "false" is false, "true" is true, anything else is a 400. */
export function acceptsIncomplete(req: Request): boolean {
  return booleanQuery(req, 'accepts_incomplete') ?? false;
}

export function booleanQuery(req: Request, name: string): boolean | undefined {
  const v = req.query[name];
  if (v === undefined) return undefined;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw errors.badRequest(`Query parameter ${name} must be "true" or "false".`);
}

export function stringQuery(req: Request, name: string, required: boolean): string | undefined {
  const v = req.query[name];
  if (v === undefined) {
    if (required) throw errors.badRequest(`Query parameter ${name} is required.`);
    return undefined;
  }
  if (typeof v !== 'string' || v === '') throw errors.badRequest(`Query parameter ${name} must be a non-empty string.`);
  if (!storableString(v) || Buffer.byteLength(v) > MAX_ID_BYTES) throw errors.badRequest(`Query parameter ${name} is too long or contains invalid characters.`);
  return v;
}

/** Ids are stored as indexed text: bounded in bytes, no NUL, well-formed Unicode. */
export const MAX_ID_BYTES = 1024;

export function idProblem(v: string): string | undefined {
  if (v === '') return 'must be a non-empty string';
  if (Buffer.byteLength(v) > MAX_ID_BYTES) return `is longer than ${MAX_ID_BYTES} bytes`;
  if (!storableString(v)) return 'contains a NUL character or invalid Unicode';
  return undefined;
}

export function idParam(req: Request, name: string): string {
  const v = req.params[name];
  if (typeof v !== 'string') throw errors.badRequest(`${name} must be a non-empty string.`);
  const problem = idProblem(v);
  if (problem) throw errors.badRequest(`${name} ${problem}.`);
  return v;
}
