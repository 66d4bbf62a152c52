// What any JSON Berth takes (a request body, an identity header) must satisfy
// before anything else looks at it: storable, and within bounds that keep
// parameter validation linear. Field shapes are schemas.ts's.
import { errors } from '../osb/errors.ts';

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
