// A lean router for the two requests platforms send most: GET /v2/catalog and
// GET …/last_operation (with any query: Cloud Foundry polls with
// ?operation=…&plan_id=…&service_id=…). Express's per-request cost is a large
// share of these cheap requests (bench/broker.bench.ts measures it), so they
// are routed here, but nothing is answered differently: the same checks
// (checks.ts), routes (routes/*.ts), error mapping (error-handler.ts) and
// access log and metrics (reply.ts) as every other request. Anything else,
// including a URL Express would decode differently, is left to Express.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import type { Logger } from 'pino';
import type { RequestMeta } from '../broker/types.ts';
import type { Metrics } from '../observability/metrics.ts';
import { errors } from '../osb/errors.ts';
import { clientOf } from './auth-throttle.ts';
import { checkRequest, requestIdentityOf, type Authenticator } from './checks.ts';
import { toOsbError } from './error-handler.ts';
import { errorReply, observe, send, type Reply, type Route } from './reply.ts';

const CATALOG = /^\/v2\/catalog\/?$/;
const LAST_OPERATION = /^\/v2\/service_instances\/([^/]+)\/last_operation\/?$/;

export function createHotPath(deps: { routes: { catalog: Route; instanceLastOperation: Route }; auth: Authenticator; log: Logger; metrics: Metrics }) {
  const answer = (req: IncomingMessage, res: ServerResponse, pattern: string, route: Route, params: Record<string, string>, query: string) => {
    const started = process.hrtime.bigint();
    const requestIdentity = requestIdentityOf(req.headers);
    const finish = (reply: Reply) => {
      if (requestIdentity) reply = { ...reply, headers: { ...reply.headers, 'X-Broker-API-Request-Identity': requestIdentity } };
      send(res, reply);
      observe(deps.log, deps.metrics, { method: 'GET', route: pattern, status: reply.status, started, requestIdentity });
    };
    const fail = (err: unknown) => finish(errorReply(toOsbError(err, deps.log, pattern)));
    const run = (meta: RequestMeta) => {
      const reply = route({ params: decodeParams(params), query: query === '' ? {} : parseQuery(query), body: undefined, meta });
      // The catalog answers at once: no promise to wait for.
      if (reply instanceof Promise) reply.then(finish, fail).catch((err: unknown) => deps.log.error({ err }, 'answering a request failed'));
      else finish(reply);
    };
    try {
      const meta = checkRequest(deps.auth, { headers: req.headers, url: req.url!, client: clientOf(req), socket: req.socket });
      // A promise only while a bearer token is being reviewed by the cluster.
      if (meta instanceof Promise) meta.then(run).catch(fail);
      else run(meta);
    } catch (err) {
      fail(err);
    }
  };

  /** Returns true when it took the request. */
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'GET' || req.url === undefined) return false;
    const q = req.url.indexOf('?');
    const path = q === -1 ? req.url : req.url.slice(0, q);
    const query = q === -1 ? '' : req.url.slice(q + 1);
    if (CATALOG.test(path)) {
      answer(req, res, '/catalog', deps.routes.catalog, {}, query);
      return true;
    }
    const m = LAST_OPERATION.exec(path);
    if (!m) return false;
    answer(req, res, '/service_instances/:instance_id/last_operation', deps.routes.instanceLastOperation, { instance_id: m[1]! }, query);
    return true;
  };
}

/** Path parameters decoded as Express decodes them (a malformed escape is a 400). */
function decodeParams(params: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) {
    try {
      out[k] = decodeURIComponent(v);
    } catch {
      throw errors.badRequest('The request is malformed.');
    }
  }
  return out;
}
