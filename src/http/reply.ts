// What a route answers, independent of the server that sends it: Express
// (app.ts) and the lean router (hot-path.ts) send the same replies, and
// observe every request the same way (metrics and the access log line).
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { RequestMeta } from '../broker/types.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { OsbError } from '../osb/errors.ts';

export interface Reply {
  status: number;
  /** JSON-serialised, or sent as it is when already bytes (the catalog). */
  body: unknown;
  headers?: Record<string, string>;
}

/** What a route is given: its path parameters, the query, the parsed body and the checked request (checks.ts). */
export interface RouteInput {
  params: Record<string, string>;
  query: Record<string, unknown>;
  body: unknown;
  meta: RequestMeta;
}

export type Route = (input: RouteInput) => Reply | Promise<Reply>;

export function errorReply(err: OsbError): Reply {
  return { status: err.status, body: err.body(), headers: err.headers };
}

/** Sends a reply on a bare node:http response (Express's res.json does the same). */
export function send(res: ServerResponse, reply: Reply): void {
  const body = Buffer.isBuffer(reply.body) ? reply.body : JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    ...reply.headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
  });
  res.end(body);
}

/** The metric children of one route, method and status, looked up once (prom-client hashes labels on every call otherwise). */
const children = new WeakMap<Metrics, Map<string, { count: { inc(): void }; time: { observe(v: number): void } }>>();

/** Counts and times a request, and logs it (at error for a 5xx). `route` is the route pattern, or "unmatched". */
export function observe(
  log: Logger,
  metrics: Metrics,
  r: { method: string; route: string; status: number; started: bigint; requestIdentity: string | undefined },
): void {
  const seconds = Number(process.hrtime.bigint() - r.started) / 1e9;
  let byKey = children.get(metrics);
  if (!byKey) children.set(metrics, (byKey = new Map()));
  const key = `${r.route} ${r.method} ${r.status}`;
  let child = byKey.get(key);
  if (!child) {
    child = {
      count: metrics.httpRequests.labels({ route: r.route, method: r.method, status: String(r.status) }),
      time: metrics.httpDuration.labels({ route: r.route, method: r.method }),
    };
    byKey.set(key, child);
  }
  child.count.inc();
  child.time.observe(seconds);
  const level = r.status >= 500 ? 'error' : 'debug';
  if (log.isLevelEnabled(level)) {
    log[level]({ method: r.method, route: r.route, status: r.status, ms: Math.round(seconds * 1000), requestIdentity: r.requestIdentity }, 'request');
  }
}
