// The server's own commands, moved here from src/cli.ts unchanged: `berth serve` (the
// default), `berth migrate`, `berth keys rotate`, `berth catalog validate [file]`. They load
// the whole broker (express, knex, pino, provisioners), which is why src/cli/program.ts imports
// this module only when one of them runs.
import type { Logger } from 'pino';
import { ConfigError, loadConfig, type Config } from '../config.ts';
import { CatalogError, loadCatalog, type Catalog } from '../catalog/catalog.ts';
import type { ProvisionerRegistry } from '../provisioners/provisioner.ts';
import { createLogger, routeProcessWarnings } from '../observability/logger.ts';
import { embeddedKeyFile, loadProvisioners, startBerth } from '../main.ts';
import { openDatabase, migrateLatest } from '../db/database.ts';
import { SecretBox } from '../secret-box.ts';
import { resealRows } from '../store/reseal.ts';
import { readFile } from 'node:fs/promises';

/** Runs `berth serve|controller|migrate|keys rotate|catalog validate`; returns the exit code. */
export async function runServerCommand(command: 'serve' | 'controller' | 'migrate' | 'keys rotate' | 'catalog validate', file?: string): Promise<number> {
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
    // Installed before the start and kept for good (not `once`): every SIGTERM or
    // SIGINT, at any moment and however many, takes the graceful path. With no
    // listener left, a second signal (or one re-raised by a library's exit
    // handler) would kill the process with 143 before leases are handed back.
    const signalled = new Promise<void>((resolve) => {
      const onSignal = (signal: string) => {
        log.info({ signal }, 'signal received');
        resolve();
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
    routeProcessWarnings(log);
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
    // The Kubernetes controller beside the broker, for a one-process setup (src/controller/start.ts). With HTTPS
    // only, BERTH_BROKER_URL (a name the certificate holds) and BERTH_BROKER_CA_FILE tell it how to reach this Berth.
    const controller = config.env.BERTH_CONTROLLER === 'true' ? await (await import('../controller/start.ts')).startController(config, log, { brokerUrl: config.env.BERTH_BROKER_URL ?? berth.httpUrl ?? berth.url, brokerAuth: berth.credentials[0] }) : undefined;
    await signalled;
    try {
      await controller?.stop();
      await berth.stop();
    } catch (err) {
      log.error({ err }, 'shutdown failed');
    }
    return 0;
  }

  if (command === 'controller') {
    const { runControllerCommand } = await import('../controller/command.ts');
    return runControllerCommand(config, log);
  }

  if (command === 'migrate') {
    const box = await secretBoxOf(config);
    const migration = await migrationCatalog(config, log);
    const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, poolSize: 2, log });
    try {
      const applied = await migrateLatest(db.knex, { box, log, catalog: migration.catalog });
      process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'already up to date\n');
    } finally {
      await db.close();
      await migration.close();
    }
    return 0;
  }

  if (command === 'keys rotate') {
    const box = await secretBoxOf(config);
    if (!box) {
      process.stderr.write(`berth: no encryption keys to rotate to: set BERTH_ENCRYPTION_KEYS (the new key first)\n`);
      return 2;
    }
    // It may be the first command of a new version to touch the database: migrate as `berth migrate` does.
    const migration = await migrationCatalog(config, log);
    const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, poolSize: 2, log });
    try {
      const applied = await migrateLatest(db.knex, { box, log, catalog: migration.catalog });
      if (applied.length > 0) process.stdout.write(`applied: ${applied.join(', ')}\n`);
      // Rows a live Berth rewrote between our read and our write are looked at again.
      let counts = await resealRows(db.knex, box, 'stale');
      const total = new Map(counts.map((c) => [c.table, c.resealed]));
      for (let pass = 2; pass <= 5 && counts.some((c) => c.changedMeanwhile > 0); pass++) {
        counts = await resealRows(db.knex, box, 'stale');
        for (const c of counts) total.set(c.table, total.get(c.table)! + c.resealed);
      }
      process.stdout.write(`re-sealed under key "${box.activeKeyId}":\n`);
      for (const c of counts) process.stdout.write(`  ${c.table}: ${total.get(c.table)} rows\n`);
      const unreadable = counts.filter((c) => c.unreadable > 0 || c.changedMeanwhile > 0);
      if (unreadable.length === 0) {
        process.stdout.write(`every stored secret is sealed with key "${box.activeKeyId}"; the other keys can be removed from BERTH_ENCRYPTION_KEYS\n`);
        return 0;
      }
      for (const c of unreadable) {
        if (c.unreadable > 0) {
          const keys = c.missingKeyIds.length > 0 ? ` (sealed with keys not configured: ${c.missingKeyIds.join(', ')})` : ' (altered or copied from another row)';
          process.stderr.write(`  ${c.table}: ${c.unreadable} rows could not be decrypted${keys}\n`);
        }
        if (c.changedMeanwhile > 0) process.stderr.write(`  ${c.table}: ${c.changedMeanwhile} rows kept changing; run the command again\n`);
      }
      process.stderr.write(`berth: some rows are not sealed with key "${box.activeKeyId}"; do not remove any key yet\n`);
      return 1;
    } finally {
      await db.close();
      await migration.close();
    }
  }

  if (command === 'catalog validate') {
    file ??= config.catalogPath;
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

  throw new Error(`unknown server command ${command}`);
}

/** BERTH_ENCRYPTION_KEYS, or in embedded mode the key file Berth generated in the data directory (if any yet). */
/**
 * The catalog for migrations that record the plans of existing instances. Without it (unreadable catalog) those
 * rows keep depending on the catalog of whichever replica serves them, as before: a warning, not a failure.
 */
async function migrationCatalog(config: Config, log: Logger): Promise<{ catalog?: Catalog; close(): Promise<void> }> {
  let provisioners: ProvisionerRegistry | undefined;
  try {
    provisioners = await loadProvisioners(config, log);
    return { catalog: loadCatalog(config.catalogPath, provisioners.parseConfig), close: () => provisioners!.close() };
  } catch (err) {
    const problems = err instanceof CatalogError ? err.problems : [(err as Error).message];
    log.warn({ problems }, 'the catalog could not be loaded; migrating without recording the plans of existing instances');
    return { close: async () => void (await provisioners?.close()) };
  }
}

async function secretBoxOf(config: Config): Promise<SecretBox | undefined> {
  if (config.encryptionKeys) return new SecretBox(config.encryptionKeys);
  if (config.databaseUrl) return undefined;
  const keys = await readFile(embeddedKeyFile(config), 'utf8').catch(() => undefined);
  return keys?.trim() ? new SecretBox(keys.trim()) : undefined;
}

