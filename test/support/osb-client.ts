// A small OSB client for tests: raw requests plus the lifecycle helpers.
export interface Reply {
  status: number;
  body: any;
  headers: Headers;
  text: string;
}

export class OsbClient {
  readonly url: string;
  readonly auth: string;
  version: string;

  constructor(url: string, credentials: { username: string; password: string }, version = '2.17') {
    this.url = url;
    this.auth = 'Basic ' + Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
    this.version = version;
  }

  async request(
    method: string,
    path: string,
    opts: { body?: unknown; rawBody?: string | Buffer; headers?: Record<string, string | undefined> } = {},
  ): Promise<Reply> {
    const headers: Record<string, string> = { 'X-Broker-API-Version': this.version, Authorization: this.auth };
    if (opts.body !== undefined || opts.rawBody !== undefined) headers['Content-Type'] = 'application/json';
    for (const [k, v] of Object.entries(opts.headers ?? {})) {
      if (v === undefined) delete headers[k];
      else headers[k] = v;
    }
    const res = await fetch(this.url + path, {
      method,
      headers,
      body: opts.rawBody ?? (opts.body !== undefined ? JSON.stringify(opts.body) : undefined),
    });
    const text = await res.text();
    let body: any;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    return { status: res.status, body, headers: res.headers, text };
  }

  provision(id: string, body: object, acceptsIncomplete = true) {
    return this.request('PUT', `/v2/service_instances/${encodeURIComponent(id)}${acceptsIncomplete ? '?accepts_incomplete=true' : ''}`, { body });
  }

  update(id: string, body: object, acceptsIncomplete = true) {
    return this.request('PATCH', `/v2/service_instances/${encodeURIComponent(id)}${acceptsIncomplete ? '?accepts_incomplete=true' : ''}`, { body });
  }

  deprovision(id: string, serviceId: string, planId: string, acceptsIncomplete = true) {
    const q = new URLSearchParams({ service_id: serviceId, plan_id: planId });
    if (acceptsIncomplete) q.set('accepts_incomplete', 'true');
    return this.request('DELETE', `/v2/service_instances/${encodeURIComponent(id)}?${q}`);
  }

  bind(id: string, bindingId: string, body: object, acceptsIncomplete = true) {
    return this.request(
      'PUT',
      `/v2/service_instances/${encodeURIComponent(id)}/service_bindings/${encodeURIComponent(bindingId)}${acceptsIncomplete ? '?accepts_incomplete=true' : ''}`,
      { body },
    );
  }

  unbind(id: string, bindingId: string, serviceId: string, planId: string, acceptsIncomplete = true) {
    const q = new URLSearchParams({ service_id: serviceId, plan_id: planId });
    if (acceptsIncomplete) q.set('accepts_incomplete', 'true');
    return this.request('DELETE', `/v2/service_instances/${encodeURIComponent(id)}/service_bindings/${encodeURIComponent(bindingId)}?${q}`);
  }

  fetchBinding(id: string, bindingId: string) {
    return this.request('GET', `/v2/service_instances/${encodeURIComponent(id)}/service_bindings/${encodeURIComponent(bindingId)}`);
  }

  lastOperation(id: string, operation?: string) {
    const q = operation ? `?operation=${encodeURIComponent(operation)}` : '';
    return this.request('GET', `/v2/service_instances/${encodeURIComponent(id)}/last_operation${q}`);
  }

  bindingLastOperation(id: string, bindingId: string, operation?: string) {
    const q = operation ? `?operation=${encodeURIComponent(operation)}` : '';
    return this.request('GET', `/v2/service_instances/${encodeURIComponent(id)}/service_bindings/${encodeURIComponent(bindingId)}/last_operation${q}`);
  }

  /** Polls until the operation leaves "in progress"; returns the final last_operation body (or 410). */
  async waitForInstance(id: string, operation: string | undefined, timeoutMs = 120_000): Promise<Reply> {
    return this.#wait(() => this.lastOperation(id, operation), timeoutMs);
  }

  async waitForBinding(id: string, bindingId: string, operation: string | undefined, timeoutMs = 120_000): Promise<Reply> {
    return this.#wait(() => this.bindingLastOperation(id, bindingId, operation), timeoutMs);
  }

  async #wait(poll: () => Promise<Reply>, timeoutMs: number): Promise<Reply> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      let r: Reply | undefined;
      try {
        r = await poll();
      } catch {
        r = undefined;
      }
      if (r && (r.status === 410 || (r.status === 200 && r.body?.state !== 'in progress'))) return r;
      if (Date.now() > until) throw new Error(`operation still unfinished after ${timeoutMs} ms: ${r?.status} ${r?.text}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }
}
