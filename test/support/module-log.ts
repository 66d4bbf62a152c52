// Preloaded into a child Berth with `--import`: appends the URL of every module
// the process resolves (static or dynamic import, or require) to the file named
// by BERTH_TEST_MODULE_LOG, once each, so a test can tell which libraries a
// start actually loaded.
import { registerHooks } from 'node:module';
import { appendFileSync } from 'node:fs';

const file = process.env.BERTH_TEST_MODULE_LOG;
if (!file) throw new Error('BERTH_TEST_MODULE_LOG must name the file to record resolved modules in');
const seen = new Set<string>();

registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context);
    if (!seen.has(resolved.url)) {
      seen.add(resolved.url);
      appendFileSync(file, `${resolved.url}\n`);
    }
    return resolved;
  },
});
