// The two requests platforms send most (catalog fetches and last_operation
// polls) are answered here without Express's router and middleware stack,
// with the same checks in the same order. Anything unusual (a failed version
// or auth check, identity headers, odd URLs) is left to Express.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { BrokerService } from '../service/broker-service.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Credential } from '../config.ts';
import { retryAfterSeconds } from './retry-after.ts';
import { unescape } from 'node:querystring';
import { credentialMatcher, idProblem, toOsbError } from './middleware.ts';
import { MAX_MINOR, MIN_MINOR } from '../osb/versions.ts';
import { errors } from '../osb/errors.ts';

const LAST_OPERATION = /^\/v2\/service_instances\/([^/?]+)\/last_operation(?:\?operation=([^&=]+))?$/;
const LAST_OPERATION_ROUTE = '/service_instances/:instance_id/last_operation';

export function createFastPath(deps: { service: BrokerService; credentials: Credential[]; metrics: Metrics; log: Logger }) {
  const authorized = credentialMatcher(deps.credentials);
  const send = (res: ServerResponse, route: string, status: number, body: string | Buffer, headers: Record<string, string>) => {
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)), ...headers });
    res.end(body);
    deps.metrics.httpRequests.inc({ route, method: 'GET', status: String(status) });
  };

  /** Returns true when it took the request. */
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'GET' || req.url === undefined || req.headers['x-broker-api-originating-identity'] !== undefined) return false;
    const isCatalog = req.url === '/v2/catalog';
    const lastOp = isCatalog ? null : LAST_OPERATION.exec(req.url);
    if (!isCatalog && !lastOp) return false;
    const m = /^2\.(\d{1,3})$/.exec(req.headers['x-broker-api-version'] as string ?? '');
    const minor = m ? Number(m[1]) : NaN;
    if (!(minor >= MIN_MINOR && minor <= MAX_MINOR) || !authorized(req.headers.authorization)) return false;
    let instanceId: string;
    let operation: string | undefined;
    try {
      instanceId = lastOp ? decodeURIComponent(lastOp[1]!) : '';
      // Decoded as Express's query parser does ("+" is a space).
      operation = lastOp?.[2] === undefined ? undefined : unescape(lastOp[2].replaceAll('+', ' '));
    } catch {
      return false;
    }
    if (lastOp && (idProblem(instanceId) || (operation !== undefined && idProblem(operation)))) return false;

    const headers: Record<string, string> = {};
    const requestIdentity = req.headers['x-broker-api-request-identity'];
    if (typeof requestIdentity === 'string' && requestIdentity !== '') headers['X-Broker-API-Request-Identity'] = requestIdentity.slice(0, 256);
    if (isCatalog) {
      send(res, '/catalog', 200, deps.service.catalog.body(minor), headers);
      return true;
    }
    deps.service.lastOperation(instanceId, operation).then(
      (result) => {
        if (result === 'gone') throw errors.gone();
        if (result.view.state === 'in progress') headers['Retry-After'] = String(retryAfterSeconds(result));
        send(res, LAST_OPERATION_ROUTE, 200, JSON.stringify(result.view), headers);
      },
    ).catch((err: unknown) => {
      const osb = toOsbError(err, deps.log, LAST_OPERATION_ROUTE);
      send(res, LAST_OPERATION_ROUTE, osb.status, JSON.stringify(osb.body()), { ...headers, ...osb.headers });
    });
    return true;
  };
}
