// `berth trace` for a postgres instance: the database and the roles on the
// server as the catalog shows them now (pg_database, pg_roles, pg_auth_members,
// pg_stat_activity), and for each binding whether its role exists, may log in,
// is in the owner role, and really logs in with the password Berth gave out.
// Read-only: SELECTs and one login per binding.
import type pg from 'pg';
import type { DescribedBinding, ProvisionedResource } from '../provisioner.ts';
import { pgNames } from '../sql/names.ts';
import type { DatabaseServer } from '../sql/server.ts';

export interface PostgresDescribeDeps {
  server: DatabaseServer;
  database: string;
  ownerRole: string;
  instanceId: string;
  bindings: DescribedBinding[];
  signal: AbortSignal;
  run<T>(fn: (c: pg.ClientBase) => Promise<T>): Promise<T>;
  /** Logs in once as `user`; resolves with undefined when that worked, else with why not. */
  login(user: string, password: string): Promise<string | undefined>;
}

interface RoleRow {
  rolname: string;
  rolcanlogin: boolean;
  rolconnlimit: number;
  member: boolean;
  sessions: string;
}

export async function describePostgres(d: PostgresDescribeDeps): Promise<ProvisionedResource[]> {
  const expected = d.bindings.map((b) => ({ binding: b, role: pgNames.bindingRole(d.instanceId, b.id) }));
  const found = await d.run(async (c) => {
    const db = await c.query<{ datallowconn: boolean; datconnlimit: number; owner: string; sessions: string; size: string | null }>(
      `SELECT d.datallowconn, d.datconnlimit, pg_get_userbyid(d.datdba) AS owner,
              (SELECT count(*) FROM pg_stat_activity a WHERE a.datid = d.oid) AS sessions,
              CASE WHEN has_database_privilege(d.oid, 'CONNECT') THEN pg_size_pretty(pg_database_size(d.oid)) END AS size
         FROM pg_database d WHERE d.datname = $1`,
      [d.database],
    );
    const roles = await c.query<RoleRow>(
      `SELECT r.rolname, r.rolcanlogin, r.rolconnlimit,
              EXISTS (SELECT 1 FROM pg_auth_members am JOIN pg_roles o ON o.oid = am.roleid WHERE am.member = r.oid AND o.rolname = $2) AS member,
              (SELECT count(*) FROM pg_stat_activity a WHERE a.usename = r.rolname) AS sessions
         FROM pg_roles r
        WHERE r.rolname = ANY($1::text[])
           OR (left(r.rolname, length($3)) = $3 AND EXISTS (
                 SELECT 1 FROM pg_auth_members am JOIN pg_roles o ON o.oid = am.roleid WHERE am.member = r.oid AND o.rolname = $2))`,
      [[d.ownerRole, ...expected.map((e) => e.role)], d.ownerRole, pgNames.bindingRolePrefix],
    );
    return { database: db.rows[0], roles: new Map(roles.rows.map((r) => [r.rolname, r])) };
  });

  const children: ProvisionedResource[] = [];
  const owner = found.roles.get(d.ownerRole);
  children.push(
    owner
      ? { kind: 'Role', name: d.ownerRole, state: 'ready', message: `owner role (NOLOGIN): owns what the bindings create; ${owner.sessions} session(s) act as it` }
      : { kind: 'Role', name: d.ownerRole, state: 'missing', message: 'The owner role is missing: bindings cannot be created. Update the instance (berth update) to create it again.' },
  );
  for (const { binding, role } of expected) {
    const row = found.roles.get(role);
    if (!row) {
      children.push({
        kind: 'Role',
        name: role,
        bindingId: binding.id,
        state: 'missing',
        message:
          typeof binding.state.role === 'string'
            ? `The binding's login role does not exist on server "${d.server.name}" (dropped outside Berth?): its credentials cannot log in. Unbind and bind again.`
            : 'The bind has not created its login role yet.',
      });
      continue;
    }
    const facts = `LOGIN ${row.rolcanlogin ? 'allowed' : 'not allowed'}, ${row.member ? `member of ${d.ownerRole}` : `NOT a member of ${d.ownerRole}`}, connection limit ${row.rolconnlimit < 0 ? 'none' : row.rolconnlimit}, ${row.sessions} session(s)`;
    let problem: string | undefined;
    if (!row.rolcanlogin) problem = 'it may not log in (NOLOGIN)';
    else if (!row.member) problem = `it is not in the owner role ${d.ownerRole}, so it cannot use the instance's objects`;
    else if (typeof binding.state.password !== 'string') problem = 'Berth has no record of its password, so it cannot check a login';
    else {
      d.signal.throwIfAborted();
      const failed = await d.login(role, binding.state.password);
      if (failed) problem = `logging in with the binding's credentials failed: ${failed}`;
    }
    children.push({
      kind: 'Role',
      name: role,
      bindingId: binding.id,
      state: problem ? 'failed' : 'ready',
      message: problem ? `${facts}; ${problem}.` : `${facts}; logged in with the binding's credentials just now.`,
    });
  }
  const known = new Set([d.ownerRole, ...expected.map((e) => e.role)]);
  for (const row of found.roles.values()) {
    if (known.has(row.rolname)) continue;
    children.push({
      kind: 'Role',
      name: row.rolname,
      state: 'unknown',
      message: `A binding role in ${d.ownerRole} that no live binding owns (left by a failed bind or a crash); deprovisioning the instance removes it. ${row.sessions} session(s).`,
    });
  }

  const db = found.database;
  if (!db) {
    return [{ kind: 'Database', name: d.database, state: 'missing', message: `The database does not exist on server "${d.server.name}". Update the instance to create it again, or deprovision it.`, children }];
  }
  const facts = `on server "${d.server.name}" (${d.server.advertisedHost}:${d.server.advertisedPort}), owned by ${db.owner}, connection limit ${db.datconnlimit < 0 ? 'none' : db.datconnlimit}, ${db.sessions} session(s)${db.size ? `, ${db.size}` : ''}`;
  return [
    {
      kind: 'Database',
      name: d.database,
      state: db.datallowconn ? 'ready' : 'not-ready',
      message: db.datallowconn ? facts : `${facts}; closed to connections (ALLOW_CONNECTIONS false): a provision or update did not finish.`,
      children,
    },
  ];
}
