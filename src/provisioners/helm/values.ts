// Building a release's values: the plan's values, the platform's parameters and
// the per-instance values Berth sets, merged the way Helm merges values files.
import type { JsonObject } from '../provisioner.ts';

export function setPath(target: JsonObject, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null || Array.isArray(node[key])) node[key] = {};
    node = node[key] as JsonObject;
  }
  node[keys[keys.length - 1]!] = value;
}

export function deepMerge(base: JsonObject, over: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = typeof v === 'object' && v !== null && !Array.isArray(v) && typeof b === 'object' && b !== null && !Array.isArray(b)
      ? deepMerge(b as JsonObject, v as JsonObject)
      : v;
  }
  return out;
}
