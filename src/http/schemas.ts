// The shape of each endpoint's input (path parameters, query, body) as zod
// schemas; the broker's request types are what they produce. A request that
// does not fit is answered 400 with the first problem, in the order the fields
// are listed, described so that the client can fix it. Unknown body fields
// are ignored (OSB vendor extensions).
import { z } from 'zod';
import { errors } from '../osb/errors.ts';
import type { BindRequest, ProvisionRequest, UpdateRequest } from '../broker/types.ts';
import type { JsonObject } from '../osb/model.ts';
import { assertStorable, storableString } from './body-limits.ts';

/** Ids are stored as indexed text: bounded in bytes, no NUL, well-formed Unicode. */
const MAX_ID_BYTES = 1024;

/** Why `v` cannot be an id, or undefined. */
function idProblem(v: string): string | undefined {
  if (v === '') return 'must be a non-empty string';
  if (Buffer.byteLength(v) > MAX_ID_BYTES) return `is longer than ${MAX_ID_BYTES} bytes`;
  if (!storableString(v)) return 'contains a NUL character or invalid Unicode';
  return undefined;
}

/**
 * A field checked by `check`, which returns the value or a problem message. It runs also when the
 * key is missing (optional in), so a required field can say so, and may yield undefined.
 */
const field = <T>(check: (v: unknown) => { value: T } | { problem: string }) =>
  z
    .unknown()
    .optional()
    .transform((v, ctx): T => {
      const r = check(v);
      if ('problem' in r) {
        ctx.addIssue({ code: 'custom', message: r.problem });
        return z.NEVER;
      }
      return r.value;
    }) as unknown as z.ZodType<T, never>;

const absent = (v: unknown) => v === undefined || v === null;

const id = (name: string) =>
  field<string>((v) => {
    if (typeof v !== 'string') return { problem: `${name} must be a non-empty string.` };
    const problem = idProblem(v);
    return problem ? { problem: `${name} ${problem}.` } : { value: v };
  });

function text(name: string, required: true): z.ZodType<string, never>;
function text(name: string, required?: false): z.ZodType<string | undefined, never>;
function text(name: string, required = false) {
  return field<string | undefined>((v) => {
    if (absent(v)) return required ? { problem: `${name} is required.` } : { value: undefined };
    if (typeof v !== 'string' || v === '') return { problem: `${name} must be a non-empty string.` };
    return { value: v };
  });
}

const object = (name: string) =>
  field<JsonObject | undefined>((v) => {
    if (absent(v)) return { value: undefined };
    if (typeof v !== 'object' || Array.isArray(v)) return { problem: `${name} must be a JSON object.` };
    return { value: v as JsonObject };
  });

/**
 * organization_guid and space_guid: the OSB spec marks both REQUIRED on provision
 * (400 for missing mandatory data), though deprecated in favour of `context`.
 */
const platformGuid = (name: 'organization_guid' | 'space_guid') =>
  field<string>((v) => {
    if (absent(v)) {
      const what = name === 'organization_guid' ? 'organization (Kubernetes Service Catalog sends the cluster id)' : 'space (Kubernetes Service Catalog sends the namespace)';
      return { problem: `${name} is required when provisioning (OSB specification): send the GUID of the platform's ${what} as a non-empty string.` };
    }
    if (typeof v !== 'string' || v === '') return { problem: `${name} must be a non-empty string.` };
    return { value: v };
  });

/** maintenance_info: an object whose version is required. */
const maintenanceInfo = object('maintenance_info').pipe(
  field<string | undefined>((mi) => {
    if (mi === undefined) return { value: undefined };
    const version = (mi as JsonObject).version;
    if (absent(version)) return { problem: 'version is required.' };
    if (typeof version !== 'string' || version === '') return { problem: 'version must be a non-empty string.' };
    return { value: version };
  }),
);

/** bind_resource: an object whose app_guid and route, when present, are non-empty strings; kept whole. */
const bindResource = object('bind_resource').pipe(
  field<JsonObject | undefined>((r) => {
    if (r === undefined) return { value: undefined };
    for (const key of ['app_guid', 'route']) {
      const v = (r as JsonObject)[key];
      if (!absent(v) && (typeof v !== 'string' || v === '')) return { problem: `${key} must be a non-empty string.` };
    }
    return { value: r as JsonObject };
  }),
);

const queryText = (name: string, required: boolean) =>
  field<string | undefined>((v) => {
    if (v === undefined) return required ? { problem: `Query parameter ${name} is required.` } : { value: undefined };
    if (typeof v !== 'string' || v === '') return { problem: `Query parameter ${name} must be a non-empty string.` };
    if (idProblem(v)) return { problem: `Query parameter ${name} is too long or contains invalid characters.` };
    return { value: v };
  });

/** accepts_incomplete: absent or "false" is false, "true" is true, anything else is a 400. */
const acceptsIncomplete = field<boolean>((v) => {
  if (v === undefined || v === 'false') return { value: false };
  if (v === 'true') return { value: true };
  return { problem: 'Query parameter accepts_incomplete must be "true" or "false".' };
});

export const schemas = {
  instanceParams: z.object({ instance_id: id('instance_id') }),
  bindingParams: z.object({ instance_id: id('instance_id'), binding_id: id('binding_id') }),
  /** Mutating requests on plans that may be asynchronous. */
  asyncQuery: z.object({ accepts_incomplete: acceptsIncomplete }),
  /** Deletes name the service and plan (OSB: required). */
  deleteQuery: z.object({ service_id: queryText('service_id', true), plan_id: queryText('plan_id', true), accepts_incomplete: acceptsIncomplete }),
  /** GETs may name the service and plan (checked, not used). */
  fetchQuery: z.object({ service_id: queryText('service_id', false), plan_id: queryText('plan_id', false) }),
  /** last_operation: Cloud Foundry also sends service_id and plan_id. */
  lastOperationQuery: z.object({ service_id: queryText('service_id', false), plan_id: queryText('plan_id', false), operation: queryText('operation', false) }),
  provisionBody: z
    .object({
      service_id: text('service_id', true),
      plan_id: text('plan_id', true),
      context: object('context'),
      organization_guid: platformGuid('organization_guid'),
      space_guid: platformGuid('space_guid'),
      parameters: object('parameters'),
      maintenance_info: maintenanceInfo,
    })
    .transform((b): Omit<ProvisionRequest, Addressed> => ({
      serviceId: b.service_id,
      planId: b.plan_id,
      context: b.context,
      organizationGuid: b.organization_guid,
      spaceGuid: b.space_guid,
      parameters: b.parameters,
      maintenanceVersion: b.maintenance_info,
    })),
  updateBody: z
    .object({
      previous_values: object('previous_values'),
      service_id: text('service_id', true),
      plan_id: text('plan_id'),
      context: object('context'),
      parameters: object('parameters'),
      maintenance_info: maintenanceInfo,
    })
    .transform((b): Omit<UpdateRequest, Addressed> => ({
      serviceId: b.service_id,
      planId: b.plan_id,
      context: b.context,
      parameters: b.parameters,
      maintenanceVersion: b.maintenance_info,
    })),
  bindBody: z
    .object({
      bind_resource: bindResource,
      service_id: text('service_id', true),
      plan_id: text('plan_id', true),
      context: object('context'),
      app_guid: text('app_guid'),
      parameters: object('parameters'),
      predecessor_binding_id: text('predecessor_binding_id'),
    })
    .transform((b): Omit<BindRequest, Addressed | 'bindingId'> => ({
      serviceId: b.service_id,
      planId: b.plan_id,
      context: b.context,
      bindResource: b.bind_resource,
      appGuid: b.app_guid,
      parameters: b.parameters,
      predecessorBindingId: b.predecessor_binding_id,
    })),
};

/** What a request's path and query say, not its body. */
type Addressed = 'instanceId' | 'acceptsIncomplete';

/** Parses `value` with `schema`, or throws a 400 naming the first problem. */
export function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw errors.badRequest(r.error.issues[0]?.message ?? 'The request is malformed.');
  return r.data;
}

/** A request body: absent is `{}`; otherwise a storable JSON object (see body-limits.ts). */
export function objectBody(body: unknown): JsonObject {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw errors.badRequest('The request body must be a JSON object.');
  assertStorable(body, 'the request body');
  return body as JsonObject;
}
