// Shape checks for request bodies: each field's JSON type, with messages that
// name the field. Unknown fields are ignored (OSB vendor extensions).
import { errors } from './errors.ts';
import type { JsonObject } from '../provisioners/provisioner.ts';

export function objectBody(body: unknown): JsonObject {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw errors.badRequest('The request body must be a JSON object.');
  return body as JsonObject;
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
