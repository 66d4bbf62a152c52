// berth serve | migrate | catalog validate <file>
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { CatalogError, loadCatalog } from './catalog/catalog.ts';
import { createLogger } from './observability/logger.ts';
import { loadProvisioners, startBerth } from './main.ts';
import { openDatabase, migrateLatest } from './db/database.ts';

const usage = `usage: berth <command>
  serve                     start the broker (default)
  migrate                   apply database migrations and exit
  catalog validate <file>   check a catalog file (and what its provisioners can check offline)`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { help: { type: 'boolean', short: 'h' } } });
  const [command = 'serve', ...rest] = positionals;
  if (values.help || command === 'help') {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`berth: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger(config.logLevel);

  if (command === 'serve') {
    let berth;
    try {
      berth = await startBerth(config, { log });
    } catch (err) {
      if (err instanceof CatalogError) {
        process.stderr.write(`berth: ${err.message}\n`);
        return 2;
      }
      throw err;
    }
    await new Promise<void>((resolve) => {
      const onSignal = (signal: string) => {
        log.info({ signal }, 'signal received');
        berth.stop().then(resolve, (err) => {
          log.error({ err }, 'shutdown failed');
          resolve();
        });
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
    });
    return 0;
  }

  if (command === 'migrate') {
    const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, poolSize: 2 });
    try {
      const applied = await migrateLatest(db.knex);
      process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'already up to date\n');
    } finally {
      await db.close();
    }
    return 0;
  }

  if (command === 'catalog' && rest[0] === 'validate') {
    const file = rest[1] ?? config.catalogPath;
    const provisioners = await loadProvisioners(config, log);
    let catalog;
    try {
      catalog = loadCatalog(file, provisioners.parseConfig);
    } catch (err) {
      if (err instanceof CatalogError) {
        process.stderr.write(`${err.message}\n`);
        return 1;
      }
      throw err;
    }
    const problems: string[] = [];
    for (const plan of catalog.plans) {
      const check = provisioners.forPlan(plan).validatePlan;
      if (check) for (const p of await check.call(provisioners.forPlan(plan), plan)) problems.push(`plan "${plan.service.name}/${plan.name}": ${p}`);
    }
    if (problems.length > 0) {
      process.stderr.write(`${file}: catalog is invalid:\n  ${problems.join('\n  ')}\n`);
      return 1;
    }
    process.stdout.write(`${file}: ok (${catalog.services.length} services, ${catalog.plans.length} plans)\n`);
    return 0;
  }

  process.stderr.write(`${usage}\n`);
  return 2;
}

const flushed = () => Promise.all([process.stdout, process.stderr].map((s) => new Promise((r) => s.write('', r))));

main(process.argv.slice(2)).then(
  async (code) => {
    await flushed();
    process.exit(code);
  },
  (err) => {
    process.stderr.write(`berth: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
