import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { adminConfigOf } from '../../../src/admin/config.ts';
import { adminTokenMatcher, parseDuration } from '../../../src/admin/api.ts';

test('admin tokens are name:token pairs from the variable and the file; errors name the place, never the token', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-admin-'));
  const file = join(dir, 'tokens');
  writeFileSync(file, '# operators\nbob:bob-token-0123456789\n\n');
  const c = adminConfigOf({ BERTH_ADMIN_TOKENS: 'alice:alice-token-0123456789', BERTH_ADMIN_TOKENS_FILE: file }, 12, []);
  assert.deepEqual(c.tokens.map((t) => t.name), ['alice', 'bob']);
  assert.equal(c.port, 8081);
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.sweepIntervalMs, 0);
  assert.equal(c.sweepGraceMs, 600_000);
  writeFileSync(file, 'carol:short\n');
  assert.throws(() => adminConfigOf({ BERTH_ADMIN_TOKENS_FILE: file }, 12, []), (e: Error) => e.message.includes(`${file} line 1`) && !e.message.includes('short'));
  assert.throws(() => adminConfigOf({ BERTH_ADMIN_TOKENS: ':nameless-token-0123456789' }, 12, []), /entry 1 must be NAME:TOKEN/);
  assert.throws(() => adminConfigOf({ BERTH_ADMIN_TOKENS: 'x:shared-secret-0123456789' }, 12, ['shared-secret-0123456789']), /"x" is also a platform credential/);
  assert.throws(() => adminConfigOf({ BERTH_SWEEP_INTERVAL_SECONDS: 'hourly' }, 12, []), /BERTH_SWEEP_INTERVAL_SECONDS/);
});

test('the matcher names the admin whose token came, and nobody for anything else', () => {
  const who = adminTokenMatcher([
    { name: 'alice', token: 'alice-token-0123456789' },
    { name: 'bob', token: 'bob-token-0123456789' },
  ]);
  assert.equal(who('Bearer bob-token-0123456789'), 'bob');
  assert.equal(who('bearer alice-token-0123456789'), 'alice');
  assert.equal(who('Bearer alice-token-012345678'), undefined);
  assert.equal(who('Basic ' + Buffer.from('alice:alice-token-0123456789').toString('base64')), undefined);
  assert.equal(who(undefined), undefined);
});

test('durations read as a person writes them', () => {
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('2d'), 172_800_000);
  assert.equal(parseDuration('45'), 45_000);
  assert.equal(parseDuration('soon'), undefined);
  assert.equal(parseDuration(''), undefined);
});
