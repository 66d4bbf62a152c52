// Compiles plan parameter schemas with the JSON Schema draft their `$schema` names.
import { Ajv, type ValidateFunction, type ErrorObject } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import AjvDraft04Module from 'ajv-draft-04';
import addFormatsModule from 'ajv-formats';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const draft06Meta = require('ajv/dist/refs/json-schema-draft-06.json');

type AnyAjv = Ajv | Ajv2019 | Ajv2020;
const addFormats = addFormatsModule as unknown as (ajv: AnyAjv) => void;
const AjvDraft04 = AjvDraft04Module as unknown as new (opts: object) => Ajv;

const ajvOptions = { allErrors: true, strict: false, validateSchema: true, loadSchema: undefined } as const;

function normalise(uri: string): string {
  return uri.replace(/^https?:\/\//, '').replace(/#?$/, '').replace(/\/$/, '');
}

const engines = new Map<string, () => AnyAjv>([
  ['json-schema.org/draft-04/schema', () => new AjvDraft04(ajvOptions)],
  [
    'json-schema.org/draft-06/schema',
    () => {
      const a = new Ajv(ajvOptions);
      a.addMetaSchema(draft06Meta);
      return a;
    },
  ],
  ['json-schema.org/draft-07/schema', () => new Ajv(ajvOptions)],
  ['json-schema.org/draft/2019-09/schema', () => new Ajv2019(ajvOptions)],
  ['json-schema.org/draft/2020-12/schema', () => new Ajv2020(ajvOptions)],
]);

const cache = new Map<string, AnyAjv>();
function engineFor(schemaUri: string): AnyAjv | undefined {
  const key = normalise(schemaUri);
  const make = engines.get(key);
  if (!make) return undefined;
  let ajv = cache.get(key);
  if (!ajv) {
    ajv = make();
    addFormats(ajv);
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
  try {
    // Compile a copy without $id so two plans may reuse one schema.
    const { $id: _ignored, ...body } = schema as Record<string, unknown>;
    return { validate: ajv.compile(body) };
  } catch (err) {
    return { problem: `does not compile: ${(err as Error).message}` };
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

export function describeErrors(errors: ErrorObject[] | null | undefined): string {
  if (!errors || errors.length === 0) return 'parameters are invalid';
  return errors
    .slice(0, 20)
    .map((e) => {
      const where = e.instancePath ? `parameters${e.instancePath.replaceAll('/', '.')}` : 'parameters';
      if (e.keyword === 'additionalProperties') {
        return `${where}: unknown property "${(e.params as { additionalProperty: string }).additionalProperty}"`;
      }
      if (e.keyword === 'required') {
        return `${where}: missing required property "${(e.params as { missingProperty: string }).missingProperty}"`;
      }
      return `${where} ${e.message ?? 'is invalid'}`;
    })
    .join('; ');
}
