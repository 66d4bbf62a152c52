// Run by `npm install` (postinstall): builds the initialised, migrated PGlite
// cluster that first embedded starts copy (src/db/embedded-template.ts), so
// the first `npm start` does not spend 10 s or more initialising one. Never
// fails the install: without a template Berth initialises the cluster itself.
import { prepareEmbeddedTemplate } from '../src/db/database.ts';

try {
  const started = performance.now();
  const dir = await prepareEmbeddedTemplate();
  process.stdout.write(`berth: embedded database template ready in ${dir} (${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
} catch (err) {
  process.stderr.write(`berth: no embedded database template (${err instanceof Error ? err.message : String(err)}); the first embedded start will initialise its database\n`);
}
