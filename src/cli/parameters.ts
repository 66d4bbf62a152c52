// `-p key=value` and `-c JSON|@file`: the parameters a provision, update or bind sends.
//
// Typing rules (svcat could only make strings, so a plan whose schema wants an object or
// a number could not be used with -p at all):
//   -p port=5432            number        -p ssl=true / false   boolean      -p x=null   null
//   -p name=orders          string        -p zip=007            string (not valid JSON)
//   -p a.b=c                nests: {"a":{"b":"c"}}     -p 'a\.b=c'  a key with a dot in it
//   -p 'creds={"user":"x"}' JSON object   -p 'tags=["a","b"]'   JSON array
//   -p 'v="5432"'           the string "5432" (a JSON string forces a string)
// -c gives the whole object (JSON text, or @file holding JSON or YAML); -p values are set on
// top of it, key by key. The same key given twice is a usage error naming both values.
import { readFileSync } from 'node:fs';
import { usageError } from './errors.ts';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** The JSON value `-p key=VALUE` means. */
export function typedValue(text: string): Json {
  // Only text that JSON itself reads is typed; anything else (words, "007", "1.2.3") is a string.
  if (/^(true|false|null)$/.test(text) || /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(text) || /^\s*[[{"]/.test(text)) {
    try {
      return JSON.parse(text) as Json;
    } catch (err) {
      if (/^\s*[[{"]/.test(text)) throw usageError(`the value ${JSON.stringify(text)} starts like JSON but is not valid JSON (${(err as Error).message}); quote it for the shell, e.g. -p 'key={"a":1}'`);
    }
  }
  return text;
}

/** `a.b\.c` → ['a', 'b.c']. */
function keyPath(key: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < key.length; i++) {
    if (key[i] === '\\' && key[i + 1] === '.') {
      current += '.';
      i++;
    } else if (key[i] === '.') {
      parts.push(current);
      current = '';
    } else current += key[i];
  }
  parts.push(current);
  return parts;
}

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Builds the parameters object from -p flags (in order), on top of `base` (from -c). */
export function buildParameters(pairs: string[], base: JsonObject = {}): JsonObject {
  const result: JsonObject = structuredClone(base);
  const givenBy = new Map<string, string>(); // path → the -p that set it, to name both sides of a clash
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usageError(`-p ${JSON.stringify(pair)} is not key=value; write e.g. -p port=5432 or -p credentials='{"user":"x"}'`);
    const key = pair.slice(0, eq);
    const path = keyPath(key);
    if (path.some((p) => p === '')) throw usageError(`-p ${pair}: the key ${JSON.stringify(key)} has an empty part; write keys like a.b.c (\\. for a dot inside a key)`);
    const value = typedValue(pair.slice(eq + 1));
    let node = result;
    for (let i = 0; i < path.length - 1; i++) {
      const prefix = path.slice(0, i + 1).join('.');
      const next = node[path[i]!];
      if (next === undefined) node = node[path[i]!] = {};
      else if (isObject(next)) node = next;
      else {
        const earlier = givenBy.get(prefix);
        throw usageError(`-p ${pair} conflicts with ${earlier ? `-p ${earlier}` : `-c`}: ${prefix} is already ${JSON.stringify(next)}, not an object`);
      }
    }
    const leaf = path[path.length - 1]!;
    const full = path.join('.');
    const earlier = givenBy.get(full);
    if (earlier !== undefined) throw usageError(`-p ${full} is given twice (-p ${earlier} and -p ${pair}); give it once`);
    const nestedEarlier = [...givenBy.keys()].find((k) => k.startsWith(`${full}.`));
    if (nestedEarlier) throw usageError(`-p ${pair} conflicts with -p ${givenBy.get(nestedEarlier)}: ${full} would replace the object that sets ${nestedEarlier}`);
    node[leaf] = value;
    givenBy.set(full, pair);
  }
  return result;
}

/** `-c JSON` or `-c @file` (JSON or YAML): must be an object. */
export async function readConfigFlag(flag: string | undefined): Promise<JsonObject> {
  if (flag === undefined) return {};
  let text = flag;
  let source = '-c';
  if (flag.startsWith('@')) {
    source = flag.slice(1);
    try {
      text = readFileSync(source, 'utf8');
    } catch (err) {
      throw usageError(`-c ${flag}: cannot read ${source} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (jsonError) {
    if (!flag.startsWith('@')) throw usageError(`-c is not valid JSON (${(jsonError as Error).message}); pass a JSON object, or @file for a JSON or YAML file`);
    const { parse } = await import('yaml');
    try {
      value = parse(text);
    } catch (yamlError) {
      throw usageError(`${source} is neither JSON nor YAML (${(yamlError as Error).message.split('\n')[0]})`);
    }
  }
  if (!isObject(value)) throw usageError(`${source === '-c' ? '-c' : source} must hold a JSON object ({…}), not ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`);
  return value;
}

/** Parameters from -c and -p together; undefined when neither was given. */
export async function parametersOf(opts: { param?: string[]; config?: string }): Promise<JsonObject | undefined> {
  if (!opts.config && !(opts.param?.length)) return undefined;
  return buildParameters(opts.param ?? [], await readConfigFlag(opts.config));
}

/**
 * The first field where a repeat differs from what exists, as `field: existing → requested`, or undefined when they
 * are the same. Fields are compared in the order given; parameters are walked key by key so the message names the
 * exact key (`parameters.credentials.user`).
 */
export function firstDifference(existing: Record<string, unknown>, requested: Record<string, unknown>, fields: string[]): string | undefined {
  for (const field of fields) {
    const d = differenceAt(field, existing[field], requested[field]);
    if (d) return d;
  }
  return undefined;
}

function differenceAt(path: string, a: unknown, b: unknown): string | undefined {
  if (isObject(a as Json) && isObject(b as Json)) {
    const keys = [...new Set([...Object.keys(a as object), ...Object.keys(b as object)])].sort();
    for (const k of keys) {
      const d = differenceAt(`${path}.${k}`, (a as JsonObject)[k], (b as JsonObject)[k]);
      if (d) return d;
    }
    return undefined;
  }
  if (JSON.stringify(a) === JSON.stringify(b)) return undefined;
  // Parameter values may be credentials: only their key is named.
  if (path.startsWith('parameters')) return `${path} differs (${a === undefined ? 'not set on the existing one' : b === undefined ? 'not given now' : 'another value'})`;
  const show = (v: unknown) => (v === undefined ? '(not set)' : JSON.stringify(v));
  return `${path} is ${show(a)}, not ${show(b)}`;
}
