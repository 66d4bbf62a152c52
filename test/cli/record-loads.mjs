// Preloaded with NODE_OPTIONS=--import: records every module the process loads and writes the
// list to $BERTH_TEST_LOADS_FILE at exit (test/cli/startup.test.ts).
import module from 'node:module';
import { writeFileSync } from 'node:fs';

const loaded = new Set();
module.registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context);
    loaded.add(resolved.url);
    return resolved;
  },
});
process.on('exit', () => writeFileSync(process.env.BERTH_TEST_LOADS_FILE, [...loaded].join('\n')));
