// The layers of docs/architecture.md, checked on the source: no file imports
// from a layer above its own, and the shared words (osb/) and helpers (lib/)
// import nothing else of Berth.
import assert from 'node:assert/strict';
import { readFileSync, globSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const SRC = resolve(import.meta.dirname, '../../src');

/** Rank by top-level folder (or file): a file may import only from its own rank or lower. */
const RANK: Record<string, number> = {
  osb: 0,
  lib: 0,
  'secret-box.ts': 0,
  'failpoints.ts': 0,
  'config.ts': 1, // the parsed configuration: a leaf every layer may be handed
  catalog: 2,
  db: 2,
  store: 2,
  observability: 2,
  kubernetes: 2,
  provisioners: 3,
  operations: 4,
  broker: 5,
  http: 6,
  dashboard: 6, // beside http: another way in (a browser with a signed link), over the broker and the stores
  'main.ts': 7,
  'cli.ts': 8,
};


/** Imports allowed across ranks: a binding hook is typed by the provisioner interface it extends. */
const ALLOWED = new Set(['kubernetes/binding-secrets.ts -> provisioners/provisioner.ts']);

function area(file: string): string {
  return relative(SRC, file).split('/')[0]!;
}

test('no import runs up the layers', () => {
  const problems: string[] = [];
  let crossings = 0;
  const files = globSync('**/*.ts', { cwd: SRC }).map((f) => join(SRC, f));
  for (const file of files) {
    const from = area(file);
    if (!(from in RANK)) continue; // features with their own page (controller, osb-client, the CLI folder)
    for (const m of readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]/gm)) {
      const target = resolve(dirname(file), m[1]!);
      if (!target.startsWith(SRC)) {
        problems.push(`${relative(SRC, file)} imports ${m[1]} from outside src/`);
        continue;
      }
      const to = area(target);
      if (to === from || !(to in RANK)) continue;
      const edge = `${relative(SRC, file)} -> ${relative(SRC, target)}`;
      crossings++;
      if (RANK[to]! > RANK[from]! && !ALLOWED.has(edge)) problems.push(edge);
      if (RANK[from] === 0 && to !== from) problems.push(`${edge} (osb/, lib/ and the leaf helpers import nothing of Berth)`);
    }
  }
  assert.ok(crossings > 100, `the check saw the imports between layers (${crossings})`);
  assert.deepEqual(problems, []);
});
