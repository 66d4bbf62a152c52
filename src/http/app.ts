// Assembles the HTTP surface: OSB routes under /v2 behind the protocol checks
// (checks.ts), plus /healthz, /readyz and /metrics for operators. Every route
// is a plain function (routes/*.ts) returning a Reply; Express routes, parses
// bodies and sends. The two requests platforms send most go through the lean
// router (hot-path.ts) with the same checks, routes, errors and access log.
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { Broker } from '../broker/index.ts';
import type { Metrics } from '../observability/metrics.ts';
import { errors } from '../osb/errors.ts';
import { clientOf } from './auth-throttle.ts';
import { authenticate, checkRequest, requestIdentityOf, type Authenticator } from './checks.ts';
import { toOsbError } from './error-handler.ts';
import { errorReply, observe, type Route } from './reply.ts';
import { bind } from './routes/bind.ts';
import { bindingLastOperation } from './routes/binding-last-operation.ts';
import { getCatalog } from './routes/catalog.ts';
import { deprovision } from './routes/deprovision.ts';
import { fetchBinding } from './routes/fetch-binding.ts';
import { fetchInstance } from './routes/fetch-instance.ts';
import { instanceLastOperation } from './routes/instance-last-operation.ts';
import { provision } from './routes/provision.ts';
import { provisionedResources } from './routes/provisioned-resources.ts';
import { unbind } from './routes/unbind.ts';
import { update } from './routes/update.ts';

const BODY_LIMIT = '1mb';

declare module 'express-serve-static-core' {
  interface Locals {
    meta: import('../broker/types.ts').RequestMeta;
  }
}

export interface AppDeps {
  broker: Broker;
  auth: Authenticator;
  log: Logger;
  metrics: Metrics;
  /** Resolves when the database is reachable and migrated; rejects or returns a reason otherwise (shown to anyone: no driver text). */
  readiness: () => Promise<string | undefined>;
  /** Extra gauges refreshed before a scrape (the caller bounds how often they really hit the database). */
  beforeScrape?: () => Promise<void>;
  /** Instance dashboards (src/dashboard): GET /dashboard/:instance_id with their own signed links, when configured. */
  dashboard?: express.Router;
}

/** The /v2 routes, by Express path; hot-path.ts serves two of them by the same functions. */
export function osbRoutes(broker: Broker) {
  return {
    catalog: getCatalog(broker.catalog),
    provision: provision(broker),
    update: update(broker),
    deprovision: deprovision(broker),
    fetchInstance: fetchInstance(broker),
    instanceLastOperation: instanceLastOperation(broker),
    bind: bind(broker),
    unbind: unbind(broker),
    fetchBinding: fetchBinding(broker),
    bindingLastOperation: bindingLastOperation(broker),
  };
}

/** Runs a route as an Express handler; a rejection goes to the error handler. */
function handle(route: Route) {
  return async (req: Request, res: Response) => {
    const reply = await route({ params: req.params as Record<string, string>, query: req.query, body: req.body, meta: res.locals.meta });
    res.status(reply.status).set(reply.headers ?? {});
    if (Buffer.isBuffer(reply.body)) res.type('application/json').send(reply.body);
    else res.json(reply.body);
  };
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    const requestIdentity = requestIdentityOf(req.headers);
    if (requestIdentity) res.set('X-Broker-API-Request-Identity', requestIdentity);
    res.locals.meta = { apiMinor: 0, requestIdentity, originatingIdentity: undefined };
    res.on('finish', () => {
      const route = (req.route?.path as string | undefined) ?? 'unmatched';
      observe(deps.log, deps.metrics, { method: req.method, route, status: res.statusCode, started, requestIdentity });
    });
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    let reason: string | undefined;
    try {
      reason = await deps.readiness();
    } catch (err) {
      // Unauthenticated: the driver's text (addresses, server messages) goes to the log only.
      deps.log.warn({ err }, 'readiness check failed');
      reason = 'database unreachable';
    }
    if (reason) res.status(503).json({ status: 'unavailable', description: reason });
    else res.json({ status: 'ready' });
  });
  app.get('/metrics', async (_req, res) => {
    try {
      await deps.beforeScrape?.();
    } catch {
      // The database gauges stay stale during an outage; process metrics still matter.
    }
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  const json = express.json({ limit: BODY_LIMIT, strict: false, type: () => true });
  const r = osbRoutes(deps.broker);
  const v2 = express.Router({ caseSensitive: true, strict: false });
  v2.use((req, res, next) => {
    const meta = checkRequest(deps.auth, { headers: req.headers, url: req.originalUrl, client: clientOf(req), socket: req.socket });
    // A promise only while a bearer token is being reviewed; Express 5 passes its rejection to the error handler.
    if (meta instanceof Promise) {
      return meta.then((m) => {
        res.locals.meta = m;
        next();
      });
    }
    res.locals.meta = meta;
    next();
  });
  v2.get('/catalog', handle(r.catalog));
  v2.put('/service_instances/:instance_id', json, handle(r.provision));
  v2.patch('/service_instances/:instance_id', json, handle(r.update));
  v2.delete('/service_instances/:instance_id', handle(r.deprovision));
  v2.get('/service_instances/:instance_id', handle(r.fetchInstance));
  v2.get('/service_instances/:instance_id/last_operation', handle(r.instanceLastOperation));
  v2.put('/service_instances/:instance_id/service_bindings/:binding_id', json, handle(r.bind));
  v2.delete('/service_instances/:instance_id/service_bindings/:binding_id', handle(r.unbind));
  v2.get('/service_instances/:instance_id/service_bindings/:binding_id', handle(r.fetchBinding));
  v2.get('/service_instances/:instance_id/service_bindings/:binding_id/last_operation', handle(r.bindingLastOperation));
  app.use('/v2', v2);

  // Berth's own read-only endpoints, outside /v2 so that platforms see a plain OSB broker: the same
  // credentials, no X-Broker-API-Version (not an OSB call).
  const own = express.Router({ caseSensitive: true, strict: false });
  own.use((req, _res, next) => {
    // The same credentials as /v2 (basic, bearer, client certificate); a promise while a bearer token is reviewed.
    const authenticated = authenticate(deps.auth, clientOf(req), req.headers.authorization, req.originalUrl, req.socket);
    if (authenticated instanceof Promise) return authenticated.then(() => next());
    next();
  });
  own.get('/service_instances/:instance_id/resources', handle(provisionedResources(deps.broker)));
  app.use('/berth/v1', own);
  if (deps.dashboard) app.use(deps.dashboard);

  app.use((req, _res, next) => next(errors.notFound(`No route for ${req.method} ${req.path}.`)));
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const reply = errorReply(toOsbError(err, deps.log, req.route?.path));
    if (res.headersSent) return;
    res.status(reply.status).set(reply.headers).json(reply.body);
  });
  return app;
}
