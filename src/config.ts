// Parses and checks the environment into a Config; every part of Berth
// receives a Config rather than reading process.env. Two exceptions, on
// purpose: failpoints.ts (crash points armed by tests) and the helm provisioner,
// which hands helm its environment.
import { z } from 'zod';
import { SecretBox } from './secret-box.ts';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

const credentialPair = z.object({ username: z.string().min(1), password: z.string().min(1) });

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().default('127.0.0.1'),
  DATABASE_URL: z.string().url().optional(),
  CATALOG_PATH: z.string().default('catalog.yaml'),
  BROKER_USERNAME: z.string().min(1).optional(),
  BROKER_PASSWORD: z.string().min(1).optional(),
  BROKER_CREDENTIALS: z.string().optional(),
  BERTH_ENCRYPTION_KEYS: z.string().optional(),
  BERTH_DATA_DIR: z.string().optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  BERTH_WORKER_CONCURRENCY: z.coerce.number().int().min(0).max(64).default(4),
  BERTH_LEASE_SECONDS: z.coerce.number().min(1).max(3600).default(30),
  BERTH_POLL_INTERVAL_MS: z.coerce.number().int().min(10).max(60000).default(500),
  BERTH_SHUTDOWN_GRACE_SECONDS: z.coerce.number().min(0).max(3600).default(25),
  BERTH_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(1000).default(8),
  // Platforms give up on a request after 60 s (Service Catalog, Cloud Foundry) and then undo the
  // operation; the answer (202 or 504) must reach them well before that.
  BERTH_SYNC_WAIT_SECONDS: z.coerce.number().min(1).max(50).default(20),
  BERTH_DB_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  BERTH_HELM_BIN: z.string().optional(),
  KUBECONFIG: z.string().optional(),
  BERTH_KUBERNETES_SECRETS: z.enum(['true', 'false']).default('true'),
  BERTH_MIN_PASSWORD_LENGTH: z.coerce.number().int().min(1).max(1024).default(12),
  BERTH_AUTH_FAILURE_LIMIT: z.coerce.number().int().min(1).max(1_000_000).default(10),
  BERTH_AUTH_FAILURE_WINDOW_SECONDS: z.coerce.number().min(1).max(86_400).default(60),
  BERTH_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(512),
  BERTH_HEADERS_TIMEOUT_SECONDS: z.coerce.number().min(0.1).max(600).default(10),
  BERTH_REQUEST_TIMEOUT_SECONDS: z.coerce.number().min(0.1).max(3600).default(30),
  BERTH_PROBE_INTERVAL_SECONDS: z.coerce.number().min(0.1).max(3600).default(5),
});

export interface Credential {
  username: string;
  password: string;
}

export interface Config {
  port: number;
  host: string;
  databaseUrl: string | undefined;
  catalogPath: string;
  credentials: Credential[];
  /** Raw key list ("kid:base64,kid:base64"); undefined only in embedded mode before the data dir provides one. */
  encryptionKeys: string | undefined;
  dataDir: string;
  logLevel: string;
  worker: {
    concurrency: number;
    leaseMs: number;
    pollIntervalMs: number;
    maxAttempts: number;
    /** How long a request for a synchronous plan waits for its operation before answering 202 or 504. */
    syncWaitMs: number;
  };
  shutdownGraceMs: number;
  dbPoolSize: number;
  helmBin: string | undefined;
  kubeconfig: string | undefined;
  kubernetesSecrets: boolean;
  auth: {
    /** Failed basic-auth attempts one client may make per window before it gets 429. */
    failureLimit: number;
    failureWindowMs: number;
  };
  http: {
    /** Open connections; at the cap the oldest connection without a request in progress is closed. */
    maxConnections: number;
    /** Time a connection has to deliver a request's headers (from connect, or since its last response). */
    headersTimeoutMs: number;
    /** Time a client has to deliver a whole request, body included. */
    requestTimeoutMs: number;
  };
  /** Readiness and the database-derived gauges are computed at most once per this interval. */
  probeIntervalMs: number;
  /** Every BERTH_* and provisioner-specific variable, for provisioners that name their own (e.g. admin URLs). */
  env: Readonly<Record<string, string | undefined>>;
}

export class ConfigError extends Error {}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const e = parsed.data;
  const credentials: Credential[] = [];
  if (e.BROKER_USERNAME || e.BROKER_PASSWORD) {
    if (!e.BROKER_USERNAME || !e.BROKER_PASSWORD) {
      throw new ConfigError('BROKER_USERNAME and BROKER_PASSWORD must be set together');
    }
    credentials.push({ username: e.BROKER_USERNAME, password: e.BROKER_PASSWORD });
  }
  let extraCredentials: Credential[] = [];
  if (e.BROKER_CREDENTIALS) {
    let extra: unknown;
    try {
      extra = JSON.parse(e.BROKER_CREDENTIALS);
    } catch {
      throw new ConfigError('BROKER_CREDENTIALS must be a JSON array of {"username","password"} objects');
    }
    const list = z.array(credentialPair).safeParse(extra);
    if (!list.success) throw new ConfigError('BROKER_CREDENTIALS must be a JSON array of {"username","password"} objects');
    extraCredentials = list.data;
    credentials.push(...list.data);
  }
  // Passwords an operator chose (generated ones are long): a short one is a guessable one.
  const named = [
    ...(e.BROKER_PASSWORD !== undefined ? [{ name: 'BROKER_PASSWORD', password: e.BROKER_PASSWORD }] : []),
    ...extraCredentials.map((c, i) => ({ name: `BROKER_CREDENTIALS[${i}].password`, password: c.password })),
  ];
  const short = named.filter((c) => c.password.length < e.BERTH_MIN_PASSWORD_LENGTH).map((c) => c.name);
  if (short.length > 0) {
    throw new ConfigError(
      `${short.join(', ')} must be at least ${e.BERTH_MIN_PASSWORD_LENGTH} characters long (BERTH_MIN_PASSWORD_LENGTH); generate one with e.g. \`openssl rand -base64 24\``,
    );
  }
  if (e.BERTH_REQUEST_TIMEOUT_SECONDS < e.BERTH_HEADERS_TIMEOUT_SECONDS) {
    throw new ConfigError('BERTH_REQUEST_TIMEOUT_SECONDS must not be shorter than BERTH_HEADERS_TIMEOUT_SECONDS');
  }
  if (e.DATABASE_URL && credentials.length === 0) {
    throw new ConfigError('BROKER_USERNAME and BROKER_PASSWORD are required when DATABASE_URL is set');
  }
  if (e.DATABASE_URL && !e.BERTH_ENCRYPTION_KEYS) {
    throw new ConfigError('BERTH_ENCRYPTION_KEYS is required when DATABASE_URL is set');
  }
  if (e.BERTH_ENCRYPTION_KEYS !== undefined) {
    // Parsed here once so a malformed value stops every command with one sentence, not a stack trace later.
    try {
      new SecretBox(e.BERTH_ENCRYPTION_KEYS);
    } catch (err) {
      throw new ConfigError(`${(err as Error).message.replace(/^(?!BERTH_ENCRYPTION_KEYS)/, 'BERTH_ENCRYPTION_KEYS: ')}`);
    }
  }
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    catalogPath: resolve(e.CATALOG_PATH),
    credentials,
    encryptionKeys: e.BERTH_ENCRYPTION_KEYS,
    dataDir: resolve(e.BERTH_DATA_DIR ?? join(homedir(), '.berth')),
    logLevel: e.LOG_LEVEL,
    worker: {
      concurrency: e.BERTH_WORKER_CONCURRENCY,
      leaseMs: e.BERTH_LEASE_SECONDS * 1000,
      pollIntervalMs: e.BERTH_POLL_INTERVAL_MS,
      maxAttempts: e.BERTH_MAX_ATTEMPTS,
      syncWaitMs: e.BERTH_SYNC_WAIT_SECONDS * 1000,
    },
    shutdownGraceMs: e.BERTH_SHUTDOWN_GRACE_SECONDS * 1000,
    dbPoolSize: e.BERTH_DB_POOL_SIZE,
    helmBin: e.BERTH_HELM_BIN,
    kubeconfig: e.KUBECONFIG,
    kubernetesSecrets: e.BERTH_KUBERNETES_SECRETS === 'true',
    auth: { failureLimit: e.BERTH_AUTH_FAILURE_LIMIT, failureWindowMs: e.BERTH_AUTH_FAILURE_WINDOW_SECONDS * 1000 },
    http: {
      maxConnections: e.BERTH_MAX_CONNECTIONS,
      headersTimeoutMs: e.BERTH_HEADERS_TIMEOUT_SECONDS * 1000,
      requestTimeoutMs: e.BERTH_REQUEST_TIMEOUT_SECONDS * 1000,
    },
    probeIntervalMs: e.BERTH_PROBE_INTERVAL_SECONDS * 1000,
    env: Object.freeze({ ...env }),
  };
}
