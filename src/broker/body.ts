// Shape checks for request bodies: each field's JSON type, with messages that
// name the field. Unknown fields are ignored (OSB vendor extensions).
import { errors } from './errors.ts';
import type { JsonObject } from '../provisioners/provisioner.ts';

export function objectBody(body: unknown): JsonObject {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw errors.badRequest('The request body must be a JSON object.');
  assertStorable(body, 'the request body');
  return body as JsonObject;
}

const MAX_DEPTH = 64;

/**
 * Rejects what JSON can carry but Postgres text and jsonb cannot store (NUL,
 * lone surrogates) and nesting too deep to serialise, so such input gets a 400
 * rather than failing in the database.
 */
export function assertStorable(value: unknown, what: string, depth = 0): void {
  if (typeof value === 'string') {
    if (!storableString(value)) throw errors.badRequest(`${what} contains a NUL character or invalid Unicode.`);
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  if (depth >= MAX_DEPTH) throw errors.badRequest(`${what} is nested more than ${MAX_DEPTH} levels deep.`);
  if (Array.isArray(value)) {
    for (const item of value) assertStorable(item, what, depth + 1);
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    if (!storableString(key)) throw errors.badRequest(`${what} has a key with a NUL character or invalid Unicode.`);
    assertStorable(item, what, depth + 1);
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
