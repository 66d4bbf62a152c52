// What the provisioners for SQL servers (`postgres`, `mysql`) share: a plan
// names a server (sql/server.ts); provision, update and deprovision are
// asynchronous, bind and unbind synchronous; an instance stays on its server
// and its kind; provision and update converge the same steps; a binding's
// password is checkpointed before it is used and the new login is tried before
// bind answers; credentials carry a URI and a JDBC URL. The SQL steps that
// differ stay in postgres/ and mysql/, where a reader looks for them.
import type { Logger } from 'pino';
import { z } from 'zod';
import type { CatalogPlan } from '../../catalog/catalog.ts';
import type { Config } from '../../config.ts';
import { retry } from '../../lib/retry.ts';
import type { JsonObject, OperationKind } from '../../osb/model.ts';
import { parsePlanBlock, type InstanceOperation, type InstanceResult, type InstanceView, type OperationContext, type ProvisionedResource, type Provisioner, type UpdateOperation } from '../provisioner.ts';
import { generatePassword } from './names.ts';
import { authority, refuseServerMove, resolveServer, type DatabaseServer } from './server.ts';

type Engine = 'postgres' | 'mysql';

/** Ten years: longer is "never" in practice, and a typo (milliseconds for seconds) more likely than intent. */
const MAX_CREDENTIAL_LIFETIME_S = 10 * 365 * 24 * 3600;

/**
 * `credential_lifetime` (seconds) in a plan's `provisioner:` block: each binding's login stops working
 * that long after its bind. Omitted: credentials last until unbind.
 */
export const credentialLifetimeSetting = z
  .number({ error: 'must be a number of seconds (e.g. 86400 for a day); omit it for credentials that last until unbind' })
  .int('must be a whole number of seconds')
  .min(1, 'must be at least 1 second; omit it for credentials that last until unbind')
  .max(MAX_CREDENTIAL_LIFETIME_S, `must be at most ${MAX_CREDENTIAL_LIFETIME_S} seconds (10 years); omit it for credentials that last until unbind`)
  .optional();

/** Platforms are told to renew when this share of the lifetime has passed (OSB `renew_before`). */
const RENEW_AT_SHARE = 0.8;

/** When a binding's credentials expire and when to renew them, as the bind's `metadata` (RFC 3339, whole seconds, UTC). */
export function expiryMetadata(expiresAt: string, lifetimeS: number): { expires_at: string; renew_before: string } {
  const end = Date.parse(expiresAt);
  return { expires_at: rfc3339(end), renew_before: rfc3339(end - Math.round(lifetimeS * (1 - RENEW_AT_SHARE)) * 1000) };
}

function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export abstract class SqlProvisioner<C extends { server: string; credential_lifetime?: number | undefined }> {
  readonly kind: Engine;
  protected readonly log: Logger;
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #schema: Parameters<typeof parsePlanBlock>[0];
  readonly #protocols: string[];
  readonly #defaultPort: number;

  constructor(
    kind: Engine,
    config: Pick<Config, 'env'>,
    log: Logger,
    opts: { schema: Parameters<typeof parsePlanBlock>[0]; protocols: string[]; defaultPort: number },
  ) {
    this.kind = kind;
    this.#env = config.env;
    this.log = log.child({ provisioner: kind });
    this.#schema = opts.schema;
    this.#protocols = opts.protocols;
    this.#defaultPort = opts.defaultPort;
  }

  parsePlanConfig(block: JsonObject): ReturnType<Provisioner['parsePlanConfig']> {
    return parsePlanBlock(this.#schema, block);
  }

  isAsync(kind: OperationKind): boolean {
    return kind === 'provision' || kind === 'update' || kind === 'deprovision';
  }

  checkUpdate(from: CatalogPlan, to: CatalogPlan): string | undefined {
    return refuseServerMove(this.kind, from, to);
  }

  async provision(op: InstanceOperation): Promise<InstanceResult> {
    await this.converge(op, undefined);
    return this.#instanceMetadata(op);
  }

  /** The server cannot change (checkUpdate) and names come from ids, so an update never makes bindings stale. */
  async update(op: UpdateOperation): Promise<InstanceResult> {
    await this.converge(op, op.previous);
    return this.#instanceMetadata(op);
  }

  /** OSB instance metadata: which server (the plan's name for it, and where apps reach it) and database. */
  #instanceMetadata(op: InstanceOperation): InstanceResult {
    const serverName = this.serverNameOf(op.instance, op.state);
    const database = typeof op.state.database === 'string' ? op.state.database : undefined;
    const server = this.server(serverName);
    return {
      metadata: {
        labels: { 'berth.dev/server': serverName, ...(database ? { 'berth.dev/database': database } : {}) },
        attributes: { 'berth.dev/kind': this.kind, 'berth.dev/address': authority(server.advertisedHost, server.advertisedPort) },
      },
    };
  }

  /** Creates what is missing and brings what exists to the plan's settings (provision and update). */
  protected abstract converge(op: InstanceOperation, previous: UpdateOperation['previous'] | undefined): Promise<void>;

  /** Logs in once as `user`; throws when that fails. */
  protected abstract tryLogin(server: DatabaseServer, database: string, user: string, password: string): Promise<void>;

  protected configOf(plan: CatalogPlan): C {
    return plan.provisioner.config as C;
  }

  /** An instance stays on the server it was created on, whatever the catalog says later. */
  protected serverNameOf(instance: InstanceView, state: JsonObject): string {
    return typeof state.server === 'string' ? state.server : this.configOf(instance.plan).server;
  }

  protected server(name: string): DatabaseServer {
    return resolveServer(this.#env, this.kind, name, this.#protocols, this.#defaultPort);
  }

  /**
   * The binding's password: the one checkpointed for this login (`op.state[key] === name`), or a new
   * one, checkpointed with the login (and `extra`) before it is used, so a re-run after a crash sets
   * the same password again.
   */
  protected async bindingPassword(op: OperationContext, key: 'role' | 'user', name: string, extra: Record<string, string> = {}): Promise<string> {
    if (op.state[key] === name && typeof op.state.password === 'string') return op.state.password;
    const password = generatePassword();
    await op.checkpoint({ [key]: name, ...extra, password });
    return password;
  }

  /**
   * When the binding's credentials expire (plans with `credential_lifetime`): checkpointed with the
   * password (pass it to bindingPassword as `extra`), so a re-run after a crash keeps the same end.
   */
  protected expiresAtFor(op: OperationContext, plan: CatalogPlan): string | undefined {
    const lifetime = this.configOf(plan).credential_lifetime;
    if (lifetime === undefined) return undefined;
    if (typeof op.state.expiresAt === 'string') return op.state.expiresAt;
    // Whole seconds, rounded up: what the server stores and what the platform is told are the same instant.
    return rfc3339(Math.ceil((Date.now() + lifetime * 1000) / 1000) * 1000);
  }

  /** The bind's `metadata` for plans with `credential_lifetime`. */
  protected expiryOf(plan: CatalogPlan, expiresAt: string | undefined): { metadata?: { expires_at: string; renew_before: string } } {
    const lifetime = this.configOf(plan).credential_lifetime;
    return lifetime === undefined || expiresAt === undefined ? {} : { metadata: expiryMetadata(expiresAt, lifetime) };
  }

  /** Logs in with the new credentials and runs a query; throws (transient) until that works. */
  protected async verifyLogin(server: DatabaseServer, database: string, user: string, password: string, signal: AbortSignal): Promise<void> {
    try {
      await retry(
        async () => {
          signal.throwIfAborted();
          await this.tryLogin(server, database, user, password);
        },
        { attempts: 3, delayMs: (attempt) => 200 * attempt, retryable: () => !signal.aborted, signal },
      );
    } catch (err) {
      signal.throwIfAborted();
      throw new Error(`logging in with the new credentials failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
  }

  /** For describe: undefined when `user` logs in with `password` now, else the server's reason. */
  protected async loginProblem(server: DatabaseServer, database: string, user: string, password: string): Promise<string | undefined> {
    try {
      await this.tryLogin(server, database, user, password);
      return undefined;
    } catch (err) {
      return (err as Error)?.message ?? String(err);
    }
  }

  /** For describe: the database of an instance whose provision never reached a server. */
  protected notCreated(kind: 'Database', name: string): ProvisionedResource[] {
    return [{ kind, name, state: 'missing', message: 'Not created: the provision has not reached the database server (see the last operation).' }];
  }

  /** The credentials a bind answers with. */
  protected credentials(type: 'postgresql' | 'mysql', server: DatabaseServer, database: string, username: string, password: string): JsonObject {
    const host = server.advertisedHost;
    const port = server.advertisedPort;
    const hp = authority(host, port);
    const enc = encodeURIComponent;
    return {
      type,
      host,
      port: String(port),
      database,
      username,
      password,
      uri: `${type}://${enc(username)}:${enc(password)}@${hp}/${enc(database)}`,
      'jdbc-url': `jdbc:${type}://${hp}/${enc(database)}?user=${enc(username)}&password=${enc(password)}`,
    };
  }
}
