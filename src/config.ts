// Parses and checks the environment into a Config; every part of Berth
// receives a Config rather than reading process.env. Two exceptions, on
// purpose: failpoints.ts (crash points armed by tests) and the helm provisioner,
// which hands helm its environment.
import { z } from 'zod';
import { SecretBox } from './secret-box.ts';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { readTlsMaterial } from './lib/tls-material.ts';
import { parseTokenList, readTokenFile } from './lib/bearer-tokens.ts';
import { readClustersFile, type ClustersConfig } from './lib/clusters-file.ts';
import { adminConfigOf, type AdminConfig } from './admin/config.ts';

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
  KUBERNETES_SERVICE_HOST: z.string().optional(),
  BERTH_CLUSTERS_FILE: z.string().min(1).optional(),
  BERTH_KUBERNETES_SECRETS: z.enum(['true', 'false']).default('true'),
  BERTH_MIN_PASSWORD_LENGTH: z.coerce.number().int().min(1).max(1024).default(12),
  BERTH_AUTH_FAILURE_LIMIT: z.coerce.number().int().min(1).max(1_000_000).default(10),
  BERTH_AUTH_FAILURE_WINDOW_SECONDS: z.coerce.number().min(1).max(86_400).default(60),
  BERTH_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(512),
  BERTH_HEADERS_TIMEOUT_SECONDS: z.coerce.number().min(0.1).max(600).default(10),
  BERTH_REQUEST_TIMEOUT_SECONDS: z.coerce.number().min(0.1).max(3600).default(30),
  BERTH_PROBE_INTERVAL_SECONDS: z.coerce.number().min(0.1).max(3600).default(5),
  BERTH_TLS_CERT_FILE: z.string().min(1).optional(),
  BERTH_TLS_KEY_FILE: z.string().min(1).optional(),
  BERTH_TLS_CLIENT_CA_FILE: z.string().min(1).optional(),
  BERTH_FILES_RELOAD_SECONDS: z.coerce.number().min(0.05).max(3600).default(10),
  BERTH_HTTP_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  BERTH_BEARER_TOKENS: z.string().optional(),
  BERTH_BEARER_TOKENS_FILE: z.string().min(1).optional(),
  BERTH_TOKENREVIEW: z.enum(['true', 'false']).default('false'),
  BERTH_TOKENREVIEW_ALLOWED: z.string().optional(),
  BERTH_TOKENREVIEW_AUDIENCE: z.string().optional(),
  BERTH_TOKENREVIEW_CACHE_SECONDS: z.coerce.number().min(0).max(600).default(10),
  BERTH_DASHBOARD_URL: z.string().optional(),
  BERTH_DASHBOARD_LINK_DAYS: z.coerce.number().int().min(1).max(3650).default(365),
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
  /** BERTH_CLUSTERS_FILE: several clusters, chosen by context.clusterid; undefined: the one cluster of KUBECONFIG. */
  clusters: ClustersConfig | undefined;
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
  /** HTTPS on PORT when set (BERTH_TLS_*); a changed valid set of files serves new connections. */
  tls: { certFile: string; keyFile: string; clientCaFile: string | undefined } | undefined;
  /** How often the TLS and bearer-token files are checked for changes. */
  filesReloadMs: number;
  /** A plain-HTTP listener besides HTTPS (BERTH_HTTP_PORT); undefined: HTTPS only. */
  httpPort: number | undefined;
  bearer: {
    /** BERTH_BEARER_TOKENS. */
    tokens: string[];
    /** BERTH_BEARER_TOKENS_FILE, re-read when it changes, and its tokens as read at start. */
    tokensFile: string | undefined;
    fileTokens: string[];
    /** BERTH_MIN_PASSWORD_LENGTH, for tokens read later from the file. */
    minLength: number;
  };
  /** Bearer tokens that are no static token are checked with the cluster's TokenReview API (BERTH_TOKENREVIEW=true). */
  tokenReview:
    | {
        /** Full usernames ("system:serviceaccount:NS:NAME") allowed. */
        users: string[];
        /** Groups whose members are allowed (e.g. "system:serviceaccounts:NS"). */
        groups: string[];
        /** Audiences a token must be meant for; empty: the API server's own. */
        audiences: string[];
        /** How long a review's answer (either way) is reused. */
        cacheMs: number;
      }
    | undefined;
  /** Readiness and the database-derived gauges are computed at most once per this interval. */
  probeIntervalMs: number;
  /** The admin API (off without admin tokens) and the orphan sweeper (src/admin/config.ts). */
  admin: AdminConfig;
  /**
   * Berth's instance dashboards (BERTH_DASHBOARD_URL: the broker's public base URL, as browsers reach it):
   * every instance's dashboard_url points at its page. Undefined: no dashboards, no dashboard_url from Berth.
   */
  dashboard: { baseUrl: string; linkLifetimeMs: number } | undefined;
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
  const tls = tlsOf(e);
  if (e.BERTH_HTTP_PORT !== undefined && !tls) {
    throw new ConfigError('BERTH_HTTP_PORT adds a plain-HTTP listener beside HTTPS: set BERTH_TLS_CERT_FILE and BERTH_TLS_KEY_FILE too (without TLS, PORT already serves plain HTTP)');
  }
  if (tls && e.BERTH_HTTP_PORT !== undefined && e.BERTH_HTTP_PORT !== 0 && e.BERTH_HTTP_PORT === e.PORT) {
    throw new ConfigError('BERTH_HTTP_PORT must differ from PORT (PORT serves HTTPS)');
  }
  const bearer = bearerOf(e);
  const tokenReview = tokenReviewOf(e);
  if (e.DATABASE_URL && credentials.length === 0 && bearer.tokens.length === 0 && !bearer.tokensFile && !tokenReview && !tls?.clientCaFile) {
    throw new ConfigError(
      'BROKER_USERNAME and BROKER_PASSWORD are required when DATABASE_URL is set, unless another credential is configured: BERTH_BEARER_TOKENS or BERTH_BEARER_TOKENS_FILE, BERTH_TOKENREVIEW=true, or BERTH_TLS_CLIENT_CA_FILE',
    );
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
  let clusters: ClustersConfig | undefined;
  if (e.BERTH_CLUSTERS_FILE !== undefined) {
    try {
      clusters = readClustersFile(e.BERTH_CLUSTERS_FILE);
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
  }
  let admin: AdminConfig;
  try {
    admin = adminConfigOf(env, e.BERTH_MIN_PASSWORD_LENGTH, [...credentials.map((c) => c.password), ...bearer.tokens, ...bearer.fileTokens]);
  } catch (err) {
    throw new ConfigError((err as Error).message);
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
    clusters,
    kubernetesSecrets: e.BERTH_KUBERNETES_SECRETS === 'true',
    auth: { failureLimit: e.BERTH_AUTH_FAILURE_LIMIT, failureWindowMs: e.BERTH_AUTH_FAILURE_WINDOW_SECONDS * 1000 },
    http: {
      maxConnections: e.BERTH_MAX_CONNECTIONS,
      headersTimeoutMs: e.BERTH_HEADERS_TIMEOUT_SECONDS * 1000,
      requestTimeoutMs: e.BERTH_REQUEST_TIMEOUT_SECONDS * 1000,
    },
    probeIntervalMs: e.BERTH_PROBE_INTERVAL_SECONDS * 1000,
    tls,
    filesReloadMs: e.BERTH_FILES_RELOAD_SECONDS * 1000,
    httpPort: tls ? e.BERTH_HTTP_PORT : undefined,
    bearer,
    tokenReview,
    admin,
    dashboard: dashboardOf(e),
    env: Object.freeze({ ...env }),
  };
}

type Env = z.infer<typeof envSchema>;

function tlsOf(e: Env): Config['tls'] {
  const { BERTH_TLS_CERT_FILE: certFile, BERTH_TLS_KEY_FILE: keyFile, BERTH_TLS_CLIENT_CA_FILE: clientCaFile } = e;
  if (!certFile && !keyFile) {
    if (clientCaFile) throw new ConfigError('BERTH_TLS_CLIENT_CA_FILE needs HTTPS: set BERTH_TLS_CERT_FILE and BERTH_TLS_KEY_FILE too');
    return undefined;
  }
  if (!certFile || !keyFile) {
    throw new ConfigError(`${certFile ? 'BERTH_TLS_KEY_FILE' : 'BERTH_TLS_CERT_FILE'} is missing: BERTH_TLS_CERT_FILE and BERTH_TLS_KEY_FILE must be set together (e.g. tls.crt and tls.key of a mounted cert-manager Secret)`);
  }
  const files = { certFile: resolve(certFile), keyFile: resolve(keyFile), clientCaFile: clientCaFile ? resolve(clientCaFile) : undefined };
  try {
    readTlsMaterial(files);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  return files;
}

function bearerOf(e: Env): Config['bearer'] {
  const minLength = e.BERTH_MIN_PASSWORD_LENGTH;
  const tokensFile = e.BERTH_BEARER_TOKENS_FILE ? resolve(e.BERTH_BEARER_TOKENS_FILE) : undefined;
  try {
    const tokens = parseTokenList(e.BERTH_BEARER_TOKENS ?? '', minLength);
    const fileTokens = tokensFile ? readTokenFile(tokensFile, minLength) : [];
    return { tokens, tokensFile, fileTokens, minLength };
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

function dashboardOf(e: Env): Config['dashboard'] {
  const raw = e.BERTH_DASHBOARD_URL?.trim();
  if (!raw) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`BERTH_DASHBOARD_URL must be the broker's public base URL as browsers reach it (e.g. https://berth.example.com), not "${raw.slice(0, 100)}"`);
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.search || url.hash || url.username || url.password) {
    throw new ConfigError('BERTH_DASHBOARD_URL must be a plain http(s) base URL without query, fragment or credentials (e.g. https://berth.example.com or https://apps.example.com/berth)');
  }
  return { baseUrl: url.href.replace(/\/+$/, ''), linkLifetimeMs: e.BERTH_DASHBOARD_LINK_DAYS * 86_400_000 };
}

const SERVICE_ACCOUNT = /^system:serviceaccount:[a-z0-9]([-a-z0-9]*[a-z0-9])?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function tokenReviewOf(e: Env): Config['tokenReview'] {
  const allowed = (e.BERTH_TOKENREVIEW_ALLOWED ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  const audiences = (e.BERTH_TOKENREVIEW_AUDIENCE ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (e.BERTH_TOKENREVIEW !== 'true') {
    if (allowed.length > 0 || audiences.length > 0) {
      throw new ConfigError('BERTH_TOKENREVIEW_ALLOWED and BERTH_TOKENREVIEW_AUDIENCE apply only with BERTH_TOKENREVIEW=true');
    }
    return undefined;
  }
  if (allowed.length === 0) {
    throw new ConfigError(
      'BERTH_TOKENREVIEW=true needs BERTH_TOKENREVIEW_ALLOWED: a comma-separated list of system:serviceaccount:NAMESPACE:NAME and/or group:GROUP (otherwise every ServiceAccount of the cluster could use the broker)',
    );
  }
  const users: string[] = [];
  const groups: string[] = [];
  for (const entry of allowed) {
    if (entry.startsWith('group:') && entry.length > 'group:'.length) groups.push(entry.slice('group:'.length));
    else if (SERVICE_ACCOUNT.test(entry)) users.push(entry);
    else {
      throw new ConfigError(
        `BERTH_TOKENREVIEW_ALLOWED: "${entry.slice(0, 100)}" is neither system:serviceaccount:NAMESPACE:NAME nor group:GROUP (e.g. group:system:serviceaccounts:cf-system for every ServiceAccount of a namespace)`,
      );
    }
  }
  if (!e.KUBECONFIG && !e.KUBERNETES_SERVICE_HOST) {
    throw new ConfigError('BERTH_TOKENREVIEW=true needs a cluster to ask: set KUBECONFIG, or run Berth as a Pod with a ServiceAccount (allowed to create tokenreviews)');
  }
  return { users, groups, audiences, cacheMs: e.BERTH_TOKENREVIEW_CACHE_SECONDS * 1000 };
}
