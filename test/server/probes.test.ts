// Issue 16 point 8: /metrics and /readyz need no credentials, so their cost to
// the database must not grow with their request rate: the database-derived
// gauges and readiness are computed at most once per interval. /readyz never
// shows the database driver's text (it goes to the log).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Knex } from 'knex';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { startLoggedBerth, tcpProxy } from './support.ts';

/** Counts the queries Berth sends whose SQL matches. */
function countQueries(knex: Knex, pattern: RegExp): { readonly n: number } {
  const counter = { n: 0 };
  knex.on('query', (q: { sql: string }) => {
    if (pattern.test(q.sql)) counter.n++;
  });
  return counter;
}

describe('operator endpoints cost the database at most one computation per interval', () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const start = async (env: Record<string, string>, databaseUrl?: string) => {
    const t = await startLoggedBerth(env, { databaseUrl });
    cleanups.push(() => t.stop());
    return t;
  };

  it('/metrics: many rapid scrapes, one gauge query', async () => {
    const t = await start({ BERTH_PROBE_INTERVAL_SECONDS: '3600' });
    const gaugeQueries = countQueries(t.berth.database.knex, /group by "kind", "state"/i);
    const scrape = async () => {
      const r = await fetch(`${t.berth.url}/metrics`);
      assert.equal(r.status, 200);
      return r.text();
    };
    await Promise.all(Array.from({ length: 25 }, scrape));
    for (let i = 0; i < 25; i++) await scrape();
    assert.match(await scrape(), /berth_http_requests_total/);
    assert.equal(gaugeQueries.n, 1);
  });

  it('/readyz: many rapid probes, one readiness check', async () => {
    const t = await start({ BERTH_PROBE_INTERVAL_SECONDS: '3600' });
    const readinessQueries = countQueries(t.berth.database.knex, /knex_migrations/);
    const probe = async () => {
      const r = await fetch(`${t.berth.url}/readyz`);
      assert.equal(r.status, 200);
      assert.deepEqual(await r.json(), { status: 'ready' });
    };
    await probe();
    const oneCheck = readinessQueries.n;
    assert.ok(oneCheck > 0);
    await Promise.all(Array.from({ length: 25 }, probe));
    for (let i = 0; i < 25; i++) await probe();
    assert.equal(readinessQueries.n, oneCheck);
  });

  it('/readyz during a database outage gives a generic reason; the detail goes to the log', async () => {
    const db: TestDatabase = await createTestDatabase('berth_srv');
    cleanups.push(() => db.drop());
    const proxy = await tcpProxy(Number(new URL(db.url).port || 5432));
    cleanups.push(() => proxy.close());
    const viaProxy = new URL(db.url);
    viaProxy.port = String(proxy.port);
    const t = await start({ BERTH_PROBE_INTERVAL_SECONDS: '0.1' }, viaProxy.toString());
    assert.equal((await fetch(`${t.berth.url}/readyz`)).status, 200);

    await proxy.cut();
    await sleep(200);
    let r: Response | undefined;
    let text = '';
    for (let i = 0; i < 50; i++) {
      r = await fetch(`${t.berth.url}/readyz`);
      text = await r.text();
      if (r.status === 503) break;
      await sleep(200);
    }
    assert.equal(r!.status, 503, text);
    assert.deepEqual(JSON.parse(text), { status: 'unavailable', description: 'database unreachable' });
    const detail = t.lines.filter((l) => l.level === 40 && /readiness/.test(l.msg) && l.err);
    assert.ok(detail.length > 0, 'the driver error is logged');
  });
});
