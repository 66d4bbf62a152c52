// `postgres`: a database per instance and a login role per binding, on an
// existing PostgreSQL (13 or later) server that the plan names.
//
//   provision    database berth_i_<h> (owned by the admin user, CONNECT revoked
//                from PUBLIC), owner role berth_o_<h> (NOLOGIN) holding
//                CONNECT, TEMPORARY and CREATE on it and owning its public
//                schema; connection limit and extensions from the plan (`extensions`)
//                and the parameters (within `allowed_extensions`)
//   bind         role berth_b_<h'> LOGIN INHERIT IN ROLE owner with the plan's
//                connection limit (on the role too: it caps the role's sessions
//                in every database, not only the instance's), whose sessions
//                start as the owner role (ALTER ROLE ... SET role), so what an
//                app creates belongs to the instance and every sibling binding
//                can use it; then Berth logs in with it before answering
//   unbind       NOLOGIN, end its sessions, REASSIGN OWNED to the owner role and
//                DROP OWNED (in the instance database), DROP ROLE
//   deprovision  DROP DATABASE ... WITH (FORCE), then every binding role still
//                in the owner role, then the owner role
//   update       converges the same settings (connection limits, extensions): a
//                maintenance upgrade is an update to the plan's new settings
//
// Admin sessions carry statement_timeout and lock_timeout; when an operation
// is aborted (deadline, halt, lost lease, shutdown) the statement in flight is
// cancelled with pg_cancel_backend, and a connection that fails (reset,
// server restart) is discarded and the step retried, never left to emit an
// unhandled 'error'.
//
// Provision, update and deprovision are asynchronous (CREATE/DROP DATABASE
// copy or remove files and may take seconds on a busy server); bind and unbind
// are a few statements and a login, answered synchronously.
//
// Every step looks before it creates and tolerates "already gone" on delete;
// names come from the ids (sql/names.ts), the password is checkpointed before
// use. Only SCRAM verifiers, never passwords, are sent in SQL.
import pg from 'pg';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { CatalogPlan } from '../../catalog/catalog.ts';
import type { Config } from '../../config.ts';
import { failpoint } from '../../failpoints.ts';
import { PermanentError } from '../../osb/errors.ts';
import type { JsonObject } from '../../osb/model.ts';
import type { BindingOperation, BindResult, DescribedBinding, ExpiringBinding, InstanceOperation, InstanceView, ProvisionedResource, Provisioner, UpdateOperation } from '../provisioner.ts';
import { describePostgres } from './describe.ts';
import { credentialLifetimeSetting, SqlProvisioner } from '../sql/frame.ts';
import { pgNames, quotePgIdent as ident, quotePgLiteral as literal } from '../sql/names.ts';
import { SERVER_NAME, urlWith, type DatabaseServer } from '../sql/server.ts';
import { codeOf, PostgresAdmin } from './admin.ts';
import { scramSha256Verifier } from './scram.ts';

const EXTENSION_NAME = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$/;

const planConfigSchema = z.strictObject({
  /** Server name: its admin URL is BERTH_POSTGRES_<NAME>_URL (or _URL_FILE). */
  server: z.string().regex(SERVER_NAME, 'must be a server name: letters, digits, "-" and "_", starting with a letter or digit, at most 63 characters'),
  /** ALTER DATABASE ... CONNECTION LIMIT; -1 = no limit. */
  connection_limit: z.number().int().min(-1).max(1_000_000).default(-1),
  /** Extensions a user may ask for with the `extensions` parameter (Berth's admin creates them). */
  allowed_extensions: z.array(z.string().regex(EXTENSION_NAME, 'must be an extension name')).default([]),
  /**
   * Extensions every database of the plan has, whatever the user asks for: installed at provision, and on an
   * update or upgrade to a plan that lists them; one the new plan no longer lists (and the user did not ask
   * for) is dropped, as a user's removed one is.
   */
  extensions: z.array(z.string().regex(EXTENSION_NAME, 'must be an extension name')).default([]),
  /** Seconds a binding's login works (VALID UNTIL, and Berth's expiry sweep); omitted: until unbind. */
  credential_lifetime: credentialLifetimeSetting,
});

export type PostgresPlanConfig = z.infer<typeof planConfigSchema>;

interface InstanceNames {
  server: string;
  database: string;
  ownerRole: string;
}

export class PostgresProvisioner extends SqlProvisioner<PostgresPlanConfig> implements Provisioner {
  readonly #admin: PostgresAdmin;

  constructor(config: Pick<Config, 'env'>, log: Logger) {
    super('postgres', config, log, { schema: planConfigSchema, protocols: ['postgres:', 'postgresql:'], defaultPort: 5432 });
    this.#admin = new PostgresAdmin(this.log);
  }

  /** Ends the admin connection pools (for embedders and benchmarks; idle pools never keep the process alive). */
  async close(): Promise<void> {
    await this.#admin.close();
  }

  /**
   * Logs, for each server the plans use, the databases every role may connect to (PUBLIC holds
   * CONNECT, the default for a new database): binding roles can reach them too. Berth closes the
   * databases it creates (and its own state database where it may); only the server's operator
   * can close the others, so the warning says what to run.
   */
  async inspectServers(plans: CatalogPlan[], signal: AbortSignal): Promise<void> {
    const servers = new Set(plans.map((p) => this.configOf(p).server));
    for (const name of servers) {
      if (signal.aborted) return; // shutting down: no new pool that nothing would close
      let server: DatabaseServer;
      try {
        server = this.server(name);
      } catch {
        continue; // not configured: a provision on it fails, naming the variable
      }
      try {
        const { rows } = await this.#admin.run(server, AbortSignal.any([signal, AbortSignal.timeout(30_000)]), (c) =>
          c.query<{ datname: string }>(
            `SELECT datname FROM pg_database
              WHERE datallowconn
                AND (datacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(datacl) a WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT'))
              ORDER BY datname`,
          ),
        );
        if (rows.length === 0) {
          this.log.info({ server: name }, 'binding roles can connect to no database but their own');
          continue;
        }
        const databases = rows.map((r) => r.datname);
        const shown = databases.slice(0, 20);
        this.log.warn(
          { server: name, databases: shown, count: databases.length },
          `binding roles can connect to ${databases.length} database(s) on postgres server "${name}" that every role may connect to ` +
            `(${shown.join(', ')}${databases.length > shown.length ? ', …' : ''}); the server's operator should run, for each, ` +
            `REVOKE CONNECT ON DATABASE <name> FROM PUBLIC and GRANT CONNECT to the roles that need it (see README, "postgres")`,
        );
      } catch (err) {
        this.log.warn({ server: name, err: (err as Error).message }, 'could not check which databases binding roles can reach');
      }
    }
  }

  protected async converge(op: InstanceOperation, previous: UpdateOperation['previous'] | undefined): Promise<void> {
    const plan = op.instance.plan;
    const config = this.configOf(plan);
    const extensions = requestedExtensions(op.instance.parameters, plan);
    let removed: string[] = [];
    if (previous) {
      const before = previousExtensions(previous.parameters, previous.plan);
      removed = before.filter((e) => !extensions.includes(e));
    }
    const names = this.#names(op.instance, op.state);
    // Resolved before the checkpoint: an instance whose state names no server never touched one.
    const server = this.server(names.server);
    if (op.state.server !== names.server || op.state.database !== names.database || op.state.ownerRole !== names.ownerRole) {
      await op.checkpoint({ ...names });
    }
    const db = ident(names.database);
    const owner = ident(names.ownerRole);

    op.signal.throwIfAborted();
    await op.progress('Creating the database');
    await this.#admin.run(server, op.signal, async (c) => {
      const found = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [names.database]);
      if (found.rowCount === 0) {
        try {
          // Closed to connections until its privileges are in place (opened below).
          await c.query(`CREATE DATABASE ${db} WITH ALLOW_CONNECTIONS = false`);
        } catch (err) {
          if (codeOf(err) !== '42P04') throw err; // duplicate_database: created meanwhile
        }
        failpoint('postgres:after-create-database');
      }
      await c.query(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`);
    });

    op.signal.throwIfAborted();
    await op.progress('Creating the owner role');
    await this.#admin.run(server, op.signal, async (c) => {
      await ensureRole(c, names.ownerRole, 'NOLOGIN');
      await c.query(
        [
          `GRANT CONNECT, TEMPORARY, CREATE ON DATABASE ${db} TO ${owner}`,
          `ALTER DATABASE ${db} WITH CONNECTION LIMIT ${config.connection_limit}`,
          `ALTER DATABASE ${db} WITH ALLOW_CONNECTIONS = true`,
        ].join(';\n'),
      );
      // After a plan change, existing binding roles get the new plan's limit.
      for (const role of await bindingRolesOf(c, names.ownerRole)) {
        await c.query(`ALTER ROLE ${ident(role)} WITH CONNECTION LIMIT ${config.connection_limit}`);
      }
    });

    op.signal.throwIfAborted();
    await op.progress('Configuring the database');
    await this.#admin.inDatabase(server, names.database, op.signal, async (c) => {
      const pub = await c.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'public'`);
      if (pub.rowCount) await c.query(`ALTER SCHEMA public OWNER TO ${owner}`);
      for (const ext of removed) {
        try {
          await c.query(`DROP EXTENSION IF EXISTS ${ident(ext)} RESTRICT`);
        } catch (err) {
          if (codeOf(err) === '2BP01') {
            throw new PermanentError(`Extension "${ext}" cannot be removed: objects in the database depend on it. Drop them first, then update again.`, {
              instanceUsable: true,
              updateRepeatable: true,
              cause: err,
            });
          }
          throw err;
        }
      }
      for (const ext of extensions) {
        try {
          await c.query(`CREATE EXTENSION IF NOT EXISTS ${ident(ext)}`);
        } catch (err) {
          const code = codeOf(err);
          if (code === '58P01' || code === '0A000' || code === '42501') {
            throw new PermanentError(`Extension "${ext}" cannot be installed on this server: ${(err as Error).message}`, { instanceUsable: true, cause: err });
          }
          throw err;
        }
      }
    });
  }

  async deprovision(op: InstanceOperation): Promise<void> {
    // Provision checkpoints the names before it touches the server: without them nothing was created
    // (e.g. the server was never configured), and there is nothing to remove.
    if (typeof op.state.server !== 'string') return;
    const names = this.#names(op.instance, op.state);
    const server = this.server(names.server);
    await op.progress('Dropping the database');
    await this.#admin.run(server, op.signal, async (c) => {
      // FORCE ends the sessions still connected to it (PostgreSQL 13+).
      await c.query(`DROP DATABASE IF EXISTS ${ident(names.database)} WITH (FORCE)`);
    });
    op.signal.throwIfAborted();
    await op.progress('Dropping the roles');
    await this.#admin.run(server, op.signal, async (c) => {
      // Binding roles the engine did not unbind (a failed bind, a crash): every member of the owner role with Berth's prefix.
      for (const rolname of await bindingRolesOf(c, names.ownerRole)) {
        await disableAndDisconnect(c, rolname);
        await c.query(`DROP ROLE IF EXISTS ${ident(rolname)}`);
      }
      await c.query(`DROP ROLE IF EXISTS ${ident(names.ownerRole)}`);
    });
  }

  async bind(op: BindingOperation): Promise<BindResult> {
    const names = this.#names(op.instance, op.instance.state);
    const role = pgNames.bindingRole(op.instance.id, op.binding.id);
    const server = this.server(names.server);
    const expiresAt = this.expiresAtFor(op, op.instance.plan);
    const password = await this.bindingPassword(op, 'role', role, expiresAt ? { expiresAt } : {});
    const verifier = literal(await scramSha256Verifier(password));
    // VALID UNTIL: the server itself refuses password logins after expires_at, even while Berth is down.
    // It is not checked for logins the server lets in without a password (trust, peer, cert in
    // pg_hba.conf): for those, Berth's expiry sweep (expireBinding) sets NOLOGIN at expires_at.
    const attributes = `CONNECTION LIMIT ${this.configOf(op.instance.plan).connection_limit} VALID UNTIL ${literal(expiresAt ?? 'infinity')}`;
    const loginAsOwner = `ALTER ROLE ${ident(role)} SET role = ${literal(names.ownerRole)}`;
    await this.#admin.run(server, op.signal, async (c) => {
      const { rows } = await c.query<{ owner: boolean; binding: boolean }>(
        'SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS owner, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2) AS binding',
        [names.ownerRole, role],
      );
      if (!rows[0]!.owner) {
        throw new PermanentError('The service instance is incomplete (its owner role is missing); update or re-create the instance.');
      }
      if (!rows[0]!.binding) {
        try {
          // One implicit transaction: the role exists fully configured or not at all.
          await c.query(`CREATE ROLE ${ident(role)} WITH LOGIN INHERIT ${attributes} PASSWORD ${verifier} IN ROLE ${ident(names.ownerRole)};\n${loginAsOwner}`);
          failpoint('postgres:after-create-role');
          return;
        } catch (err) {
          const code = codeOf(err);
          if (code !== '42710' && code !== '23505') throw err; // created meanwhile: converge it below
        }
      }
      // A re-run: make sure the role has this password, its limit, its membership and its session role.
      await c.query(
        [
          `ALTER ROLE ${ident(role)} WITH LOGIN INHERIT ${attributes} PASSWORD ${verifier}`,
          `GRANT ${ident(names.ownerRole)} TO ${ident(role)}`,
          loginAsOwner,
        ].join(';\n'),
      );
    });

    await this.verifyLogin(server, names.database, role, password, op.signal);
    return { credentials: this.credentials('postgresql', server, names.database, role, password), ...this.expiryOf(op.instance.plan, expiresAt) };
  }

  /** At expires_at: NOLOGIN (also for logins pg_hba.conf lets in without a password) and the role's sessions ended. */
  async expireBinding(binding: ExpiringBinding): Promise<void> {
    const { instanceState, bindingState } = binding;
    if (typeof instanceState.server !== 'string' || typeof bindingState.role !== 'string') return; // nothing was created
    const server = this.server(instanceState.server);
    await this.#admin.run(server, binding.signal, (c) => disableAndDisconnect(c, pgNames.bindingRole(binding.instanceId, binding.bindingId)));
  }

  protected async tryLogin(server: DatabaseServer, database: string, user: string, password: string): Promise<void> {
    const client = new pg.Client({ connectionString: urlWith(server.adminUrl, { user, password, database }), connectionTimeoutMillis: 10_000, query_timeout: 10_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
    } finally {
      await client.end().catch(() => {});
    }
  }

  async describe(instance: InstanceView & { state: JsonObject }, bindings: DescribedBinding[], signal: AbortSignal): Promise<ProvisionedResource[]> {
    if (typeof instance.state.server !== 'string') return this.notCreated('Database', pgNames.database(instance.id));
    const names = this.#names(instance, instance.state);
    const server = this.server(names.server);
    return describePostgres({
      ...names,
      server,
      instanceId: instance.id,
      bindings,
      signal,
      run: (fn) => this.#admin.run(server, signal, fn),
      login: (user, password) => this.loginProblem(server, names.database, user, password),
    });
  }

  #names(instance: InstanceView, state: JsonObject): InstanceNames {
    return { server: this.serverNameOf(instance, state), database: pgNames.database(instance.id), ownerRole: pgNames.ownerRole(instance.id) };
  }

  async unbind(op: BindingOperation): Promise<void> {
    // Bind checkpoints the role before creating it: without it nothing was created.
    if (typeof op.state.role !== 'string') return;
    const names = this.#names(op.instance, op.instance.state);
    const role = pgNames.bindingRole(op.instance.id, op.binding.id);
    const server = this.server(names.server);
    const owned = await this.#admin.run(server, op.signal, async (c) => {
      const { rows } = await c.query<{ role: boolean; owner: boolean; owns: boolean }>(
        `SELECT r.oid IS NOT NULL AS role,
                EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2) AS owner,
                EXISTS (SELECT 1 FROM pg_shdepend s
                         WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = r.oid AND s.dbid = d.oid) AS owns
           FROM (SELECT 1) AS one
           LEFT JOIN pg_roles r ON r.rolname = $1
           LEFT JOIN pg_database d ON d.datname = $3`,
        [role, names.ownerRole, names.database],
      );
      const found = rows[0]!;
      if (!found.role) return undefined;
      // No new sessions (committed first, so no login slips in), end the current ones, and, when the role
      // owns nothing and holds no privilege of its own in the instance database (the usual case: apps work
      // as the owner role), drop it right away.
      await c.query(`ALTER ROLE ${ident(role)} NOLOGIN`);
      const statements = [`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ${literal(role)} AND pid <> pg_backend_pid()`];
      if (!found.owns) statements.push(`DROP ROLE ${ident(role)}`);
      await c.query(statements.join(';\n'));
      return found.owns ? found : undefined;
    });
    if (!owned) return;
    // What the app created outside the owner role (after RESET ROLE) stays with the instance.
    await this.#admin.inDatabase(server, names.database, op.signal, async (c) => {
      if (owned.owner) await c.query(`REASSIGN OWNED BY ${ident(role)} TO ${ident(names.ownerRole)}`);
      await c.query(`DROP OWNED BY ${ident(role)}`);
    });
    await this.#admin.run(server, op.signal, (c) => c.query(`DROP ROLE IF EXISTS ${ident(role)}`));
  }

}

async function ensureRole(c: pg.ClientBase, role: string, attributes: string): Promise<void> {
  const found = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
  if (found.rowCount) return;
  try {
    await c.query(`CREATE ROLE ${ident(role)} WITH ${attributes}`);
  } catch (err) {
    const code = codeOf(err);
    if (code !== '42710' && code !== '23505') throw err; // created meanwhile
  }
}

/** Berth's binding roles in an owner role (including ones the engine lost track of: a failed bind, a crash). */
async function bindingRolesOf(c: pg.ClientBase, ownerRole: string): Promise<string[]> {
  const { rows } = await c.query<{ rolname: string }>(
    `SELECT m.rolname FROM pg_auth_members am
       JOIN pg_roles o ON o.oid = am.roleid
       JOIN pg_roles m ON m.oid = am.member
      WHERE o.rolname = $1 AND left(m.rolname, length($2)) = $2`,
    [ownerRole, pgNames.bindingRolePrefix],
  );
  return rows.map((r) => r.rolname);
}

/** NOLOGIN first (no new sessions), then ends the role's sessions. No-op for a missing role. */
async function disableAndDisconnect(c: pg.ClientBase, role: string): Promise<void> {
  try {
    await c.query(`ALTER ROLE ${ident(role)} NOLOGIN`);
  } catch (err) {
    if (codeOf(err) === '42704') return; // undefined_object: already gone
    throw err;
  }
  await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()', [role]);
}


function describe(value: unknown): string {
  const s = JSON.stringify(value) ?? String(value);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** The plan's own extensions, then the `extensions` parameter checked against the plan's allow-list (also when the plan's schema does not check it). */
export function requestedExtensions(parameters: JsonObject, plan: CatalogPlan): string[] {
  const own = (plan.provisioner.config as PostgresPlanConfig).extensions ?? [];
  return [...new Set([...own, ...userExtensions(parameters, plan)])];
}

function userExtensions(parameters: JsonObject, plan: CatalogPlan): string[] {
  const value = parameters.extensions;
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw new PermanentError('Parameter "extensions" must be an array of extension names.');
  }
  const allowed = (plan.provisioner.config as PostgresPlanConfig).allowed_extensions;
  const refused = (value as string[]).filter((v) => !allowed.includes(v));
  if (refused.length > 0) {
    throw new PermanentError(
      `Plan "${plan.name}" does not offer extension${refused.length > 1 ? 's' : ''} ${refused.map(describe).join(', ')}; it offers: ${allowed.join(', ') || 'none'}.`,
    );
  }
  return [...new Set(value as string[])];
}

/** The extensions Berth installed before an update (ignores anything that was not allowed then). */
function previousExtensions(parameters: JsonObject, plan: CatalogPlan): string[] {
  if (plan.provisioner.kind !== 'postgres') return [];
  const config = plan.provisioner.config as PostgresPlanConfig;
  const value = parameters.extensions;
  const asked = Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string' && config.allowed_extensions.includes(v)) : [];
  return [...new Set([...(config.extensions ?? []), ...asked])];
}
