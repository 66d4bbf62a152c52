// Compiles plan parameter schemas with the JSON Schema draft their `$schema` names.
// Parameters come from anyone the platform lets provision, so validation must
// stay linear in their size whatever the catalog's schema says: request bodies
// are bounded before they get here (src/broker/body.ts), `pattern` runs on RE2
// (no backtracking) and `uniqueItems` is checked with a hash set instead of
// ajv's pairwise comparison (quadratic for items without a declared type).
import type { Ajv, ValidateFunction, ErrorObject, KeywordDefinition } from 'ajv';
import type { Ajv2019 } from 'ajv/dist/2019.js';
import type { Ajv2020 } from 'ajv/dist/2020.js';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

type AnyAjv = Ajv | Ajv2019 | Ajv2020;

/**
 * ajv, its drafts and formats, loaded on the first schema compiled, and RE2 (a WebAssembly module) on the first pattern:
 * together about 20 MB of memory that a catalog without parameter schemas should not cost. They are
 * CommonJS, so a synchronous require keeps catalog loading synchronous.
 */
const validators = (() => {
  let loaded: ReturnType<typeof load> | undefined;
  function load() {
    // RE2's WebAssembly memory (≈10 MB) only once a schema has a pattern.
    let re2: typeof import('re2-wasm').RE2 | undefined;
    /** ajv's RegExpEngine: RE2 matches in time linear in the input; it only works in unicode mode, as ajv compiles patterns. */
    const re2Engine = Object.assign((pattern: string) => new (re2 ??= (require('re2-wasm') as typeof import('re2-wasm')).RE2)(pattern, 'u'), { code: 'new RE2' });
    return {
      Ajv: (require('ajv') as typeof import('ajv')).Ajv,
      Ajv2019: (require('ajv/dist/2019.js') as typeof import('ajv/dist/2019.js')).Ajv2019,
      Ajv2020: (require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js')).Ajv2020,
      AjvDraft04: require('ajv-draft-04') as new (opts: object) => Ajv,
      addFormats: require('ajv-formats') as (ajv: AnyAjv) => void,
      draft06Meta: require('ajv/dist/refs/json-schema-draft-06.json') as object,
      ajvOptions: ajvOptions(re2Engine),
    };
  }
  return () => (loaded ??= load());
})();

// allErrors stays on (a 400 lists every problem): with the keywords below it is
// linear in the bounded input, so it costs at most one error per value and keyword.
const ajvOptions = (re2Engine: ((pattern: string) => unknown) & { code: string }) => ({ allErrors: true, strict: false, validateSchema: true, loadSchema: undefined, code: { regExp: re2Engine as never } }) as const;

/** JSON text with object keys sorted: equal JSON values (in the JSON Schema sense) give equal strings. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    return `{${Object.keys(record)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

function uniqueItems(schema: boolean, data: unknown[]): boolean {
  if (!schema) return true;
  const seen = new Map<string, number>();
  for (const [j, item] of data.entries()) {
    const key = canonicalJson(item);
    const i = seen.get(key);
    if (i !== undefined) {
      uniqueItems.errors = [{ keyword: 'uniqueItems', message: `must NOT have duplicate items (items ${i} and ${j} are identical)`, params: { i, j } }];
      return false;
    }
    seen.set(key, j);
  }
  return true;
}
uniqueItems.errors = [] as Array<Partial<ErrorObject>>;

const linearUniqueItems: KeywordDefinition = { keyword: 'uniqueItems', type: 'array', schemaType: 'boolean', errors: true, validate: uniqueItems };

function normalise(uri: string): string {
  return uri.replace(/^https?:\/\//, '').replace(/#?$/, '').replace(/\/$/, '');
}

const engines = new Map<string, () => AnyAjv>([
  ['json-schema.org/draft-04/schema', () => new (validators().AjvDraft04)(validators().ajvOptions)],
  [
    'json-schema.org/draft-06/schema',
    () => {
      const a = new (validators().Ajv)(validators().ajvOptions);
      a.addMetaSchema(validators().draft06Meta);
      return a;
    },
  ],
  ['json-schema.org/draft-07/schema', () => new (validators().Ajv)(validators().ajvOptions)],
  ['json-schema.org/draft/2019-09/schema', () => new (validators().Ajv2019)(validators().ajvOptions)],
  ['json-schema.org/draft/2020-12/schema', () => new (validators().Ajv2020)(validators().ajvOptions)],
]);

const cache = new Map<string, AnyAjv>();
function engineFor(schemaUri: string): AnyAjv | undefined {
  const key = normalise(schemaUri);
  const make = engines.get(key);
  if (!make) return undefined;
  let ajv = cache.get(key);
  if (!ajv) {
    ajv = make();
    ajv.removeKeyword('uniqueItems');
    ajv.addKeyword(linearUniqueItems);
    validators().addFormats(ajv);
    cache.set(key, ajv);
  }
  return ajv;
}

export const MAX_SCHEMA_BYTES = 64 * 1024;

export const supportedDrafts = [...engines.keys()].map((k) => `http://${k}#`);

/** Returns a problem description, or the compiled validator. */
export function compileParameterSchema(schema: unknown): { validate: ValidateFunction } | { problem: string } {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    return { problem: 'must be a JSON schema object' };
  }
  const size = Buffer.byteLength(JSON.stringify(schema));
  if (size > MAX_SCHEMA_BYTES) return { problem: `is ${size} bytes; the OSB spec allows at most 64 kB` };
  const uri = (schema as Record<string, unknown>)['$schema'];
  if (typeof uri !== 'string') return { problem: '$schema is required (OSB spec: "The $schema key MUST be present")' };
  const ajv = engineFor(uri);
  if (!ajv) return { problem: `$schema "${uri}" is not supported; use one of ${supportedDrafts.join(', ')}` };
  const external = findExternalRef(schema);
  if (external) return { problem: `contains an external reference "${external}"; schemas must be self-contained` };
  const recursive = findRecursiveRef(schema);
  if (recursive) {
    return {
      problem: `contains a recursive reference ("${recursive}" reaches itself); validating nested input against a recursive schema can take time exponential in its depth, so Berth does not accept one`,
    };
  }
  try {
    // Compile a copy without $id so two plans may reuse one schema.
    const { $id: _ignored, ...body } = schema as Record<string, unknown>;
    return { validate: ajv.compile(body) };
  } catch (err) {
    const message = (err as Error).message;
    if (message.startsWith('Invalid regular expression')) {
      // RE2 refuses what needs backtracking; say so rather than pass on its wording alone.
      return { problem: `does not compile: ${message}; patterns are matched with RE2 (linear time), which has no lookaround or backreferences` };
    }
    return { problem: `does not compile: ${message}` };
  }
}

function findExternalRef(node: unknown): string | undefined {
  if (Array.isArray(node)) {
    for (const item of node) {
      const found = findExternalRef(item);
      if (found) return found;
    }
    return undefined;
  }
  if (typeof node !== 'object' || node === null) return undefined;
  for (const [key, value] of Object.entries(node)) {
    if ((key === '$ref' || key === '$dynamicRef' || key === '$recursiveRef') && typeof value === 'string' && !value.startsWith('#')) {
      return value;
    }
    const found = findExternalRef(value);
    if (found) return found;
  }
  return undefined;
}

/**
 * Finds a reference that can lead back to itself: a local `$ref` whose target
 * contains (directly, or through other references) a reference to that target,
 * or a `$recursiveRef`/`$dynamicRef`. With alternatives (anyOf, oneOf) along the
 * cycle, ajv re-validates the input once per branch at every level.
 */
function findRecursiveRef(schema: object): string | undefined {
  const refs: Array<{ ref: string; at: string; target: string | undefined }> = [];
  const anchors = new Map<string, string>();
  let dynamic: string | undefined;
  const walk = (node: unknown, at: string): void => {
    if (typeof node !== 'object' || node === null) return;
    for (const [key, value] of Object.entries(node)) {
      const here = `${at}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
      if (typeof value === 'string' && !Array.isArray(node)) {
        if (key === '$ref' && value.startsWith('#')) refs.push({ ref: value, at, target: undefined });
        if (key === '$recursiveRef' || key === '$dynamicRef') dynamic ??= value;
        if (key === '$anchor' || key === '$dynamicAnchor') anchors.set(value, at);
        if (key === '$id' && value.startsWith('#')) anchors.set(value.slice(1), at);
      }
      walk(value, here);
    }
  };
  walk(schema, '');
  if (dynamic) return dynamic;
  for (const r of refs) {
    let fragment: string;
    try {
      fragment = decodeURIComponent(r.ref.slice(1));
    } catch {
      continue; // not a valid reference: ajv's compile reports it
    }
    r.target = fragment === '' || fragment.startsWith('/') ? fragment : anchors.get(fragment);
  }
  const inside = (at: string, target: string) => target === '' || at === target || at.startsWith(`${target}/`);
  // Depth-first search for a cycle among references: r leads to every reference inside its target.
  const state = new Map<number, 'open' | 'done'>();
  const visit = (i: number): boolean => {
    if (state.get(i) === 'open') return true;
    if (state.get(i) === 'done') return false;
    state.set(i, 'open');
    const target = refs[i]!.target;
    if (target !== undefined) {
      for (const [j, other] of refs.entries()) if (inside(other.at, target) && visit(j)) return true;
    }
    state.set(i, 'done');
    return false;
  };
  for (const [i, r] of refs.entries()) if (visit(i)) return r.ref;
  return undefined;
}

const MAX_DESCRIBED_ERRORS = 20;
const MAX_LISTED_VALUES = 20;

/** `"a", "b" or "c"`: the values a person may send, as JSON, the list cut after 20. */
function listValues(values: unknown[]): string {
  const shown = values.slice(0, MAX_LISTED_VALUES).map((v) => JSON.stringify(v));
  const more = values.length - shown.length;
  if (more > 0) return `${shown.join(', ')} (or one of ${more} more)`;
  return shown.length > 1 ? `${shown.slice(0, -1).join(', ')} or ${shown.at(-1)}` : (shown[0] ?? '');
}

/** One error as the place it concerns and what is wrong there (text that starts with ":" or " "). */
function describeError(e: ErrorObject): { where: string; what: string } {
  const where = e.instancePath ? `parameters${e.instancePath.replaceAll('/', '.')}` : 'parameters';
  if (e.keyword === 'additionalProperties') {
    return { where, what: `: unknown property "${(e.params as { additionalProperty: string }).additionalProperty}"` };
  }
  if (e.keyword === 'required') {
    return { where, what: `: missing required property "${(e.params as { missingProperty: string }).missingProperty}"` };
  }
  if (e.keyword === 'enum') {
    return { where, what: ` must be one of ${listValues((e.params as { allowedValues: unknown[] }).allowedValues)}` };
  }
  if (e.keyword === 'const') {
    return { where, what: ` must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}` };
  }
  return { where, what: ` ${e.message ?? 'is invalid'}` };
}

/**
 * Every validation error, for a person: the same problem at many places (each
 * item of a long array failing one enum) is said once, naming the first places.
 */
export function describeErrors(errors: ErrorObject[] | null | undefined): string {
  if (!errors || errors.length === 0) return 'parameters are invalid';
  const places = new Map<string, string[]>();
  for (const e of errors) {
    const { where, what } = describeError(e);
    const list = places.get(what);
    if (list) list.push(where);
    else places.set(what, [where]);
  }
  const described = [...places].slice(0, MAX_DESCRIBED_ERRORS).map(([what, wheres]) => {
    const named = wheres.slice(0, 3).join(', ');
    return `${wheres.length > 3 ? `${named} and ${wheres.length - 3} more places` : named}${what}`;
  });
  const more = places.size - MAX_DESCRIBED_ERRORS;
  return more > 0 ? `${described.join('; ')}; and ${more} more problems` : described.join('; ');
}
