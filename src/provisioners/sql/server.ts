// Where the `postgres` and `mysql` provisioners find the servers a plan names.
// A plan says `server: shared`; the admin connection URL comes from the
// environment, never from catalog.yaml:
//
//   BERTH_<ENGINE>_<NAME>_URL        admin URL (postgres://user:pass@host:5432/postgres, mysql://root:pass@host:3306/)
//   BERTH_<ENGINE>_<NAME>_URL_FILE   or a file holding it (a mounted Secret); read at every operation, so rotation works
//   BERTH_<ENGINE>_<NAME>_HOST       optional: the host apps should use, if not the admin URL's
//   BERTH_<ENGINE>_<NAME>_PORT       optional: the port apps should use, if not the admin URL's
//
// <ENGINE> is POSTGRES or MYSQL; <NAME> is the server name upper-cased with
// every character other than A-Z and 0-9 turned into `_`.
import { readFileSync } from 'node:fs';
import { PermanentError } from '../../osb/errors.ts';
import type { CatalogPlan } from '../../catalog/catalog.ts';

/** Databases stay on their server and their kind: a plan change that would move one is refused (422). */
export function refuseServerMove(kind: string, from: CatalogPlan, to: CatalogPlan): string | undefined {
  if (to.provisioner.kind !== kind) return `Plan "${to.name}" is not a ${kind} plan; a database cannot move to another kind of service.`;
  const a = (from.provisioner.config as { server: string }).server;
  const b = (to.provisioner.config as { server: string }).server;
  if (a !== b) return `Plan "${to.name}" is on another server ("${b}", not "${a}"); Berth does not move databases between servers.`;
  return undefined;
}

export const SERVER_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

export interface DatabaseServer {
  /** The plan's server name. */
  name: string;
  /** The admin connection URL (a secret: never log it or put it in messages). */
  adminUrl: string;
  /** What apps are told (credentials). */
  advertisedHost: string;
  advertisedPort: number;
}

export function serverEnvPrefix(engine: 'postgres' | 'mysql', name: string): string {
  return `BERTH_${engine.toUpperCase()}_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/**
 * Resolves a server name to its admin URL and advertised address.
 * Missing or malformed configuration is a PermanentError that names the variable (never its value).
 */
export function resolveServer(
  env: Readonly<Record<string, string | undefined>>,
  engine: 'postgres' | 'mysql',
  name: string,
  protocols: string[],
  defaultPort: number,
): DatabaseServer {
  const prefix = serverEnvPrefix(engine, name);
  const direct = env[`${prefix}_URL`]?.trim();
  const file = env[`${prefix}_URL_FILE`]?.trim();
  if (direct && file) {
    throw new PermanentError(`Server "${name}" is configured twice: set either ${prefix}_URL or ${prefix}_URL_FILE, not both.`);
  }
  let adminUrl = direct;
  if (!adminUrl && file) {
    try {
      adminUrl = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new PermanentError(`Server "${name}": cannot read ${prefix}_URL_FILE (${(err as NodeJS.ErrnoException).code ?? 'error'}).`);
    }
    if (!adminUrl) throw new PermanentError(`Server "${name}": the file named by ${prefix}_URL_FILE is empty.`);
  }
  if (!adminUrl) {
    throw new PermanentError(`${engine} server "${name}" is not configured: set ${prefix}_URL (or ${prefix}_URL_FILE) to its admin connection URL.`);
  }
  const source = direct ? `${prefix}_URL` : `The URL in ${prefix}_URL_FILE`;
  let url: URL;
  try {
    url = new URL(adminUrl);
  } catch {
    throw new PermanentError(`${source} is not a valid URL.`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new PermanentError(`${source} must be a ${protocols.map((p) => `${p}//`).join(' or ')} URL.`);
  }
  const hostVar = env[`${prefix}_HOST`]?.trim();
  const portVar = env[`${prefix}_PORT`]?.trim();
  const urlHost = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const advertisedHost = hostVar || urlHost;
  if (!advertisedHost) throw new PermanentError(`${source} has no host; set ${prefix}_HOST to the host apps should connect to.`);
  const port = portVar ?? (url.port || String(defaultPort));
  const advertisedPort = Number(port);
  if (!/^\d{1,5}$/.test(port) || advertisedPort < 1 || advertisedPort > 65535) {
    throw new PermanentError(`${portVar !== undefined ? `${prefix}_PORT` : source} has an invalid port.`);
  }
  return { name, adminUrl, advertisedHost, advertisedPort };
}

/** The admin URL with another user, password and database (keeps host, port and query such as sslmode). */
export function urlWith(adminUrl: string, opts: { user?: string; password?: string; database?: string }): string {
  const u = new URL(adminUrl);
  if (opts.user !== undefined) u.username = encodeURIComponent(opts.user);
  if (opts.password !== undefined) u.password = encodeURIComponent(opts.password);
  if (opts.database !== undefined) u.pathname = `/${encodeURIComponent(opts.database)}`;
  return u.toString();
}

/** host[:port] for a URI authority (IPv6 literals in brackets). */
export function authority(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** After an abort, how long a worker waits for the cancelled admin statement to end before it stops waiting. */
export const CANCEL_GRACE_MS = 5_000;

/**
 * Settles with `work`, or, once `signal` aborts, calls `cancel` (which ends the statement in flight on
 * the server: pg_cancel_backend, KILL QUERY) and rejects with the abort reason when `work` settles or
 * `graceMs` later, whichever comes first: a cancel that cannot reach the server never holds the worker
 * (the server's own statement timeout ends what is left there).
 */
export async function cancellable<T>(work: Promise<T>, signal: AbortSignal, cancel: () => Promise<void>, graceMs = CANCEL_GRACE_MS): Promise<T> {
  let grace: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const abandoned = new Promise<never>((_, reject) => {
    onAbort = () => {
      void cancel().catch(() => {});
      grace = setTimeout(() => reject(signal.reason), graceMs);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, abandoned]);
  } finally {
    work.catch(() => {});
    abandoned.catch(() => {});
    clearTimeout(grace);
    signal.removeEventListener('abort', onAbort!);
  }
}

/**
 * One admin step: `prepare` (e.g. connecting), then `work`, cancellable; an abort wins over the step's
 * own outcome, and any other failure goes through `classify` (permanent or transient).
 */
export async function adminStep<T>(
  step: { prepare?: () => Promise<void>; work: () => Promise<T>; cancel: () => Promise<void> },
  signal: AbortSignal,
  classify: (err: unknown) => unknown,
): Promise<T> {
  try {
    await step.prepare?.();
    const result = await cancellable(step.work(), signal, step.cancel);
    signal.throwIfAborted();
    return result;
  } catch (err) {
    signal.throwIfAborted();
    throw classify(err);
  }
}
