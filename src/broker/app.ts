// Assembles the HTTP surface: OSB routes under /v2 behind the protocol checks,
// plus /healthz, /readyz and /metrics for operators.
import express, { type Express, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { Credential } from '../config.ts';
import type { BrokerService } from '../service/broker-service.ts';
import type { Metrics } from '../observability/metrics.ts';
import { accessLog, apiVersion, basicAuth, errorHandler, identities, requestIdentity } from './middleware.ts';
import { errors } from '../osb/errors.ts';
import type { AuthThrottle } from './auth-throttle.ts';
import { getCatalog } from './catalog.ts';
import { provision } from './provision.ts';
import { update } from './update.ts';
import { deprovision } from './deprovision.ts';
import { fetchInstance } from './fetch-instance.ts';
import { instanceLastOperation } from './instance-last-operation.ts';
import { bind } from './bind.ts';
import { unbind } from './unbind.ts';
import { fetchBinding } from './fetch-binding.ts';
import { bindingLastOperation } from './binding-last-operation.ts';

export const BODY_LIMIT = '1mb';

export interface AppDeps {
  service: BrokerService;
  credentials: Credential[];
  log: Logger;
  metrics: Metrics;
  /** Resolves when the database is reachable and migrated; rejects or returns a reason otherwise (shown to anyone: no driver text). */
  readiness: () => Promise<string | undefined>;
  /** Counts refused credentials per client (shared with the fast path). */
  authThrottle: AuthThrottle;
  /** Extra gauges refreshed before a scrape (the caller bounds how often they really hit the database). */
  beforeScrape?: () => Promise<void>;
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.use(requestIdentity());
  app.use(accessLog(deps.log, deps.metrics));

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
  const withBody: RequestHandler = (req, res, next) => json(req, res, next);
  const s = deps.service;
  const v2 = express.Router({ caseSensitive: true, strict: false });
  v2.use(apiVersion(), basicAuth(deps.credentials, deps.authThrottle, deps.log), identities());
  v2.get('/catalog', getCatalog(s.catalog));
  v2.put('/service_instances/:instance_id', withBody, provision(s));
  v2.patch('/service_instances/:instance_id', withBody, update(s));
  v2.delete('/service_instances/:instance_id', deprovision(s));
  v2.get('/service_instances/:instance_id', fetchInstance(s));
  v2.get('/service_instances/:instance_id/last_operation', instanceLastOperation(s));
  v2.put('/service_instances/:instance_id/service_bindings/:binding_id', withBody, bind(s));
  v2.delete('/service_instances/:instance_id/service_bindings/:binding_id', unbind(s));
  v2.get('/service_instances/:instance_id/service_bindings/:binding_id', fetchBinding(s));
  v2.get('/service_instances/:instance_id/service_bindings/:binding_id/last_operation', bindingLastOperation(s));
  app.use('/v2', v2);

  app.use((req, _res, next) => next(errors.notFound(`No route for ${req.method} ${req.path}.`)));
  app.use(errorHandler(deps.log));
  return app;
}
