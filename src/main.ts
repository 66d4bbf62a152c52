// The composition root: builds every part from a validated Config and wires
// them together. Nothing else constructs stores, engines or servers.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import type { Config, Credential } from './config.ts';
import { loadCatalog } from './catalog/catalog.ts';
import { openDatabase, migrateLatest, migrationsApplied, restrictStateDatabase, type Database } from './db/database.ts';
import { SecretBox } from './secret-box.ts';
import { createStores, type Stores } from './store/unit-of-work.ts';
import { OperationEngine } from './operations/worker.ts';
import { CredentialExpiry } from './operations/credential-expiry.ts';
import { OperationSignals } from './operations/signals.ts';
import { PgNotifications } from './db/notifications.ts';
import { createBroker } from './broker/index.ts';
import { createApp, osbRoutes } from './http/app.ts';
import { createHotPath } from './http/hot-path.ts';
import { staticCredentials } from './http/static-credentials.ts';
import { TokenReviewer } from './http/token-review.ts';
import { reloadTlsOnChange } from './http/tls-reloader.ts';
import { readTlsMaterial } from './lib/tls-material.ts';
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { createLogger } from './observability/logger.ts';
import { createMetrics, maintenanceGauge } from './observability/metrics.ts';
import { atMostEvery } from './observability/probes.ts';
import { createBerthHttpServer } from './http/server.ts';
import { AuthThrottle } from './http/auth-throttle.ts';
import { Gauge } from 'prom-client';
import { ProvisionerRegistry, type Provisioner } from './provisioners/provisioner.ts';
import { builtInProvisioners } from './provisioners/index.ts';
import { KubernetesAccess } from './kubernetes/client.ts';
import { createBindingSecretHooks } from './kubernetes/binding-secrets.ts';
import { clusterCheck, KubernetesClusters } from './kubernetes/clusters.ts';
import { startAdmin } from './admin/index.ts';
import { createDashboard, dashboardLinks } from './dashboard/routes.ts';
import { DASHBOARD_KEY_PURPOSE, DashboardTokens } from './dashboard/token.ts';
import { DashboardViews } from './dashboard/view.ts';

export interface Berth {
  /** https: when BERTH_TLS_CERT_FILE/BERTH_TLS_KEY_FILE are set. */
  url: string;
  /** The plain-HTTP listener beside HTTPS (BERTH_HTTP_PORT), if any. */
  httpUrl: string | undefined;
  /** The admin API (BERTH_ADMIN_PORT), when admin tokens are configured. */
  adminUrl: string | undefined;
  /** For tests that look at rows directly. */
  stores: Stores;
  database: Database;
  /** The credentials it accepts (generated ones in embedded mode): what a controller in this process uses. */
  credentials: Credential[];
  /** Graceful stop: stop claiming, finish or hand back operations, close HTTP, close the database. */
  stop(graceMs?: number): Promise<void>;
}

/** Provisioner kinds: the built-in ones plus modules named in BERTH_PROVISIONER_MODULES (comma-separated paths). */
export async function loadProvisioners(
  config: Config,
  log: Logger,
  kube: KubernetesAccess | KubernetesClusters = new KubernetesAccess(config),
): Promise<ProvisionerRegistry> {
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
  const keyFile = embeddedKeyFile(config);
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
  const clusters = new KubernetesClusters(config, kube);
  const provisioners = opts.provisioners ?? (await loadProvisioners(config, log, clusters));
  const catalog = loadCatalog(config.catalogPath, provisioners.parseConfig);
  const bindingSecretsWanted = config.kubernetesSecrets || catalog.plans.some((p) => p.options.bindingSecret === true);
  if (!clusters.configured && bindingSecretsWanted) {
    log.info('no Kubernetes cluster is configured (KUBECONFIG): bind requests from Kubernetes get their credentials in the response only, no binding Secret is written');
  }

  let keys = config.encryptionKeys;
  let credentials = config.credentials;
  if (!config.databaseUrl) ({ keys, credentials } = await embeddedSecrets(config, log));
  const box = new SecretBox(keys!);

  const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, poolSize: config.dbPoolSize, log });
  try {
    const applied = await migrateLatest(database.knex, { box, log, catalog });
    if (applied.length > 0) log.info({ applied }, 'database migrated');
    if (!database.embedded) await restrictStateDatabase(database.knex, log);
  } catch (err) {
    await database.close();
    throw err;
  }
  const stores = createStores(database.knex, box, config.worker.leaseMs);
  const metrics = createMetrics();
  const operationsGauge = new Gauge({
    name: 'berth_operations',
    help: 'Operations recorded in the database by kind and state',
    labelNames: ['kind', 'state'],
    registers: [metrics.registry],
  });
  // Wakes synchronous requests and idle workers when an operation ends. Embedded mode is one
  // process, so the in-process signal is enough; with Postgres, replicas tell each other.
  const signals = new OperationSignals();
  const notifications = database.embedded
    ? undefined
    : new PgNotifications({ url: database.url, channel: 'berth_operation_ended', log, onMessage: (id) => signals.received(id) });
  signals.relayTo(notifications);
  const engine = new OperationEngine({
    signals,
    stores,
    catalog,
    provisioners,
    log,
    metrics,
    options: config.worker,
    hooks: createBindingSecretHooks(clusters, config.kubernetesSecrets),
  });
  // About a second after expires_at at most (the poll interval, at least 1 s: one indexed query a round).
  const credentialExpiry = new CredentialExpiry({ stores, catalog, provisioners, log, intervalMs: Math.max(config.worker.pollIntervalMs, 1000) });
  // Dashboard links are signed with keys derived from the encryption keys: rotating those (new key first,
  // old one kept until re-sealed) keeps links valid; removing a key revokes the links it signed.
  const dashboardTokens = config.dashboard ? new DashboardTokens(box.derivedKeys(DASHBOARD_KEY_PURPOSE), config.dashboard.linkLifetimeMs) : undefined;
  const dashboardLink = config.dashboard && dashboardTokens ? dashboardLinks(config.dashboard.baseUrl, dashboardTokens) : undefined;
  const broker = createBroker({
    catalog,
    stores,
    provisioners,
    engine,
    dashboardUrl: dashboardLink,
    clusters: clusterCheck(clusters, config.kubernetesSecrets),
  });
  const dashboard =
    config.dashboard && dashboardTokens
      ? createDashboard({ baseUrl: config.dashboard.baseUrl, tokens: dashboardTokens, views: new DashboardViews({ stores, catalog, resources: broker.resources }), log })
      : undefined;
  const accepted = staticCredentials(credentials, config.bearer, config.filesReloadMs, log);
  const auth = {
    matches: accepted.matches,
    clientCertificates: config.tls?.clientCaFile !== undefined,
    tokens: config.tokenReview ? new TokenReviewer({ kube, ...config.tokenReview, log }) : undefined,
    throttle: new AuthThrottle({ limit: config.auth.failureLimit, windowMs: config.auth.failureWindowMs }),
    log,
  };
  // /readyz and /metrics need no credentials: whatever their request rate, the
  // database answers for them at most once per interval.
  const readiness = atMostEvery(config.probeIntervalMs, async () => {
    try {
      return (await migrationsApplied(database.knex)) ? undefined : 'database migrations are not applied';
    } catch (err) {
      log.warn({ err }, 'readiness: the database is unreachable');
      return 'database unreachable';
    }
  });
  const refreshOperationsGauge = atMostEvery(config.probeIntervalMs, async () => {
    const rows = await stores.operations.countByState();
    operationsGauge.reset();
    for (const row of rows) operationsGauge.set({ kind: row.kind, state: row.state }, Number(row.n));
  });
  const refreshMaintenanceGauge = maintenanceGauge(metrics.registry, catalog, stores, config.probeIntervalMs);
  const beforeScrape = async () => {
    await Promise.all([refreshOperationsGauge(), refreshMaintenanceGauge()]);
  };
  const app = createApp({ broker, auth, log, metrics, readiness, beforeScrape, dashboard: dashboard?.router });
  const hotPath = createHotPath({ routes: osbRoutes(broker), auth, log, metrics });
  const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    if (!hotPath(req, res)) app(req, res);
  };
  const limits = { ...config.http, keepAliveTimeoutMs: 65_000 };
  // Read again here (config.ts checked them): the files may have changed since.
  const tlsMaterial = config.tls ? readTlsMaterial(config.tls) : undefined;
  const http = createBerthHttpServer(limits, handler, log, tlsMaterial && { cert: tlsMaterial.cert, key: tlsMaterial.key, clientCa: tlsMaterial.ca });
  // Plain HTTP beside HTTPS only when asked for (BERTH_HTTP_PORT), e.g. for probes or a platform without the CA.
  const plainHttp = config.httpPort !== undefined ? createBerthHttpServer(limits, handler, log) : undefined;
  const servers = [http, ...(plainHttp ? [plainHttp] : [])];
  const url = `${tlsMaterial ? 'https' : 'http'}://${config.host}:${await listen(http.server, config.port, config.host, log)}`;
  const httpUrl = plainHttp ? `http://${config.host}:${await listen(plainHttp.server, config.httpPort!, config.host, log)}` : undefined;
  let tlsReload: { stop(): void } | undefined;
  if (tlsMaterial) {
    const expiry = new Gauge({
      name: 'berth_tls_certificate_expiry_timestamp_seconds',
      help: 'When the certificate Berth serves HTTPS with expires (Unix time); alert well before it',
      registers: [metrics.registry],
    });
    const showExpiry = (m: typeof tlsMaterial) => expiry.set(Date.parse(m.summary.validTo) / 1000);
    showExpiry(tlsMaterial);
    tlsReload = reloadTlsOnChange(http.server as HttpsServer, config.tls!, tlsMaterial, { intervalMs: config.filesReloadMs, log, onReloaded: showExpiry });
  }
  if (tlsMaterial) log.info({ certificate: tlsMaterial.summary, clientCertificates: auth.clientCertificates }, 'serving HTTPS');
  const admin = await startAdmin({
    config,
    stores,
    engine,
    catalog,
    provisioners,
    kube,
    log,
    metrics,
    tls: tlsMaterial && { cert: tlsMaterial.cert, key: tlsMaterial.key, clientCa: undefined },
    listen: (server, port, host) => listen(server, port, host, log),
  });
  notifications?.start();
  engine.start();
  credentialExpiry.start();
  log.info({ url, httpUrl, embedded: database.embedded, catalog: config.catalogPath }, 'Berth is serving');
  // Part of the shutdown below: aborted and awaited before the provisioners' pools close.
  const inspection = new AbortController();
  const inspected = provisioners.inspectServers(catalog.plans, inspection.signal);

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = config.shutdownGraceMs) =>
    (stopping ??= (async () => {
      const inFlight = () => servers.reduce((n, s) => n + s.inFlight, 0);
      log.info({ graceMs, requestsInFlight: inFlight() }, 'shutting down');
      const deadline = Date.now() + graceMs;
      tlsReload?.stop();
      accepted.stop();
      // Requests in flight are answered first, with the engine still running (a
      // synchronous request may need it) and the pools open (they need those too).
      const drained = await Promise.all(servers.map((s) => s.drain(deadline)));
      if (drained.includes(false)) log.warn({ requestsInFlight: inFlight() }, 'requests still unanswered at the end of the grace period');
      await admin.stop(deadline);
      await engine.stop(Math.max(0, deadline - Date.now()));
      await credentialExpiry.stop();
      await Promise.all(servers.map((s) => s.close()));
      inspection.abort();
      await inspected;
      await provisioners.close();
      await notifications?.stop();
      await database.close();
      log.info('stopped');
    })());
  return { url, httpUrl, adminUrl: admin.url, stores, database, credentials, stop };
}

/** Listens and resolves with the port; after listening, an error is a failed accept (e.g. out of file descriptors): logged, serving goes on. */
async function listen(server: Server, port: number, host: string, log: Logger): Promise<number> {
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  let lastAcceptError = 0;
  server.on('error', (err) => {
    if (Date.now() - lastAcceptError < 10_000) return;
    lastAcceptError = Date.now();
    log.error({ err }, 'accepting a connection failed');
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : port;
}

/** Where embedded mode keeps its generated encryption keys (used when BERTH_ENCRYPTION_KEYS is unset). */
export function embeddedKeyFile(config: Config): string {
  return join(config.dataDir, 'encryption-keys');
}
