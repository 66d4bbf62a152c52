// Errors as values, below every layer. OsbError is an OSB error response
// (status, error code, description); the broker throws them and one place,
// src/http/error-handler.ts, turns anything thrown into one. PermanentError is
// a provisioner's "retrying cannot fix this" (see provisioners/provisioner.ts).

/**
 * What an OSB error response says, as the broker sends it and the client
 * (src/osb-client/) reads it. A pure type, so the client can share it and still
 * load nothing of the server.
 */
export interface OsbErrorFields {
  readonly status: number;
  readonly error: string | undefined;
  readonly description: string | undefined;
  readonly instanceUsable: boolean | undefined;
  readonly updateRepeatable: boolean | undefined;
}

// The fields above are declared once, there; the class gets them by merging.
export interface OsbError extends OsbErrorFields {}
export class OsbError extends Error {
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    description: string | undefined,
    opts: { error?: string; instanceUsable?: boolean; updateRepeatable?: boolean; headers?: Record<string, string> } = {},
  ) {
    super(description ?? opts.error ?? `HTTP ${status}`);
    this.name = 'OsbError';
    Object.assign(this, { status, error: opts.error, description, instanceUsable: opts.instanceUsable, updateRepeatable: opts.updateRepeatable } satisfies OsbErrorFields);
    this.headers = opts.headers ?? {};
  }

  body(): Record<string, unknown> {
    const body: Record<string, unknown> = {};
    if (this.error) body.error = this.error;
    if (this.description) body.description = this.description;
    if (this.instanceUsable !== undefined) body.instance_usable = this.instanceUsable;
    if (this.updateRepeatable !== undefined) body.update_repeatable = this.updateRepeatable;
    return body;
  }
}

// Kubernetes Service Catalog matches these two descriptions literally.
export const ASYNC_REQUIRED_DESCRIPTION = 'This service plan requires client support for asynchronous service operations.';
export const CONCURRENCY_DESCRIPTION = 'The Service Broker does not support concurrent requests that mutate the same resource.';

export const errors = {
  badRequest: (description: string) => new OsbError(400, description, { error: 'BadRequest' }),
  /** Says whether credentials were missing or refused, never which part of them was wrong. */
  unauthorized: (credentialsSent = false, scheme: 'basic' | 'bearer' = 'basic') =>
    new OsbError(
      401,
      !credentialsSent
        ? 'Authentication is required: send HTTP basic credentials that this broker accepts.'
        : scheme === 'bearer'
          ? 'The bearer token sent is not accepted by this broker: check the token the broker was registered with (it may have expired or been rotated).'
          : 'The credentials sent are not accepted by this broker: check the username and password the broker was registered with.',
      { error: 'Unauthorized', headers: { 'WWW-Authenticate': 'Basic realm="berth", charset="UTF-8"' } },
    ),
  /** A token the cluster vouches for, of an identity the operator did not allow (BERTH_TOKENREVIEW_ALLOWED). */
  identityNotAllowed: (identity: string) =>
    new OsbError(401, `The bearer token is valid for ${identity.slice(0, 300)}, but that identity is not allowed to use this broker; ask its operator to add it to BERTH_TOKENREVIEW_ALLOWED.`, {
      error: 'Unauthorized',
      headers: { 'WWW-Authenticate': 'Basic realm="berth", charset="UTF-8"' },
    }),
  /** The bearer token could not be checked (the Kubernetes API server did not answer): not the client's fault. */
  authenticationUnavailable: () =>
    new OsbError(503, 'The broker cannot check bearer tokens right now (its Kubernetes API server did not answer); retry shortly.', {
      error: 'ServiceUnavailable',
      headers: { 'Retry-After': '5' },
    }),
  tooManyAuthFailures: (retryAfterSeconds: number) =>
    new OsbError(429, `Too many failed authentication attempts from this client; retry after ${retryAfterSeconds} s.`, {
      error: 'TooManyRequests',
      headers: { 'Retry-After': String(retryAfterSeconds) },
    }),
  notFound: (description: string) => new OsbError(404, description, { error: 'NotFound' }),
  /** Berth's own endpoints (/berth/v1): a client tells this apart from a broker without the endpoint by the error code. */
  instanceNotFound: (instanceId: string) => new OsbError(404, `Service instance ${instanceId} does not exist.`, { error: 'InstanceNotFound' }),
  conflict: (description: string) => new OsbError(409, description, { error: 'Conflict' }),
  /** 410 bodies are `{}` by the spec's examples. */
  gone: () => new OsbError(410, undefined),
  payloadTooLarge: (limit: string) => new OsbError(413, `The request body is larger than ${limit}.`, { error: 'PayloadTooLarge' }),
  versionMissing: () =>
    new OsbError(400, 'The X-Broker-API-Version header is required; this broker supports 2.13 to 2.17.', { error: 'MissingAPIVersion' }),
  versionUnsupported: (got: string) =>
    new OsbError(412, `X-Broker-API-Version ${got} is not supported; this broker supports 2.13 to 2.17.`, { error: 'UnsupportedAPIVersion' }),
  versionTooOld: (what: string, minor: number) =>
    new OsbError(412, `${what} requires X-Broker-API-Version 2.${minor} or later.`, { error: 'UnsupportedAPIVersion' }),
  asyncRequired: () => new OsbError(422, ASYNC_REQUIRED_DESCRIPTION, { error: 'AsyncRequired' }),
  concurrency: () => new OsbError(422, CONCURRENCY_DESCRIPTION, { error: 'ConcurrencyError' }),
  /** A create halted by the platform's own delete of the same resource: it lost to a concurrent request (OSB §Blocking Operations). */
  halted: (description: string) => new OsbError(422, description, { error: 'ConcurrencyError' }),
  requiresApp: () =>
    new OsbError(422, 'This service supports generation of credentials through binding an application only: send bind_resource.app_guid.', {
      error: 'RequiresApp',
    }),
  maintenanceInfoConflict: (want: string | undefined, got: string) =>
    new OsbError(
      422,
      want
        ? `maintenance_info.version ${got} does not match the catalog's ${want}; fetch the catalog again.`
        : `This plan has no maintenance_info, but the request sent version ${got}; fetch the catalog again.`,
      { error: 'MaintenanceInfoConflict' },
    ),
  /** An update to a catalog version below the instance's own: Berth never downgrades (README, "Upgrades"). */
  maintenanceDowngrade: (instanceId: string, instanceVersion: string, catalogVersion: string) =>
    new OsbError(
      422,
      `Service instance ${instanceId} is at maintenance version ${instanceVersion}, newer than the catalog's ${catalogVersion}; Berth does not downgrade instances. ` +
        `Put maintenance_info.version ${instanceVersion} or later back in the catalog, or leave maintenance_info out of the update.`,
      { error: 'MaintenanceInfoConflict' },
    ),
  unprocessable: (description: string, opts: { instanceUsable?: boolean; updateRepeatable?: boolean } = {}) =>
    new OsbError(422, description, { error: 'UnprocessableEntity', ...opts }),
  unavailable: () =>
    new OsbError(503, 'The broker cannot reach its database right now; retry shortly.', {
      error: 'ServiceUnavailable',
      headers: { 'Retry-After': '5' },
    }),
  /** A stored secret the broker cannot open (key removed, or the value altered): the operator's to fix, said plainly. */
  undecryptable: (description: string) => new OsbError(500, description, { error: 'InternalError' }),
  internal: (id: string) => new OsbError(500, `Internal error (reference ${id}); the broker's logs have the details.`, { error: 'InternalError' }),
};

/**
 * A failure that retrying cannot fix. `message` is shown to the platform's user.
 * `causedByRequest`: the request's data is why (the client must change it), not
 * the broker or its servers; a synchronous request then gets 400, not 500.
 */
export class PermanentError extends Error {
  readonly instanceUsable: boolean | undefined;
  readonly updateRepeatable: boolean | undefined;
  readonly causedByRequest: boolean;
  constructor(message: string, opts: { instanceUsable?: boolean; updateRepeatable?: boolean; causedByRequest?: boolean; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = 'PermanentError';
    this.instanceUsable = opts.instanceUsable;
    this.updateRepeatable = opts.updateRepeatable;
    this.causedByRequest = opts.causedByRequest ?? false;
  }
}

/** Whether `err` is a permanent failure the request's data caused. */
export function causedByRequest(err: unknown): err is PermanentError {
  return err instanceof PermanentError && err.causedByRequest;
}
