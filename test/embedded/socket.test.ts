// Embedded mode serves PGlite, which has no authentication, only on a Unix
// socket in a mode-0700 directory: no TCP port another local process (or user)
// could connect to and, say, make the database read-only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnBerth, startTestBerth } from '../support/berth.ts';

/** TCP ports this process listens on, from /proc/net/tcp{,6} and the socket inodes among its fds. */
function listeningTcpPorts(): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // the fd was closed while we looked
    }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').trim().split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is hex "addr:port"; st 0A is LISTEN; the inode is the 10th field.
      if (f[3] === '0A' && inodes.has(f[9]!)) ports.push(Number.parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports.sort((a, b) => a - b);
}

test('embedded mode opens no TCP port but the broker\'s, and its database socket is private to its user', async () => {
  const before = listeningTcpPorts();
  const t = await startTestBerth();
  try {
    const brokerPort = Number(new URL(t.berth.url).port);
    assert.deepEqual(
      listeningTcpPorts().filter((p) => !before.includes(p)),
      [brokerPort],
      'the only new listening TCP port is the broker\'s HTTP port',
    );
    // The database works through the socket.
    assert.equal((await t.client.request('GET', '/v2/catalog')).status, 200);
    const provision = await t.client.provision('socket-1', {
      service_id: '4f6e6cf6-ffdd-425f-a2c7-3c9258ad2468',
      plan_id: '86064792-7ea2-467b-af93-ac9694d96d52',
      organization_guid: 'org',
      space_guid: 'space',
      parameters: { credentials: { uri: 'smtp://mail.example.com' } },
    });
    assert.ok([201, 202].includes(provision.status), provision.text);

    const dataDir = t.berth.database.url && new URL(t.berth.database.url).searchParams.get('host');
    assert.ok(dataDir, `the database URL names a socket directory: ${t.berth.database.url}`);
    const dir = statSync(dataDir);
    assert.equal(dir.mode & 0o777, 0o700, 'the socket directory is mode 0700');
    assert.equal(dir.uid, process.getuid!(), 'the socket directory belongs to Berth\'s user');
    const socket = statSync(join(dataDir, '.s.PGSQL.5432'));
    assert.ok(socket.isSocket(), 'the database is served on a Unix socket');
    assert.equal(socket.mode & 0o077, 0, 'the socket itself is closed to group and others');
  } finally {
    await t.stop();
  }
});

test('after kill -9 the next start replaces the stale socket; a second Berth on a served data directory refuses to start', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-socket-'));
  const killed = await spawnBerth({ BERTH_DATA_DIR: dataDir }, { timeoutMs: 120_000 });
  killed.child.kill('SIGKILL');
  await killed.exited;
  assert.ok(statSync(join(dataDir, 'run', '.s.PGSQL.5432')).isSocket(), 'the killed process left its socket');
  const next = await spawnBerth({ BERTH_DATA_DIR: dataDir }, { timeoutMs: 120_000 });
  try {
    assert.equal((await next.client.request('GET', '/v2/catalog')).status, 200);
    await assert.rejects(spawnBerth({ BERTH_DATA_DIR: dataDir }, { timeoutMs: 120_000 }), /another Berth process is serving the embedded database in/);
  } finally {
    next.child.kill('SIGTERM');
    await next.exited;
    rmSync(dataDir, { recursive: true, force: true });
  }
});
