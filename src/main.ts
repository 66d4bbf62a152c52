// The composition root: builds every part from a validated Config and wires
// them together. Nothing else constructs stores, engines or servers.
import { createServer, type Server } from 'node:http';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import type { Config, Credential } from './config.ts';
import { loadCatalog, type Catalog } from './catalog/catalog.ts';
import { openDatabase, migrateLatest, migrationsApplied, type Database } from './db/database.ts';
import { SecretBox } from './secret-box.ts';
import { createStores, type Stores } from './store/stores.ts';
import { OperationEngine } from './operations/engine.ts';
import { BrokerService } from './service/broker-service.ts';
import { createApp } from './broker/app.ts';
import { createFastPath } from './broker/fast-path.ts';
import { createLogger } from './observability/logger.ts';
import { createMetrics } from './observability/metrics.ts';
import { Gauge } from 'prom-client';
import { ProvisionerRegistry, type Provisioner } from './provisioners/provisioner.ts';
import { builtInProvisioners } from './provisioners/index.ts';
import { KubernetesAccess } from './kubernetes/client.ts';
import { createBindingSecretHooks } from './kubernetes/binding-secrets.ts';

export interface Berth {
  server: Server;
  url: string;
  catalog: Catalog;
  stores: Stores;
  engine: OperationEngine;
  database: Database;
  log: Logger;
  credentials: Credential[];
  /** Graceful stop: stop claiming, finish or hand back operations, close HTTP, close the database. */
  stop(graceMs?: number): Promise<void>;
}

/** Provisioner kinds: the built-in ones plus modules named in BERTH_PROVISIONER_MODULES (comma-separated paths). */
export async function loadProvisioners(config: Config, log: Logger, kube = new KubernetesAccess(config)): Promise<ProvisionerRegistry> {
  const provisioners: Provisioner[] = builtInProvisioners(config, log, kube);
  const modules = (config.env.BERTH_PROVISIONER_MODULES ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const path of modules) {
    const mod = (await import(pathToFileURL(resolve(path)).href)) as { createProvisioners?: (c: Config, l: Logger) => Provisioner[] };
    if (typeof mod.createProvisioners !== 'function') throw new Error(`${path} must export createProvisioners(config, log)`);
    provisioners.push(...mod.createProvisioners(config, log));
  }
  return new ProvisionerRegistry(provisioners);
}

async function embeddedSecrets(config: Config, log: Logger): Promise<{ keys: string; credentials: Credential[] }> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const keyFile = join(config.dataDir, 'encryption-keys');
  let keys = config.encryptionKeys;
  if (!keys) {
    try {
      keys = (await readFile(keyFile, 'utf8')).trim();
    } catch {
      keys = SecretBox.generateKeySpec();
      await writeFile(keyFile, keys + '\n', { mode: 0o600 });
      log.info({ file: keyFile }, 'generated an encryption key for the embedded database');
    }
  }
  let credentials = config.credentials;
  if (credentials.length === 0) {
    const credFile = join(config.dataDir, 'broker-credentials.json');
    try {
      credentials = [JSON.parse(await readFile(credFile, 'utf8')) as Credential];
    } catch {
      const generated = { username: 'berth', password: randomBytes(18).toString('base64url') };
      await writeFile(credFile, JSON.stringify(generated) + '\n', { mode: 0o600 });
      credentials = [generated];
      // Shown once to a person at a terminal. When stderr is not a terminal it is
      // usually collected with the log stream, so the password stays in the file.
      if (process.stderr.isTTY) {
        process.stderr.write(
          `\nBerth generated broker credentials (stored in ${credFile}):\n  username: ${generated.username}\n  password: ${generated.password}\n\n`,
        );
      } else {
        log.info({ file: credFile }, 'generated broker credentials; the password is in the file');
      }
    }
  }
  return { keys, credentials };
}

export async function startBerth(config: Config, opts: { log?: Logger; provisioners?: ProvisionerRegistry } = {}): Promise<Berth> {
  const log = opts.log ?? createLogger(config.logLevel);
  const kube = new KubernetesAccess(config);
  const provisioners = opts.provisioners ?? (await loadProvisioners(config, log, kube));
  const catalog = loadCatalog(config.catalogPath, provisioners.parseConfig);

  let keys = config.encryptionKeys;
  let credentials = config.credentials;
  if (!config.databaseUrl) ({ keys, credentials } = await embeddedSecrets(config, log));
  const box = new SecretBox(keys!);

  const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, poolSize: config.dbPoolSize });
  try {
    const applied = await migrateLatest(database.knex);
    if (applied.length > 0) log.info({ applied }, 'database migrated');
  } catch (err) {
    await database.close();
    throw err;
  }
  const stores = createStores(database.knex, box);
  const metrics = createMetrics();
  const operationsGauge = new Gauge({
    name: 'berth_operations',
    help: 'Operations recorded in the database by kind and state',
    labelNames: ['kind', 'state'],
    registers: [metrics.registry],
  });
  const engine = new OperationEngine({
    stores,
    catalog,
    provisioners,
    log,
    metrics,
    options: config.worker,
    hooks: createBindingSecretHooks(kube, config.kubernetesSecrets),
  });
  const service = new BrokerService({ catalog, stores, provisioners, engine });
  const app = createApp({
    service,
    credentials,
    log,
    metrics,
    readiness: async () => ((await migrationsApplied(database.knex)) ? undefined : 'database migrations are not applied'),
    beforeScrape: async () => {
      operationsGauge.reset();
      for (const row of await stores.operations.countByState()) operationsGauge.set({ kind: row.kind, state: row.state }, Number(row.n));
    },
  });
  const fastPath = createFastPath({ service, credentials, metrics, log });
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    if (!fastPath(req, res)) app(req, res);
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolveListen());
  });
  const address = server.address();
  const url = `http://${config.host}:${typeof address === 'object' && address ? address.port : config.port}`;
  engine.start();
  log.info({ url, embedded: database.embedded, catalog: config.catalogPath }, 'Berth is serving');

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = config.shutdownGraceMs) =>
    (stopping ??= (async () => {
      log.info({ graceMs }, 'shutting down');
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      await engine.stop(graceMs);
      server.closeAllConnections();
      await closed;
      await provisioners.close();
      await database.close();
      log.info('stopped');
    })());
  return { server, url, catalog, stores, engine, database, log, credentials, stop };
}
