// A Berth with the admin API on, on its own state database, for the admin tests: the gated test
// provisioner (operations that hold or fail) and plans on the machine's Postgres and MariaDB servers.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO, startTestBerth, type TestBerth } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { MYSQL_ADMIN_URL, PG_ADMIN_URL } from '../database-provisioners/support.ts';

export const CATALOG = join(REPO, 'test/fixtures/catalog-admin.yaml');
export const MODULES = join(REPO, 'test/support/gated-provisioner.ts');
export const ADMIN_TOKEN = 'admin-token-for-alice-0123456789';
export const PLATFORM_TOKEN = 'platform-token-0123456789abcdef';
export const PLANS = {
  gated: { service_id: 'admin-gated', held: 'admin-held', failing: 'admin-failing' },
  pg: { service_id: 'admin-pg', plan_id: 'admin-pg-small' },
  my: { service_id: 'admin-my', plan_id: 'admin-my-small' },
};

export interface AdminReply {
  status: number;
  body: any;
  text: string;
}

export class AdminBerth {
  test!: TestBerth;
  state!: TestDatabase;

  static async start(env: Record<string, string> = {}): Promise<AdminBerth> {
    const h = new AdminBerth();
    h.state = await createTestDatabase('berth_test_admin');
    try {
      h.test = await startTestBerth({
        databaseUrl: h.state.url,
        catalogPath: CATALOG,
        env: {
          BERTH_PROVISIONER_MODULES: MODULES,
          BERTH_ADMIN_TOKENS: `alice:${ADMIN_TOKEN}`,
          BERTH_ADMIN_PORT: '0',
          BERTH_BEARER_TOKENS: PLATFORM_TOKEN,
          BERTH_SWEEP_GRACE_SECONDS: '0',
          BERTH_POSTGRES_LOCAL_URL: PG_ADMIN_URL,
          BERTH_MYSQL_LOCAL_URL: MYSQL_ADMIN_URL,
          ...env,
        },
      });
    } catch (err) {
      await h.state.drop();
      throw err;
    }
    return h;
  }

  get url(): string {
    return this.test.berth.adminUrl!;
  }

  async admin(method: string, path: string, body?: unknown, authorization: string | null = `Bearer ${ADMIN_TOKEN}`): Promise<AdminReply> {
    const res = await fetch(`${this.url}/admin/v1${path}`, {
      method,
      headers: { ...(authorization ? { Authorization: authorization } : {}), ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: any;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed, text };
  }

  /** Waits until the operation has ended (no timing asserted: a bound so a broken test ends). */
  async ended(operationId: string, timeoutMs = 60_000): Promise<{ state: string; description: string }> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const op = await this.test.berth.stores.operations.status({ id: operationId });
      if (op?.finishedAt) return { state: op.state, description: op.description };
      if (Date.now() > until) throw new Error(`operation ${operationId} did not end within ${timeoutMs} ms: ${op?.description}`);
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    try {
      await this.test?.stop().catch(() => {});
    } finally {
      await this.state.drop();
    }
  }
}
