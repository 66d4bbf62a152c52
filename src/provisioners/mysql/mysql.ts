// `mysql`: a database per instance and a user per binding, on an existing
// MySQL (5.7+) or MariaDB (10.3+) server that the plan names.
//
//   provision    CREATE DATABASE berthi<h> with the plan's character set/collation
//   bind         user 'berthb<h'>'@'<user_host>' with a random password and ALL
//                PRIVILEGES on that database only (MySQL objects have no owner,
//                so sibling bindings share everything); then Berth logs in with
//                it before answering
//   unbind       DROP USER, then end the sessions it still has
//   deprovision  every Berth user holding grants on the database (not only the
//                bindings the engine knows), the database's sessions, DROP DATABASE
//   update       converges character set/collation and the per-user connection limit
//   expiry       (plans with credential_lifetime) at expires_at, Berth's expiry sweep locks the
//                user (ACCOUNT LOCK) and ends its sessions; see expireBinding for why Berth does it
//
// Names contain only letters and digits: in GRANT ... ON `db`.*, `_` and `%`
// are wildcards, so a name with them would grant more than one database.
// Provision, update and deprovision are asynchronous; bind and unbind synchronous.
// Admin sessions carry lock_wait_timeout and (MariaDB) max_statement_time; an
// aborted operation's statement in flight is ended with KILL QUERY.
import { createHash } from 'node:crypto';
import type * as mysql from 'mysql2/promise';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Config } from '../../config.ts';
import { failpoint } from '../../failpoints.ts';
import { PermanentError } from '../../osb/errors.ts';
import type { JsonObject } from '../../osb/model.ts';
import type { BindingOperation, BindResult, DescribedBinding, ExpiringBinding, InstanceOperation, InstanceView, ProvisionedResource, Provisioner } from '../provisioner.ts';
import { credentialLifetimeSetting, SqlProvisioner } from '../sql/frame.ts';
import { mysqlNames, quoteMysqlIdent as ident, quoteMysqlString as str } from '../sql/names.ts';
import { adminStep, SERVER_NAME, urlWith, type DatabaseServer } from '../sql/server.ts';

const planConfigSchema = z.strictObject({
  /** Server name: its admin URL is BERTH_MYSQL_<NAME>_URL (or _URL_FILE). */
  server: z.string().regex(SERVER_NAME, 'must be a server name: letters, digits, "-" and "_", starting with a letter or digit, at most 63 characters'),
  charset: z.string().regex(/^[A-Za-z0-9_]{1,32}$/, 'must be a character set name').default('utf8mb4'),
  collation: z.string().regex(/^[A-Za-z0-9_]{1,64}$/, 'must be a collation name').optional(),
  /** MAX_USER_CONNECTIONS of each binding's user; 0 = the server's default. */
  max_user_connections: z.number().int().min(0).max(2_147_483_647).default(0),
  /** The host part of binding users ('%' = from anywhere). */
  user_host: z.string().regex(/^[A-Za-z0-9.%_:/-]{1,255}$/, 'must be a MySQL host pattern (letters, digits, ".", "%", "_", ":", "/", "-")').default('%'),
  /** Seconds a binding's login works (Berth's expiry sweep locks it then); omitted: until unbind. */
  credential_lifetime: credentialLifetimeSetting,
});

export type MysqlPlanConfig = z.infer<typeof planConfigSchema>;

/** Error numbers retrying will not fix: access denied, missing privileges, bad settings, password policy, syntax. */
const PERMANENT_ERRNOS = new Set([1044, 1045, 1698, 1142, 1227, 1410, 1819, 1064, 1115, 1273, 1253, 1396, 1470]);
const UNKNOWN_THREAD = 1094;
const UNKNOWN_SYSTEM_VARIABLE = 1193;
/** ER_CANNOT_USER: ALTER USER of an account that does not exist (unbound, deprovisioned). */
const CANNOT_USER = 1396;
/** ER_PARSE_ERROR: a server without ACCOUNT LOCK (MariaDB before 10.4). */
const PARSE_ERROR = 1064;

/** A statement that waits on an app's metadata locks gives up (and the operation retries) instead of hanging. */
const ADMIN_LOCK_WAIT_TIMEOUT_S = 20;
/** No admin statement runs longer, even when its KILL QUERY cannot reach the server (MariaDB ends it itself). */
const ADMIN_STATEMENT_TIMEOUT_S = 120;

type Conn = mysql.Connection;

export class MysqlProvisioner extends SqlProvisioner<MysqlPlanConfig> implements Provisioner {
  constructor(config: Pick<Config, 'env'>, log: Logger) {
    super('mysql', config, log, { schema: planConfigSchema, protocols: ['mysql:', 'mariadb:'], defaultPort: 3306 });
  }

  protected async converge(op: InstanceOperation): Promise<void> {
    const config = this.configOf(op.instance.plan);
    const names = this.#names(op.instance, op.state);
    // Resolved before the checkpoint: an instance whose state names no server never touched one.
    const server = this.server(names.server);
    if (op.state.server !== names.server || op.state.database !== names.database) await op.checkpoint({ ...names });
    const db = ident(names.database);
    const charset = `CHARACTER SET ${str(config.charset)}${config.collation ? ` COLLATE ${str(config.collation)}` : ''}`;

    op.signal.throwIfAborted();
    await op.progress('Creating the database');
    await this.#admin(server, op.signal, async (c) => {
      const [found] = await c.execute<mysql.RowDataPacket[]>('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [names.database]);
      if (found.length === 0) {
        await c.query(`CREATE DATABASE IF NOT EXISTS ${db} ${charset}`);
        failpoint('mysql:after-create-database');
      }
      await c.query(`ALTER DATABASE ${db} ${charset}`);
      // After a plan change, existing binding users get the new plan's connection limit.
      for (const u of await berthUsersOf(c, names.database)) {
        await c.query(`ALTER USER ${str(u.user)}@${str(u.host)} WITH MAX_USER_CONNECTIONS ${config.max_user_connections}`);
      }
    });
  }

  async deprovision(op: InstanceOperation): Promise<void> {
    // Provision checkpoints the names before it touches the server: without them nothing was created.
    if (typeof op.state.server !== 'string') return;
    const names = this.#names(op.instance, op.state);
    const server = this.server(names.server);
    await op.progress('Dropping the users and the database');
    await this.#admin(server, op.signal, async (c) => {
      for (const u of await berthUsersOf(c, names.database)) await dropUser(c, u.user, u.host);
      const [sessions] = await c.execute<mysql.RowDataPacket[]>('SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()', [
        names.database,
      ]);
      await kill(c, sessions.map((r) => r.ID));
      await c.query(`DROP DATABASE IF EXISTS ${ident(names.database)}`);
    });
  }

  async bind(op: BindingOperation): Promise<BindResult> {
    const config = this.configOf(op.instance.plan);
    const names = this.#names(op.instance, op.instance.state);
    const user = mysqlNames.bindingUser(op.instance.id, op.binding.id);
    const host = typeof op.state.host === 'string' ? op.state.host : config.user_host;
    const server = this.server(names.server);
    const expiresAt = this.expiresAtFor(op, op.instance.plan);
    const password = await this.bindingPassword(op, 'user', user, { host, ...(expiresAt ? { expiresAt } : {}) });
    const account = `${str(user)}@${str(host)}`;
    const limit = `WITH MAX_USER_CONNECTIONS ${config.max_user_connections}`;
    await this.#admin(server, op.signal, async (c) => {
      const [found] = await c.execute<mysql.RowDataPacket[]>(
        'SELECT VERSION() AS version, EXISTS (SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?) AS present',
        [names.database],
      );
      if (!Number(found[0]!.present)) throw new PermanentError('The service instance is incomplete (its database is missing); update or re-create the instance.');
      // MariaDB writes CREATE/ALTER USER to its binary and general logs as sent: send it the password hash.
      // (MySQL rewrites the password out of its logs itself, and its default plugin needs the password.)
      const identified = /mariadb/i.test(String(found[0]!.version))
        ? `IDENTIFIED BY PASSWORD ${str(nativePasswordHash(password))}`
        : `IDENTIFIED BY ${str(password)}`;
      await c.query(`CREATE USER IF NOT EXISTS ${account} ${identified} ${limit}`);
      // When it existed already (a re-run), make sure it has this password and limit.
      await c.query(`ALTER USER ${account} ${identified} ${limit}`);
      await c.query(`GRANT ALL PRIVILEGES ON ${ident(names.database)}.* TO ${account}`);
    });

    await this.verifyLogin(server, names.database, user, password, op.signal);
    return { credentials: this.credentials('mysql', server, names.database, user, password), ...this.expiryOf(op.instance.plan, expiresAt) };
  }

  /**
   * At expires_at: ACCOUNT LOCK (new logins refused) and the user's sessions ended.
   *
   * Why Berth does it, and not the server: MySQL and MariaDB have no VALID UNTIL. Password expiry
   * (PASSWORD EXPIRE INTERVAL n DAY) counts whole days, and an expired password still logs in (in
   * sandbox mode, to change it). A server-side EVENT would be exact, but it needs the event scheduler,
   * which is off by default on MariaDB and not settable on many managed servers, and a disabled
   * scheduler would silently leave expired credentials working. The sweep is driven by the stored
   * expires_at (a restart, or another replica, picks up what is due), so at worst credentials stop
   * working a sweep interval late, or, while no Berth replica runs, when one starts again.
   */
  async expireBinding(binding: ExpiringBinding): Promise<void> {
    const { instanceState, bindingState } = binding;
    if (typeof instanceState.server !== 'string' || typeof bindingState.user !== 'string' || typeof bindingState.host !== 'string') return; // nothing was created
    const user = mysqlNames.bindingUser(binding.instanceId, binding.bindingId);
    const account = `${str(user)}@${str(bindingState.host)}`;
    await this.#admin(this.server(instanceState.server), binding.signal, async (c) => {
      try {
        await c.query(`ALTER USER ${account} ACCOUNT LOCK`);
      } catch (err) {
        const errno = errnoOf(err);
        if (errno === CANNOT_USER) return; // unbound or deprovisioned meanwhile: nothing can log in
        if (errno !== PARSE_ERROR) throw err;
        await c.query(`DROP USER IF EXISTS ${account}`); // no ACCOUNT LOCK on this server: the user goes (unbind tolerates that)
      }
      const [sessions] = await c.execute<mysql.RowDataPacket[]>('SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> CONNECTION_ID()', [user]);
      await kill(c, sessions.map((r) => r.ID));
    });
  }

  protected async tryLogin(server: DatabaseServer, database: string, user: string, password: string): Promise<void> {
    let c: Conn | undefined;
    try {
      c = await connect(connectionOptions(urlWith(server.adminUrl, { user, password, database })));
      c.on('error', () => {});
      await c.query('SELECT 1');
    } finally {
      await c?.end().catch(() => c?.destroy());
    }
  }

  /** `berth trace`: the database, and each binding's user (exists, holds its grant, logs in now). Read-only. */
  async describe(instance: InstanceView & { state: JsonObject }, bindings: DescribedBinding[], signal: AbortSignal): Promise<ProvisionedResource[]> {
    const names = this.#names(instance, instance.state);
    if (typeof instance.state.server !== 'string') return this.notCreated('Database', names.database);
    const server = this.server(names.server);
    const config = this.configOf(instance.plan);
    const found = await this.#admin(server, signal, async (c) => {
      const [db] = await c.execute<mysql.RowDataPacket[]>(
        `SELECT DEFAULT_CHARACTER_SET_NAME AS charset, DEFAULT_COLLATION_NAME AS collation,
                (SELECT COUNT(*) FROM information_schema.PROCESSLIST p WHERE p.DB = s.SCHEMA_NAME) AS sessions
           FROM information_schema.SCHEMATA s WHERE s.SCHEMA_NAME = ?`,
        [names.database],
      );
      const [users] = await c.execute<mysql.RowDataPacket[]>('SELECT User AS user, Host AS host FROM mysql.user WHERE User LIKE ?', [`${mysqlNames.bindingUserPrefix}%`]);
      return { db: db[0], users: users.map((u) => `${u.user}@${u.host}`), granted: (await berthUsersOf(c, names.database)).map((u) => `${u.user}@${u.host}`) };
    });
    const children: ProvisionedResource[] = [];
    const known = new Set<string>();
    for (const b of bindings) {
      const user = mysqlNames.bindingUser(instance.id, b.id);
      const host = typeof b.state.host === 'string' ? b.state.host : config.user_host;
      const account = `${user}@${host}`;
      known.add(account);
      const node = { kind: 'User', name: `'${user}'@'${host}'`, bindingId: b.id };
      if (!found.users.includes(account)) {
        children.push({
          ...node,
          state: 'missing',
          message:
            typeof b.state.user === 'string'
              ? `The binding's user does not exist on server "${server.name}" (dropped outside Berth?): its credentials cannot log in. Unbind and bind again.`
              : 'The bind has not created its user yet.',
        });
        continue;
      }
      let problem: string | undefined;
      if (!found.granted.includes(account)) problem = `it holds no privileges on ${names.database}`;
      else if (typeof b.state.password !== 'string') problem = 'Berth has no record of its password, so it cannot check a login';
      else {
        signal.throwIfAborted();
        const failed = await this.loginProblem(server, names.database, user, b.state.password);
        if (failed) problem = `logging in with the binding's credentials failed: ${failed}`;
      }
      children.push({ ...node, state: problem ? 'failed' : 'ready', message: problem ? `${problem}.` : `ALL PRIVILEGES on ${names.database}; logged in with the binding's credentials just now.` });
    }
    for (const account of found.granted) {
      if (known.has(account)) continue;
      const [user, host] = account.split('@');
      children.push({ kind: 'User', name: `'${user}'@'${host}'`, state: 'unknown', message: 'A binding user with privileges on this database that no live binding owns (left by a failed bind or a crash); deprovisioning removes it.' });
    }
    if (!found.db) {
      return [{ kind: 'Database', name: names.database, state: 'missing', message: `The database does not exist on server "${server.name}". Update the instance to create it again, or deprovision it.`, children }];
    }
    const message = `on server "${server.name}" (${server.advertisedHost}:${server.advertisedPort}), character set ${found.db.charset}, collation ${found.db.collation}, ${found.db.sessions} session(s)`;
    return [{ kind: 'Database', name: names.database, state: 'ready', message, children }];
  }

  #names(instance: InstanceView, state: JsonObject): { server: string; database: string } {
    return { server: this.serverNameOf(instance, state), database: mysqlNames.database(instance.id) };
  }

  async unbind(op: BindingOperation): Promise<void> {
    // Bind checkpoints the user before creating it: without it nothing was created.
    if (typeof op.state.user !== 'string') return;
    const names = this.#names(op.instance, op.instance.state);
    const user = mysqlNames.bindingUser(op.instance.id, op.binding.id);
    const host = typeof op.state.host === 'string' ? op.state.host : this.configOf(op.instance.plan).user_host;
    const server = this.server(names.server);
    await this.#admin(server, op.signal, (c) => dropUser(c, user, host));
  }

  /**
   * Runs `fn` on a fresh admin connection (operations are rare; no pool to keep alive or to close).
   * When `signal` aborts (lease lost, halt, shutdown), the statement in flight is killed on the
   * server, so no statement of this worker outlives its hold on the operation.
   */
  async #admin<T>(server: DatabaseServer, signal: AbortSignal, fn: (c: Conn) => Promise<T>): Promise<T> {
    signal.throwIfAborted();
    let c: Conn;
    try {
      c = await connect({ ...connectionOptions(server.adminUrl), multipleStatements: false });
    } catch (err) {
      throw classify(err, server);
    }
    // A connection reset mid-statement rejects the statement and is reported here (never unhandled).
    c.on('error', (err: Error) => this.log.debug({ err: err.message, server: server.name }, 'admin connection failed'));
    try {
      const session = async () => {
        await c.query(`SET SESSION lock_wait_timeout = ${ADMIN_LOCK_WAIT_TIMEOUT_S}`);
        try {
          await c.query(`SET SESSION max_statement_time = ${ADMIN_STATEMENT_TIMEOUT_S}`);
        } catch (err) {
          if (errnoOf(err) !== UNKNOWN_SYSTEM_VARIABLE) throw err; // MySQL has no such limit for DDL: abort (KILL QUERY) is the bound there
        }
        return fn(c);
      };
      return await adminStep({ work: session, cancel: () => this.#cancel(server, c.threadId) }, signal, (err) => classify(err, server));
    } finally {
      // After an abort the connection may be mid-statement: close it without waiting for an answer.
      if (signal.aborted) c.destroy();
      else await c.end().catch(() => c.destroy());
    }
  }

  /** Kills the statement an admin connection is running (from a separate connection). Best effort. */
  async #cancel(server: DatabaseServer, threadId: number): Promise<void> {
    if (!Number.isSafeInteger(threadId) || threadId <= 0) return;
    let c: Conn | undefined;
    try {
      c = await connect(connectionOptions(server.adminUrl));
      c.on('error', () => {});
      await c.query(`KILL QUERY ${threadId}`);
      this.log.debug({ server: server.name, threadId }, 'cancelled an admin statement');
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'cancelling an admin statement failed');
    } finally {
      await c?.end().catch(() => c?.destroy());
    }
  }
}

/** The mysql_native_password hash: "*" and the upper-case hex of SHA1(SHA1(password)). */
export function nativePasswordHash(password: string): string {
  const inner = createHash('sha1').update(password, 'utf8').digest();
  return `*${createHash('sha1').update(inner).digest('hex').toUpperCase()}`;
}

/** mysql2 is imported at the first connection: a broker whose plans never reach a MySQL server skips its load at start. */
async function connect(options: mysql.ConnectionOptions): Promise<mysql.Connection> {
  const { default: mysql2 } = await import('mysql2/promise');
  return mysql2.createConnection(options);
}

function connectionOptions(url: string): mysql.ConnectionOptions {
  // mysql2 reads mysql:// URLs; a mariadb:// one is the same thing.
  return { uri: url.replace(/^mariadb:/, 'mysql:'), connectTimeout: 10_000 };
}

function errnoOf(err: unknown): number | undefined {
  const n = (err as { errno?: unknown } | undefined)?.errno;
  return typeof n === 'number' ? n : undefined;
}

function classify(err: unknown, server: DatabaseServer): unknown {
  if (err instanceof PermanentError) return err;
  const errno = errnoOf(err);
  const sqlState = (err as { sqlState?: unknown } | undefined)?.sqlState;
  if ((errno !== undefined && PERMANENT_ERRNOS.has(errno)) || sqlState === '28000') {
    return new PermanentError(`mysql server "${server.name}": ${(err as Error).message} (error ${errno})`, { cause: err });
  }
  return err;
}

/** Berth's binding users that hold privileges on the database (including ones the broker lost track of). */
async function berthUsersOf(c: Conn, database: string): Promise<Array<{ user: string; host: string }>> {
  const [rows] = await c.execute<mysql.RowDataPacket[]>('SELECT DISTINCT User AS user, Host AS host FROM mysql.db WHERE Db = ?', [database]);
  return rows
    .map((r) => ({ user: String(r.user), host: String(r.host) }))
    .filter((u) => u.user.startsWith(mysqlNames.bindingUserPrefix) && /^[a-z2-7]+$/.test(u.user.slice(mysqlNames.bindingUserPrefix.length)));
}

/** DROP USER (no new logins, no privileges), then ends the sessions it still has (DROP USER does not). */
async function dropUser(c: Conn, user: string, host: string): Promise<void> {
  await c.query(`DROP USER IF EXISTS ${str(user)}@${str(host)}`);
  const [sessions] = await c.execute<mysql.RowDataPacket[]>('SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> CONNECTION_ID()', [user]);
  await kill(c, sessions.map((r) => r.ID));
}

async function kill(c: Conn, ids: unknown[]): Promise<void> {
  for (const raw of ids) {
    const id = Number(raw);
    if (!Number.isSafeInteger(id) || id <= 0) continue;
    try {
      await c.query(`KILL CONNECTION ${id}`);
    } catch (err) {
      if (errnoOf(err) !== UNKNOWN_THREAD) throw err; // it ended meanwhile
    }
  }
}
