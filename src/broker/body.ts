// Shape checks for request bodies: each field's JSON type, with messages that
// name the field. Unknown fields are ignored (OSB vendor extensions).
import { errors } from '../osb/errors.ts';
import type { JsonObject } from '../osb/model.ts';

export function objectBody(body: unknown): JsonObject {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw errors.badRequest('The request body must be a JSON object.');
  assertStorable(body, 'the request body');
  return body as JsonObject;
}

/**
 * Bounds on a request body, checked before anything else looks at it. Parameter
 * schemas are the catalog's, so validation must not be able to cost more than
 * linear work in a small input: a 1 MB array of 165k items once held the event
 * loop for 41 s. Real OSB bodies are far below these.
 */
export const BODY_LIMITS = {
  /** levels of objects and arrays */
  depth: 64,
  /** items in one array */
  arrayItems: 1000,
  /** keys in one object */
  objectKeys: 1000,
  /** characters (UTF-16 code units) in one string or key */
  stringLength: 64 * 1024,
  /** strings, numbers, booleans, nulls, objects and arrays in the whole body */
  values: 10_000,
} as const;

/**
 * Rejects what JSON can carry but Berth should not take: what Postgres text and
 * jsonb cannot store (NUL, lone surrogates), numbers JSON.parse turned into
 * Infinity (JSON.stringify would store them as null), nesting too deep to
 * serialise, and anything over BODY_LIMITS. Each description names the place.
 */
export function assertStorable(value: unknown, what: string): void {
  const budget = { values: BODY_LIMITS.values };
  check(value, what, '', 0, budget);
}

/** `parameters.list[3]`, or `the request body` at the root; keys that are not plain names are quoted. */
function placeOf(what: string, path: string): string {
  if (path === '') return what;
  return what === 'the request body' ? path.replace(/^\./, '') : `${what}${path}`;
}

function childPath(path: string, key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}…` : key)}]`;
}

function check(value: unknown, what: string, path: string, depth: number, budget: { values: number }): void {
  if (--budget.values < 0) throw errors.badRequest(`${what} holds more than ${BODY_LIMITS.values} values (strings, numbers, objects…); send fewer.`);
  if (typeof value === 'string') {
    if (value.length > BODY_LIMITS.stringLength) {
      throw errors.badRequest(`${placeOf(what, path)} is a string of ${value.length} characters; at most ${BODY_LIMITS.stringLength} are accepted.`);
    }
    if (!storableString(value)) throw errors.badRequest(`${placeOf(what, path)} contains a NUL character or invalid Unicode.`);
    return;
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) {
      throw errors.badRequest(`${placeOf(what, path)} is a number too large to represent (at most about 1.8e308); send a smaller number, or a string.`);
    }
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  if (depth >= BODY_LIMITS.depth) throw errors.badRequest(`${what} is nested more than ${BODY_LIMITS.depth} levels deep.`);
  if (Array.isArray(value)) {
    if (value.length > BODY_LIMITS.arrayItems) {
      throw errors.badRequest(`${placeOf(what, path)} is an array of ${value.length} items; at most ${BODY_LIMITS.arrayItems} are accepted.`);
    }
    for (const [i, item] of value.entries()) check(item, what, `${path}[${i}]`, depth + 1, budget);
    return;
  }
  const keys = Object.keys(value);
  if (keys.length > BODY_LIMITS.objectKeys) {
    throw errors.badRequest(`${placeOf(what, path)} is an object with ${keys.length} keys; at most ${BODY_LIMITS.objectKeys} are accepted.`);
  }
  for (const key of keys) {
    if (key.length > BODY_LIMITS.stringLength) {
      throw errors.badRequest(`${placeOf(what, path)} has a key of ${key.length} characters; at most ${BODY_LIMITS.stringLength} are accepted.`);
    }
    if (!storableString(key)) throw errors.badRequest(`${placeOf(what, path)} has a key with a NUL character or invalid Unicode.`);
    check((value as Record<string, unknown>)[key], what, childPath(path, key), depth + 1, budget);
  }
}

export function storableString(s: string): boolean {
  return !s.includes('\0') && s.isWellFormed();
}

export function str(body: JsonObject, name: string, required: true): string;
export function str(body: JsonObject, name: string, required?: false): string | undefined;
export function str(body: JsonObject, name: string, required = false): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) {
    if (required) throw errors.badRequest(`${name} is required.`);
    return undefined;
  }
  if (typeof v !== 'string' || v === '') throw errors.badRequest(`${name} must be a non-empty string.`);
  return v;
}

/**
 * organization_guid and space_guid: the OSB spec marks both REQUIRED on provision
 * (400 for missing mandatory data), though deprecated in favour of `context`.
 */
export function platformGuid(body: JsonObject, name: 'organization_guid' | 'space_guid'): string {
  const v = body[name];
  if (v === undefined || v === null) {
    const what = name === 'organization_guid' ? 'organization (Kubernetes Service Catalog sends the cluster id)' : 'space (Kubernetes Service Catalog sends the namespace)';
    throw errors.badRequest(`${name} is required when provisioning (OSB specification): send the GUID of the platform's ${what} as a non-empty string.`);
  }
  return str(body, name, true);
}

export function obj(body: JsonObject, name: string): JsonObject | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw errors.badRequest(`${name} must be a JSON object.`);
  return v as JsonObject;
}

export function maintenanceVersion(body: JsonObject): string | undefined {
  const mi = obj(body, 'maintenance_info');
  if (!mi) return undefined;
  return str(mi, 'version', true);
}
