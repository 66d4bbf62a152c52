// The OSB client's transport and calls: node:http/node:https with keep-alive
// agents (so a custom CA is a plain `ca` option and connections are reused), one
// request function, and one method per OSB endpoint. See index.ts for the API.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
// A pure type (erased at load): the client still loads nothing of the broker.
import type { OsbErrorFields } from '../osb/errors.ts';
import type {
  AsyncCallOptions,
  BindRequest,
  BindResult,
  BindingResource,
  CallOptions,
  Catalog,
  CatalogIds,
  DeleteResult,
  InstanceResource,
  JsonObject,
  LastOperation,
  LastOperationQuery,
  OriginatingIdentity,
  ProvisionedResources,
  ProvisionRequest,
  ProvisionResult,
  UpdateRequest,
  UpdateResult,
} from './types.ts';

export interface OsbClientOptions {
  /** The broker's base URL, e.g. `https://broker.example.com` (paths are appended: `/v2/catalog`). */
  url: string;
  /** HTTP basic credentials, or a bearer token; omit for a broker without authentication. */
  auth?: { username: string; password: string } | { bearerToken: string };
  /** X-Broker-API-Version; default `2.17`. */
  apiVersion?: string;
  /** PEM of the CA(s) to trust for an `https:` broker, instead of the system store. */
  caPem?: string;
  /** Per-request timeout in milliseconds (connect to last body byte); default 60 000. */
  timeoutMs?: number;
  /** Sent on every call unless a call overrides it. */
  originatingIdentity?: OriginatingIdentity;
  /** Keep-alive sockets kept per host; default 16. */
  maxSockets?: number;
}

/**
 * An answer outside the OSB success statuses. `error` and `description` are the
 * broker's, untruncated; `body` is the parsed body (or undefined when it was not
 * JSON, then `text` holds it).
 */
// The fields of OsbErrorFields, declared once there; the class gets them by merging.
export interface OsbError extends OsbErrorFields {}
export class OsbError extends Error {
  readonly retryAfterSeconds: number | undefined;
  readonly body: JsonObject | undefined;
  readonly text: string;
  readonly method: string;
  readonly path: string;

  constructor(init: { status: number; method: string; path: string; body: JsonObject | undefined; text: string; retryAfterSeconds: number | undefined }) {
    const error = typeof init.body?.error === 'string' ? init.body.error : undefined;
    const description = typeof init.body?.description === 'string' ? init.body.description : undefined;
    super(`${init.method} ${init.path}: HTTP ${init.status}${error ? ` ${error}` : ''}${description ? `: ${description}` : ''}`);
    this.name = 'OsbError';
    Object.assign(this, {
      status: init.status,
      error,
      description,
      instanceUsable: typeof init.body?.instance_usable === 'boolean' ? init.body.instance_usable : undefined,
      updateRepeatable: typeof init.body?.update_repeatable === 'boolean' ? init.body.update_repeatable : undefined,
    } satisfies OsbErrorFields);
    this.retryAfterSeconds = init.retryAfterSeconds;
    this.body = init.body;
    this.text = init.text;
    this.method = init.method;
    this.path = init.path;
  }

  /** The broker's own words when it gave any, else the status line. */
  get brokerMessage(): string {
    return this.description ?? this.error ?? `the broker answered HTTP ${this.status}`;
  }
}

/** The broker could not be reached or did not answer in time: no HTTP status at all. */
export class OsbTransportError extends Error {
  readonly kind: 'timeout' | 'network' | 'aborted';
  readonly method: string;
  readonly path: string;

  constructor(kind: 'timeout' | 'network' | 'aborted', method: string, path: string, cause?: unknown) {
    const reason = kind === 'timeout' ? 'no answer within the timeout' : kind === 'aborted' ? 'aborted' : `${(cause as Error)?.message ?? 'network error'}`;
    super(`${method} ${path}: ${reason}`, { cause });
    this.name = 'OsbTransportError';
    this.kind = kind;
    this.method = method;
    this.path = path;
  }
}

/** An answer whatever its status, as `send` returns it. */
export interface RawAnswer {
  status: number;
  body: JsonObject | undefined;
  text: string;
  retryAfterSeconds: number | undefined;
}

/** Retry-After as seconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

const seg = encodeURIComponent;

export class OsbClient {
  readonly url: URL;
  readonly apiVersion: string;
  readonly #authorization: string | undefined;
  readonly #timeoutMs: number;
  readonly #identity: OriginatingIdentity | undefined;
  readonly #agent: http.Agent;

  constructor(opts: OsbClientOptions) {
    this.url = new URL(opts.url.endsWith('/') ? opts.url : `${opts.url}/`);
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') throw new TypeError(`broker URL must be http: or https:, not ${this.url.protocol}`);
    this.apiVersion = opts.apiVersion ?? '2.17';
    this.#timeoutMs = opts.timeoutMs ?? 60_000;
    this.#identity = opts.originatingIdentity;
    if (opts.auth && 'bearerToken' in opts.auth) this.#authorization = `Bearer ${opts.auth.bearerToken}`;
    else if (opts.auth) this.#authorization = 'Basic ' + Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64');
    const agentOptions = { keepAlive: true, maxSockets: opts.maxSockets ?? 16 };
    this.#agent = this.url.protocol === 'https:' ? new https.Agent({ ...agentOptions, ca: opts.caPem }) : new http.Agent(agentOptions);
  }

  /** Closes the kept-alive sockets. */
  close(): void {
    this.#agent.destroy();
  }

  // ---- catalog ----

  async catalog(opts: CallOptions = {}): Promise<Catalog> {
    const a = await this.#expect('GET', 'v2/catalog', undefined, opts, [200]);
    return { services: Array.isArray(a.body?.services) ? (a.body!.services as Catalog['services']) : [] };
  }

  // ---- instances ----

  async provision(instanceId: string, request: ProvisionRequest, opts: AsyncCallOptions = {}): Promise<ProvisionResult> {
    const a = await this.#expect('PUT', `v2/service_instances/${seg(instanceId)}${incomplete(opts)}`, request, opts, [200, 201, 202]);
    return { ...(a.body as object), ...answer(a), outcome: a.status === 201 ? 'created' : a.status === 200 ? 'exists' : 'accepted' };
  }

  async update(instanceId: string, request: UpdateRequest, opts: AsyncCallOptions = {}): Promise<UpdateResult> {
    const a = await this.#expect('PATCH', `v2/service_instances/${seg(instanceId)}${incomplete(opts)}`, request, opts, [200, 202]);
    return { ...(a.body as object), ...answer(a), outcome: a.status === 200 ? 'updated' : 'accepted' };
  }

  async deprovision(instanceId: string, ids: CatalogIds, opts: AsyncCallOptions = {}): Promise<DeleteResult> {
    const q = query({ service_id: ids.service_id, plan_id: ids.plan_id, accepts_incomplete: opts.acceptsIncomplete === false ? undefined : 'true' });
    const a = await this.#expect('DELETE', `v2/service_instances/${seg(instanceId)}${q}`, undefined, opts, [200, 202, 410]);
    return { ...pick(a.body, ['operation']), ...answer(a), outcome: deleteOutcome(a.status) };
  }

  async fetchInstance(instanceId: string, ids: Partial<CatalogIds> = {}, opts: CallOptions = {}): Promise<InstanceResource> {
    const a = await this.#expect('GET', `v2/service_instances/${seg(instanceId)}${query(ids)}`, undefined, opts, [200]);
    return { ...(a.body as object), ...answer(a) };
  }

  async instanceLastOperation(instanceId: string, q: LastOperationQuery = {}, opts: CallOptions = {}): Promise<LastOperation> {
    const a = await this.#expect('GET', `v2/service_instances/${seg(instanceId)}/last_operation${query(q)}`, undefined, opts, [200, 410]);
    return lastOperation(a);
  }

  // ---- bindings ----

  async bind(instanceId: string, bindingId: string, request: BindRequest, opts: AsyncCallOptions = {}): Promise<BindResult> {
    const path = `v2/service_instances/${seg(instanceId)}/service_bindings/${seg(bindingId)}${incomplete(opts)}`;
    const a = await this.#expect('PUT', path, request, opts, [200, 201, 202]);
    return { ...(a.body as object), ...answer(a), outcome: a.status === 201 ? 'created' : a.status === 200 ? 'exists' : 'accepted' };
  }

  async unbind(instanceId: string, bindingId: string, ids: CatalogIds, opts: AsyncCallOptions = {}): Promise<DeleteResult> {
    const q = query({ service_id: ids.service_id, plan_id: ids.plan_id, accepts_incomplete: opts.acceptsIncomplete === false ? undefined : 'true' });
    const a = await this.#expect('DELETE', `v2/service_instances/${seg(instanceId)}/service_bindings/${seg(bindingId)}${q}`, undefined, opts, [200, 202, 410]);
    return { ...pick(a.body, ['operation']), ...answer(a), outcome: deleteOutcome(a.status) };
  }

  async fetchBinding(instanceId: string, bindingId: string, ids: Partial<CatalogIds> = {}, opts: CallOptions = {}): Promise<BindingResource> {
    const a = await this.#expect('GET', `v2/service_instances/${seg(instanceId)}/service_bindings/${seg(bindingId)}${query(ids)}`, undefined, opts, [200]);
    return { ...(a.body as object), ...answer(a) };
  }

  async bindingLastOperation(instanceId: string, bindingId: string, q: LastOperationQuery = {}, opts: CallOptions = {}): Promise<LastOperation> {
    const path = `v2/service_instances/${seg(instanceId)}/service_bindings/${seg(bindingId)}/last_operation${query(q)}`;
    return lastOperation(await this.#expect('GET', path, undefined, opts, [200, 410]));
  }

  // ---- Berth's own endpoint (not OSB) ----

  /**
   * What a Berth broker's provisioner made for the instance, looked at now (GET /berth/v1/service_instances/:id/resources).
   * Undefined when the broker has no such endpoint (any broker but Berth: 404/405/501 without Berth's
   * `InstanceNotFound`); an instance Berth does not know is an OsbError 404 with error `InstanceNotFound`.
   */
  async provisionedResources(instanceId: string, opts: CallOptions = {}): Promise<ProvisionedResources | undefined> {
    const path = `berth/v1/service_instances/${seg(instanceId)}/resources`;
    const a = await this.#request('GET', path, undefined, opts);
    if (a.status === 200) return Array.isArray(a.body?.resources) ? (a.body as unknown as ProvisionedResources) : undefined;
    if ((a.status === 404 && a.body?.error !== 'InstanceNotFound') || a.status === 405 || a.status === 501) return undefined;
    throw new OsbError({ ...a, method: 'GET', path: `/${path}` });
  }

  // ---- anything else ----

  /**
   * Any request, answered whatever its status (no OsbError): for conformance checks (`berth doctor`) that
   * send what a platform must not. `body` is sent as is when it is a string (e.g. malformed JSON), else as JSON;
   * a header given as undefined in `opts.headers` is left out (e.g. X-Broker-API-Version).
   */
  send(method: string, path: string, body?: unknown, opts: CallOptions = {}): Promise<RawAnswer> {
    return this.#request(method, path.replace(/^\//, ''), typeof body === 'string' ? Buffer.from(body) : body, opts);
  }

  // ---- transport ----

  async #expect(method: string, path: string, body: unknown, opts: CallOptions, ok: number[]): Promise<RawAnswer> {
    const a = await this.#request(method, path, body, opts);
    if (!ok.includes(a.status)) throw new OsbError({ ...a, method, path: `/${path}` });
    return a;
  }

  #request(method: string, path: string, body: unknown, opts: CallOptions): Promise<RawAnswer> {
    const target = new URL(path, this.url);
    const headers: Record<string, string> = {
      'X-Broker-API-Version': this.apiVersion,
      'X-Broker-API-Request-Identity': opts.requestIdentity ?? randomUUID(),
      Accept: 'application/json',
    };
    if (this.#authorization) headers.Authorization = this.#authorization;
    const identity = opts.originatingIdentity === undefined ? this.#identity : opts.originatingIdentity;
    if (identity) headers['X-Broker-API-Originating-Identity'] = `${identity.platform} ${Buffer.from(JSON.stringify(identity.value)).toString('base64')}`;
    const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    if (payload) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(payload.length);
    }
    Object.assign(headers, opts.headers);
    for (const [name, value] of Object.entries(headers)) if (value === undefined) delete headers[name];
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    const shownPath = `/${path.split('?')[0]}`;
    const send = target.protocol === 'https:' ? https.request : http.request;

    return new Promise<RawAnswer>((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | undefined, value?: RawAnswer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(value!);
      };
      const req = send(target, { method, headers, agent: this.#agent }, (res) => {
        opts.onHeaders?.(res.headers);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => finish(new OsbTransportError('network', method, shownPath, err)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: JsonObject | undefined;
          try {
            const value = text ? JSON.parse(text) : undefined;
            parsed = value && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
          } catch {
            parsed = undefined;
          }
          const retryAfter = res.headers['retry-after'];
          finish(undefined, { status: res.statusCode ?? 0, body: parsed, text, retryAfterSeconds: parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter) });
        });
      });
      const timer = setTimeout(() => {
        finish(new OsbTransportError('timeout', method, shownPath));
        req.destroy();
      }, timeoutMs);
      const onAbort = () => {
        finish(new OsbTransportError('aborted', method, shownPath, opts.signal?.reason));
        req.destroy();
      };
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err) => finish(new OsbTransportError('network', method, shownPath, err)));
      req.end(payload);
    });
  }
}

function incomplete(opts: AsyncCallOptions): string {
  return opts.acceptsIncomplete === false ? '' : '?accepts_incomplete=true';
}

function query(values: { [key: string]: string | undefined } | LastOperationQuery | Partial<CatalogIds>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (typeof v === 'string') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

function answer(a: RawAnswer): { status: number; retryAfterSeconds: number | undefined } {
  return { status: a.status, retryAfterSeconds: a.retryAfterSeconds };
}

function pick(body: JsonObject | undefined, keys: string[]): JsonObject {
  const out: JsonObject = {};
  for (const k of keys) if (body?.[k] !== undefined) out[k] = body[k];
  return out;
}

function deleteOutcome(status: number): 'deleted' | 'accepted' | 'gone' {
  return status === 200 ? 'deleted' : status === 202 ? 'accepted' : 'gone';
}

function lastOperation(a: RawAnswer): LastOperation {
  if (a.status === 410) return { ...answer(a), state: 'gone' };
  const b = a.body ?? {};
  const state = b.state === 'succeeded' || b.state === 'failed' ? b.state : 'in progress';
  return {
    ...answer(a),
    state,
    description: typeof b.description === 'string' ? b.description : undefined,
    instance_usable: typeof b.instance_usable === 'boolean' ? b.instance_usable : undefined,
    update_repeatable: typeof b.update_repeatable === 'boolean' ? b.update_repeatable : undefined,
  };
}
