// Shared by the database provisioner tests: an in-process Berth on a throwaway
// state database, the fixture catalog, OSB helpers that wait for operations,
// direct connections with the credentials Berth hands out, and a cleanup that
// removes everything derived from the ids a test used, even when it failed.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { REPO, startTestBerth, type TestBerth } from '../support/berth.ts';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import type { OsbClient, Reply } from '../support/osb-client.ts';
import { mysqlNames, pgNames, quoteMysqlIdent, quoteMysqlString, quotePgIdent } from '../../src/provisioners/sql/names.ts';
import pino from 'pino';
import { loadCatalog, type Catalog, type CatalogPlan } from '../../src/catalog/catalog.ts';
import { loadConfig } from '../../src/config.ts';
import { ProvisionerRegistry, type BindingOperation, type InstanceOperation, type JsonObject, type UpdateOperation } from '../../src/provisioners/provisioner.ts';
import { PostgresProvisioner } from '../../src/provisioners/postgres/postgres.ts';
import { MysqlProvisioner } from '../../src/provisioners/mysql/mysql.ts';

export const CATALOG = join(REPO, 'test/fixtures/database-provisioners/catalog.yaml');
export const PG_ADMIN_URL = ADMIN_URL;
export const MYSQL_ADMIN_URL = process.env.BERTH_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/';

export const PG = {
  service: '0d6bd1a4-3c3e-4d0e-9a37-7f2c4f0b1a01',
  small: '0d6bd1a4-3c3e-4d0e-9a37-7f2c4f0b1a11',
  large: '0d6bd1a4-3c3e-4d0e-9a37-7f2c4f0b1a12',
  unconfigured: '0d6bd1a4-3c3e-4d0e-9a37-7f2c4f0b1a13',
  elsewhere: '0d6bd1a4-3c3e-4d0e-9a37-7f2c4f0b1a14',
  closed: '0d6bd1a4-3c3e-4d0e-9a37-7f2c4f0b1a15',
  expiring: '0d6bd1a4-3c3e-4d0e-9a37-7f2c4f0b1a16',
  expiringPassword: '0d6bd1a4-3c3e-4d0e-9a37-7f2c4f0b1a17',
};
export const MY = {
  service: '0d6bd1a4-3c3e-4d0e-9a37-7f2c4f0b1a02',
  small: '0d6bd1a4-3c3e-4d0e-9a37-7f2c4f0b1a21',
  large: '0d6bd1a4-3c3e-4d0e-9a37-7f2c4f0b1a22',
  unconfigured: '0d6bd1a4-3c3e-4d0e-9a37-7f2c4f0b1a23',
  unreachableUsers: '0d6bd1a4-3c3e-4d0e-9a37-7f2c4f0b1a24',
  rotating: '0d6bd1a4-3c3e-4d0e-9a37-7f2c4f0b1a25',
  expiring: '0d6bd1a4-3c3e-4d0e-9a37-7f2c4f0b1a26',
};

export function serverEnv(): Record<string, string> {
  return {
    BERTH_POSTGRES_LOCAL_URL: PG_ADMIN_URL,
    BERTH_POSTGRES_ELSEWHERE_URL: PG_ADMIN_URL,
    BERTH_MYSQL_LOCAL_URL: MYSQL_ADMIN_URL,
  };
}

export type Credentials = Record<string, string>;

/** Ids used by a test, so that cleanup can remove whatever they led to on the servers. */
export class Tracker {
  readonly instances = new Set<string>();
  readonly bindings: Array<[string, string]> = [];

  instance(id: string = randomUUID()): string {
    this.instances.add(id);
    return id;
  }

  binding(instanceId: string, id: string = randomUUID()): string {
    this.bindings.push([instanceId, id]);
    return id;
  }

  async cleanup(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    };
    await withPg(async (c) => {
      for (const id of this.instances) {
        await attempt(() => c.query(`DROP DATABASE IF EXISTS ${quotePgIdent(pgNames.database(id))} WITH (FORCE)`));
        await attempt(async () => {
          const { rows } = await c.query<{ rolname: string }>(
            `SELECT m.rolname FROM pg_auth_members am JOIN pg_roles o ON o.oid = am.roleid JOIN pg_roles m ON m.oid = am.member WHERE o.rolname = $1`,
            [pgNames.ownerRole(id)],
          );
          for (const r of rows) await c.query(`DROP ROLE IF EXISTS ${quotePgIdent(r.rolname)}`);
        });
      }
      for (const [i, b] of this.bindings) await attempt(() => c.query(`DROP ROLE IF EXISTS ${quotePgIdent(pgNames.bindingRole(i, b))}`));
      for (const id of this.instances) await attempt(() => c.query(`DROP ROLE IF EXISTS ${quotePgIdent(pgNames.ownerRole(id))}`));
    });
    await withMysql(async (c) => {
      for (const [i, b] of this.bindings) {
        await attempt(async () => {
          const [rows] = await c.execute<mysql.RowDataPacket[]>('SELECT Host FROM mysql.user WHERE User = ?', [mysqlNames.bindingUser(i, b)]);
          for (const r of rows) await c.query(`DROP USER IF EXISTS ${quoteMysqlString(mysqlNames.bindingUser(i, b))}@${quoteMysqlString(String(r.Host))}`);
        });
      }
      for (const id of this.instances) await attempt(() => c.query(`DROP DATABASE IF EXISTS ${quoteMysqlIdent(mysqlNames.database(id))}`));
    });
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
  }
}

export async function withPg<T>(fn: (c: pg.Client) => Promise<T>, url = PG_ADMIN_URL): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

export async function withMysql<T>(fn: (c: mysql.Connection) => Promise<T>, url = MYSQL_ADMIN_URL): Promise<T> {
  const c = await mysql.createConnection({ uri: url });
  c.on('error', () => {});
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => c.destroy());
  }
}

/** A Berth with its own state database, on the fixture catalog, knowing the machine's servers. */
export class DbBerth {
  readonly tracker = new Tracker();
  test!: TestBerth;
  state!: TestDatabase;

  get client(): OsbClient {
    return this.test.client;
  }

  static async start(env: Record<string, string> = {}): Promise<DbBerth> {
    const h = new DbBerth();
    h.state = await createTestDatabase('berth_test_dbprov');
    try {
      h.test = await startTestBerth({ databaseUrl: h.state.url, catalogPath: CATALOG, env: { ...serverEnv(), ...env } });
    } catch (err) {
      await h.state.drop();
      throw err;
    }
    return h;
  }

  /** Cleans the servers (always), stops Berth and drops its state database. */
  async stop(): Promise<void> {
    try {
      await this.tracker.cleanup();
    } finally {
      await this.test?.stop().catch(() => {});
      await this.state.drop();
    }
  }

  /** Provisions (async) and waits; returns the final last_operation reply (or the first reply if it was not 202). */
  async provision(serviceId: string, planId: string, parameters?: object, id = this.tracker.instance()): Promise<{ id: string; first: Reply; last: Reply }> {
    this.tracker.instance(id);
    const first = await this.client.provision(id, { service_id: serviceId, plan_id: planId, organization_guid: 'org', space_guid: 'space', ...(parameters ? { parameters } : {}) });
    if (first.status !== 202) return { id, first, last: first };
    const last = await this.client.waitForInstance(id, first.body.operation, 60_000);
    return { id, first, last };
  }

  async provisioned(serviceId: string, planId: string, parameters?: object, id?: string): Promise<string> {
    const r = await this.provision(serviceId, planId, parameters, id);
    assert.equal(r.first.status, 202, r.first.text);
    assert.equal(r.last.body?.state, 'succeeded', r.last.text);
    return r.id;
  }

  async update(id: string, serviceId: string, body: object): Promise<{ first: Reply; last: Reply }> {
    const first = await this.client.update(id, { service_id: serviceId, ...body });
    if (first.status !== 202) return { first, last: first };
    return { first, last: await this.client.waitForInstance(id, first.body.operation, 60_000) };
  }

  async bind(instanceId: string, serviceId: string, planId: string, bindingId = this.tracker.binding(instanceId), extra: object = {}): Promise<{ id: string; reply: Reply }> {
    const reply = await this.client.bind(instanceId, bindingId, { service_id: serviceId, plan_id: planId, ...extra });
    return { id: bindingId, reply };
  }

  async bound(instanceId: string, serviceId: string, planId: string, bindingId?: string): Promise<{ id: string; credentials: Credentials }> {
    const { id, reply } = await this.bind(instanceId, serviceId, planId, bindingId);
    assert.equal(reply.status, 201, reply.text);
    return { id, credentials: reply.body.credentials as Credentials };
  }

  async unbind(instanceId: string, bindingId: string, serviceId: string, planId: string): Promise<Reply> {
    return this.client.unbind(instanceId, bindingId, serviceId, planId);
  }

  async deprovision(id: string, serviceId: string, planId: string): Promise<Reply> {
    const first = await this.client.deprovision(id, serviceId, planId);
    if (first.status !== 202) return first;
    return this.client.waitForInstance(id, first.body.operation, 60_000);
  }
}

/** Connects with a binding's credentials (through its `uri`), optionally to another database. */
export async function pgAs<T>(credentials: Credentials, fn: (c: pg.Client) => Promise<T>, database?: string): Promise<T> {
  const url = new URL(credentials.uri!);
  if (database !== undefined) url.pathname = `/${database}`;
  return withPg(fn, url.toString());
}

export async function mysqlAs<T>(credentials: Credentials, fn: (c: mysql.Connection) => Promise<T>, database?: string): Promise<T> {
  const url = new URL(credentials.uri!);
  if (database !== undefined) url.pathname = `/${database}`;
  return withMysql(fn, url.toString());
}

export async function pgDatabaseExists(name: string): Promise<boolean> {
  return withPg(async (c) => ((await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount ?? 0) > 0);
}

export async function pgRoleExists(name: string): Promise<boolean> {
  return withPg(async (c) => ((await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount ?? 0) > 0);
}

export async function mysqlDatabaseExists(name: string): Promise<boolean> {
  return withMysql(async (c) => {
    const [rows] = await c.execute<mysql.RowDataPacket[]>('SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [name]);
    return rows.length > 0;
  });
}

export async function mysqlUserExists(user: string): Promise<boolean> {
  return withMysql(async (c) => {
    const [rows] = await c.execute<mysql.RowDataPacket[]>('SELECT 1 FROM mysql.user WHERE User = ?', [user]);
    return rows.length > 0;
  });
}

/** The SQLSTATE / errno a failed attempt ends with, or 'ok'. */
export async function outcome(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
    return 'ok';
  } catch (err) {
    const e = err as { code?: unknown; errno?: unknown; message?: string };
    return String(e.code ?? e.errno ?? e.message);
  }
}

// ---- calling the provisioners directly (re-runs, crash windows) ---------------------------


export interface Direct {
  catalog: Catalog;
  postgres: PostgresProvisioner;
  mysql: MysqlProvisioner;
  plan(id: string): CatalogPlan;
}

export function direct(env: Record<string, string> = serverEnv()): Direct {
  const config = loadConfig({ ...env });
  const log = pino({ level: 'silent' });
  const postgres = new PostgresProvisioner(config, log);
  const mysqlP = new MysqlProvisioner(config, log);
  const catalog = loadCatalog(CATALOG, new ProvisionerRegistry([postgres, mysqlP]).parseConfig);
  return { catalog, postgres, mysql: mysqlP, plan: (id) => catalog.plan(id)! };
}

const silent = pino({ level: 'silent' });

export function instanceOp(plan: CatalogPlan, id: string, state: JsonObject, parameters: JsonObject = {}): InstanceOperation {
  return {
    operationId: randomUUID(),
    attempt: 1,
    signal: new AbortController().signal,
    log: silent,
    state,
    checkpoint: async (patch) => void Object.assign(state, patch),
    progress: async () => {},
    instance: { id, serviceId: plan.service.id, plan, parameters, context: undefined, organizationGuid: undefined, spaceGuid: undefined },
  };
}

export function updateOp(plan: CatalogPlan, id: string, state: JsonObject, parameters: JsonObject, previous: UpdateOperation['previous']): UpdateOperation {
  return { ...instanceOp(plan, id, state, parameters), previous };
}

export function bindingOp(plan: CatalogPlan, instanceId: string, instanceState: JsonObject, bindingId: string, state: JsonObject): BindingOperation {
  const base = instanceOp(plan, instanceId, state);
  return {
    ...base,
    instance: { ...base.instance, state: instanceState },
    binding: { id: bindingId, parameters: {}, context: undefined, bindResource: undefined, appGuid: undefined, predecessorBindingId: undefined },
  };
}
