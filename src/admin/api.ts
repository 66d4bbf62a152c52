// The admin API: its own listener (BERTH_ADMIN_PORT, 127.0.0.1 by default) and its own credentials
// (BERTH_ADMIN_TOKENS: named bearer tokens, never the platform's). Lists instances, bindings and
// operations with filters; retries, force-fails, purges, repairs; runs the orphan sweeper. Requests are
// checked with zod; every error is JSON {error, description} with a sentence a person can act on.
// The README's "Admin API" section is the reference of every endpoint.
import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Catalog } from '../catalog/catalog.ts';
import { AuthThrottle, clientOf } from '../http/auth-throttle.ts';
import { OrphanSweeper, SweepInProgress } from '../sweeper/sweeper.ts';
import type { AdminToken } from './config.ts';
import { AdminQueries, type InstanceCondition, type ListFilter } from './queries.ts';
import { AdminError, type AdminService } from './service.ts';

export const ADMIN_PREFIX = '/admin/v1';

/** `90s`, `10m`, `1h30m`, `2d`, or plain seconds → milliseconds; undefined when it is none of these. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let ms = 0;
  let end = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    ms += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
    end = re.lastIndex;
  }
  return end === t.length && t.length > 0 ? ms : undefined;
}

const duration = z.string().refine((s) => parseDuration(s) !== undefined, 'must be a duration such as 90s, 10m, 1h30m or 2d');
const flag = z.enum(['true', 'false']).transform((v) => v === 'true');

const listQuery = z
  .object({
    state: z.string().min(1).max(40).optional(),
    plan: z.string().min(1).max(255).optional(),
    offering: z.string().min(1).max(255).optional(),
    instance: z.string().min(1).max(255).optional(),
    kind: z.enum(['provision', 'update', 'deprovision', 'bind', 'unbind', 'repair']).optional(),
    failed: flag.optional(),
    stuck: duration.optional(),
    maintenance_version_not: z.string().max(255).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    continue: z.string().max(2000).optional(),
  })
  .strict();

const reasonBody = z.object({ reason: z.string().trim().min(3, 'say why (at least 3 characters): it is recorded in the audit table').max(1000) }).strict();
const sweepBody = z
  .object({
    delete: z.boolean().default(false),
    only: z.array(z.string().min(1).max(1000)).max(10_000).optional(),
    reason: z.string().trim().max(1000).optional(),
  })
  .strict()
  .refine((b) => !b.delete || (b.reason !== undefined && b.reason.length >= 3), { message: 'a sweep that deletes needs a reason (at least 3 characters): it is recorded in the audit table', path: ['reason'] })
  .refine((b) => b.only === undefined || b.delete, { message: '"only" selects orphans to delete: use it with "delete": true', path: ['only'] });

export interface AdminApiDeps {
  tokens: AdminToken[];
  service: AdminService;
  queries: AdminQueries;
  sweeper: OrphanSweeper;
  catalog: Catalog;
  /** Records a sweep's deletions in the audit table. */
  auditSweep: (actor: string, reason: string, deleted: Array<{ id: string; instanceId?: string; bindingId?: string }>) => Promise<void>;
  log: Logger;
  throttle: AuthThrottle;
  /** Extra instance filters (query parameter → condition), e.g. `behind=true` from the upgrades feature. */
  instanceFilters?: Record<string, (value: string) => InstanceCondition>;
}

function fail(status: number, error: string, description: string): never {
  throw new AdminError(status, error, description);
}

function problemsOf(err: z.ZodError): string {
  return err.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The name of the admin token the request carries, or undefined. Every token is compared, so the time tells nothing. */
export function adminTokenMatcher(tokens: AdminToken[]): (header: string | undefined) => string | undefined {
  const wanted = tokens.map((t) => ({ name: t.name, digest: digest(t.token) }));
  return (header) => {
    const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header ?? '');
    const got = digest(m ? m[1]! : `\0${header ?? ''}`);
    let name: string | undefined;
    for (const w of wanted) if (timingSafeEqual(got, w.digest) && m) name ??= w.name;
    return name;
  };
}

export function createAdminApp(deps: AdminApiDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  const who = adminTokenMatcher(deps.tokens);
  const log = deps.log.child({ component: 'admin' });

  app.use((req, res, next) => {
    const client = clientOf(req);
    const wait = deps.throttle.retryAfterSeconds(client);
    if (wait > 0) {
      res.status(429).set('Retry-After', String(wait)).json({ error: 'TooManyFailures', description: `Too many failed admin logins from this address; try again in ${wait} s.` });
      return;
    }
    const name = who(req.headers.authorization);
    if (!name) {
      const outcome = deps.throttle.failed(client);
      if (outcome.firstInWindow) log.warn({ client, path: req.path }, 'admin request without a valid admin token');
      res
        .status(401)
        .set('WWW-Authenticate', 'Bearer realm="berth-admin"')
        .json({ error: 'Unauthorized', description: 'The admin API needs "Authorization: Bearer <admin token>" with a token from BERTH_ADMIN_TOKENS or BERTH_ADMIN_TOKENS_FILE (platform credentials are not accepted here).' });
      return;
    }
    deps.throttle.succeeded(client);
    res.locals.admin = name;
    // Who changed what is in the audit table; the log says it too, as it happens.
    if (req.method !== 'GET') log.info({ admin: name, method: req.method, path: req.path }, 'admin request');
    next();
  });
  app.use(express.json({ limit: '256kb' }));

  const route = (fn: (req: Request, res: Response) => Promise<unknown>) => (req: Request, res: Response, next: NextFunction) => {
    fn(req, res).then((body) => res.json(body), next);
  };
  const actor = (req: Request, res: Response) => {
    const body = reasonBody.safeParse(req.body ?? {});
    if (!body.success) fail(400, 'BadRequest', `${problemsOf(body.error)}. Send a JSON body {"reason": "..."}.`);
    return { name: res.locals.admin as string, reason: body.data.reason };
  };
  const filterOf = (req: Request): { filter: ListFilter; extra: InstanceCondition[] } => {
    const extraNames = Object.keys(deps.instanceFilters ?? {});
    const own = Object.fromEntries(Object.entries(req.query).filter(([k]) => !extraNames.includes(k)));
    const q = listQuery.safeParse(own);
    if (!q.success) fail(400, 'BadRequest', `${problemsOf(q.error)}. Filters: state, plan, offering, instance, kind, failed=true, stuck=DURATION, limit, continue${extraNames.map((n) => `, ${n}`).join('')}.`);
    const f = q.data;
    const extra = extraNames.filter((n) => typeof req.query[n] === 'string').map((n) => deps.instanceFilters![n]!(req.query[n] as string));
    return {
      filter: {
        state: f.state,
        planId: f.plan ? planIdOf(deps.catalog, f.plan, f.offering) : undefined,
        serviceId: f.offering && !f.plan ? serviceIdOf(deps.catalog, f.offering) : undefined,
        instanceId: f.instance,
        kind: f.kind,
        failed: f.failed,
        stuckForMs: f.stuck === undefined ? undefined : parseDuration(f.stuck),
        maintenanceVersionNot: f.maintenance_version_not,
        limit: f.limit,
        continue: f.continue,
      },
      extra,
    };
  };

  app.get(`${ADMIN_PREFIX}/instances`, route(async (req) => {
    const { filter, extra } = filterOf(req);
    return deps.queries.instances(filter, extra);
  }));
  app.get(`${ADMIN_PREFIX}/bindings`, route(async (req) => deps.queries.bindings(filterOf(req).filter)));
  app.get(`${ADMIN_PREFIX}/operations`, route(async (req) => deps.queries.operations(filterOf(req).filter)));
  app.get(`${ADMIN_PREFIX}/audit`, route(async (req) => {
    const q = z.object({ instance: z.string().min(1).optional(), limit: z.coerce.number().int().min(1).max(1000).default(100) }).strict().safeParse(req.query);
    if (!q.success) fail(400, 'BadRequest', `${problemsOf(q.error)}. Filters: instance, limit.`);
    return { items: await deps.queries.adminAudit(q.data.instance, q.data.limit) };
  }));
  app.post(`${ADMIN_PREFIX}/operations/:id/retry`, route(async (req, res) => {
    const a = actor(req, res);
    res.status(202);
    return deps.service.retry(req.params.id as string, a);
  }));
  app.post(`${ADMIN_PREFIX}/operations/:id/fail`, route(async (req, res) => deps.service.fail(req.params.id as string, actor(req, res))));
  app.post(`${ADMIN_PREFIX}/instances/:id/purge`, route(async (req, res) => deps.service.purge(req.params.id as string, actor(req, res))));
  app.post(`${ADMIN_PREFIX}/instances/:id/repair`, route(async (req, res) => {
    const a = actor(req, res);
    res.status(202);
    return deps.service.repair(req.params.id as string, a);
  }));
  app.post(`${ADMIN_PREFIX}/sweep`, route(async (req, res) => {
    const body = sweepBody.safeParse(req.body ?? {});
    if (!body.success) fail(400, 'BadRequest', `${problemsOf(body.error)}. Send {"delete": false} to report, or {"delete": true, "reason": "...", "only": [ids]} to delete.`);
    let report;
    try {
      report = await deps.sweeper.sweep({ delete: body.data.delete, only: body.data.only });
    } catch (err) {
      if (err instanceof SweepInProgress) fail(409, 'SweepInProgress', `${err.message}.`);
      throw err;
    }
    const deleted = report.orphans.filter((o) => o.deleted);
    if (deleted.length > 0) await deps.auditSweep(res.locals.admin as string, body.data.reason!, deleted);
    return report;
  }));
  app.get(`${ADMIN_PREFIX}/sweep`, route(async () => deps.sweeper.last ?? fail(404, 'NotFound', 'No sweep has run in this process yet; run one with POST /admin/v1/sweep (or `berth admin sweep`).')));

  app.use((req, res) => {
    res.status(404).json({ error: 'NotFound', description: `No admin endpoint ${req.method} ${req.path}; the endpoints are listed in the README's "Admin API" section (all under ${ADMIN_PREFIX}).` });
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof AdminError) {
      res.status(err.status).json({ error: err.code, description: err.message });
      return;
    }
    if (err instanceof RangeError) {
      res.status(400).json({ error: 'BadRequest', description: err.message });
      return;
    }
    const e = err as { type?: string; status?: number };
    if (e.type === 'entity.parse.failed') {
      res.status(400).json({ error: 'BadRequest', description: 'The body is not valid JSON; send e.g. {"reason": "..."}.' });
      return;
    }
    if (e.type === 'entity.too.large') {
      res.status(413).json({ error: 'BadRequest', description: 'The body is larger than 256 KiB.' });
      return;
    }
    log.error({ err, path: req.path }, 'admin request failed');
    res.status(500).json({ error: 'InternalError', description: "The admin request failed inside Berth; Berth's log has the details." });
  });
  return app;
}

/** A plan by id, or by name (within the offering when one is given, else unique across offerings). */
function planIdOf(catalog: Catalog, plan: string, offering: string | undefined): string {
  if (catalog.plan(plan)) return plan;
  const serviceId = offering ? serviceIdOf(catalog, offering) : undefined;
  const matches = catalog.plans.filter((p) => p.name === plan && (!serviceId || p.service.id === serviceId));
  if (matches.length === 1) return matches[0]!.id;
  if (matches.length > 1) fail(400, 'BadRequest', `Plan name "${plan}" is in several offerings (${matches.map((p) => p.service.name).join(', ')}); add offering=NAME or use the plan id.`);
  // A plan no longer in the catalog may still have instances: filter by the id as given.
  return plan;
}

function serviceIdOf(catalog: Catalog, offering: string): string {
  const s = catalog.service(offering) ?? catalog.services.find((x) => x.name === offering);
  return s ? s.id : offering;
}
