// Issue 16 point 12: slow clients. With the audit's file descriptor limit
// (1,024), 1,100 connections that send nothing or trickle their headers must
// neither take Berth down nor keep a normal client out, and each of them is
// closed by the server (connection cap, headers timeout).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnBerth, type BerthProcess } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

const SLOW = 1100;

/** One request on a connection of its own. */
function get(url: string, path: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { agent: false, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer to ${path} within 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

describe('slow clients', () => {
  let db: TestDatabase;
  let berth: BerthProcess | undefined;
  const sockets: Socket[] = [];
  const timers: NodeJS.Timeout[] = [];

  before(async () => {
    db = await createTestDatabase('berth_slow');
  });
  after(async () => {
    for (const t of timers) clearInterval(t);
    for (const s of sockets) s.destroy();
    if (berth && berth.child.exitCode === null && berth.child.signalCode === null) {
      process.kill(berth.pid, 'SIGKILL');
      await berth.exited;
    }
    await db?.drop();
  });

  it('1,100 slow connections at a 1,024 descriptor limit: a normal client is served and every slow one is closed', async () => {
    berth = await spawnBerth({ DATABASE_URL: db.url, BERTH_HEADERS_TIMEOUT_SECONDS: '2', LOG_LEVEL: 'info' });
    const b = berth;
    execFileSync('prlimit', ['--pid', String(b.pid), '--nofile=1024:1024']);

    let closed = 0;
    const connected: Array<Promise<void>> = [];
    for (let i = 0; i < SLOW; i++) {
      const s = connect(Number(new URL(b.url).port), '127.0.0.1');
      sockets.push(s);
      s.on('error', () => {});
      s.on('close', () => closed++);
      connected.push(
        new Promise<void>((resolve) => {
          s.once('connect', () => {
            // Half send nothing; half trickle headers that never end (slowloris).
            if (i % 2 === 1) {
              s.write('GET /healthz HTTP/1.1\r\nHost: berth\r\n');
              timers.push(setInterval(() => s.writable && s.write(`X-Slow-${i}: a\r\n`), 500));
            }
            resolve();
          });
          s.once('close', () => resolve());
          setTimeout(resolve, 5000);
        }),
      );
    }
    await Promise.all(connected);

    // A normal client, on new connections, while the slow ones are open.
    assert.equal(await get(b.url, '/healthz'), 200);
    const auth = { 'X-Broker-API-Version': '2.17', Authorization: b.client.auth };
    for (let i = 0; i < 5; i++) assert.equal(await get(b.url, '/v2/catalog', auth), 200);
    assert.equal(b.child.exitCode, null, b.output().slice(-2000));

    // The server closes every slow connection: evicted at the cap, or past the headers timeout.
    for (let i = 0; closed < SLOW; i++) {
      assert.ok(i < 300, `${SLOW - closed} slow connections still open after 30 s`);
      await sleep(100);
    }
    assert.equal(await get(b.url, '/v2/catalog', auth), 200);
    process.kill(b.pid, 'SIGTERM');
    assert.equal(await b.exited, 0, b.output().slice(-3000));
  });
});
