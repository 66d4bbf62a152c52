// Derived names, passwords and the quoting functions, the last checked by
// round-tripping hostile strings through the real servers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { base32, nameHash } from '../../src/lib/hash-names.ts';
import {
  generatePassword,
  mysqlNames,
  pgNames,
  quoteMysqlIdent,
  quoteMysqlString,
  quotePgIdent,
  quotePgLiteral,
} from '../../src/provisioners/sql/names.ts';
import { withMysql, withPg } from './support.ts';

const HOSTILE = [
  `plain`,
  `it's`,
  `"quoted"`,
  '`back`tick`',
  `semi; DROP ROLE postgres; --`,
  `back\\slash\\' OR 1=1 --`,
  `$$dollar$$ $tag$`,
  `ünïcødé 数据库 💥 \u202Eevil`,
  `new\nline\ttab`,
  `%_wild_%`,
];

test('base32 matches RFC 4648 (lower case, no padding)', () => {
  const vectors: Array<[string, string]> = [
    ['', ''],
    ['f', 'my'],
    ['fo', 'mzxq'],
    ['foo', 'mzxw6'],
    ['foob', 'mzxw6yq'],
    ['fooba', 'mzxw6ytb'],
    ['foobar', 'mzxw6ytboi'],
  ];
  for (const [input, out] of vectors) assert.equal(base32(Buffer.from(input)), out);
});

// Stability across releases is pinned by golden values in test/unit/lib/hash-names.test.ts.
test('names are bounded, made of [a-z0-9_] and distinct', () => {
  const ids = ['a', 'b', 'x'.repeat(1024), '€'.repeat(1024), `'; DROP ROLE x; --`, 'ünï', '', 'a\u0000b'];
  const seen = new Set<string>();
  for (const id of ids) {
    const names = [pgNames.database(id), pgNames.ownerRole(id), mysqlNames.database(id)];
    for (const n of names) {
      assert.match(n, /^[a-z][a-z0-9_]+$/);
      assert.ok(Buffer.byteLength(n) <= 63);
      assert.ok(!seen.has(n), `collision on ${n}`);
      seen.add(n);
    }
    assert.match(mysqlNames.database(id), /^[a-z0-9]+$/, 'no GRANT wildcards in MySQL database names');
  }
  // The (instance, binding) pair is hashed unambiguously.
  assert.notEqual(pgNames.bindingRole('a', 'bc'), pgNames.bindingRole('ab', 'c'));
  assert.notEqual(pgNames.bindingRole('a\u0000b', 'c'), pgNames.bindingRole('a', 'b\u0000c'));
  assert.notEqual(mysqlNames.bindingUser('i', 'b1'), mysqlNames.bindingUser('i', 'b2'));
  assert.ok(mysqlNames.bindingUser('x'.repeat(1024), 'y'.repeat(1024)).length <= 32, 'MySQL user names are at most 32 characters');
  assert.match(mysqlNames.bindingUser('i', 'b'), /^berthb[a-z2-7]{26}$/);
  assert.equal(nameHash('instance', 'a').length, 26);
});

test('passwords are long, random and policy-friendly', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const p = generatePassword();
    assert.match(p, /^[A-Za-z0-9_-]{32}$/);
    assert.match(p, /[a-z]/);
    assert.match(p, /[A-Z]/);
    assert.match(p, /[0-9]/);
    assert.match(p, /[-_]/);
    assert.ok(!seen.has(p));
    seen.add(p);
  }
});

test('quoting refuses what it cannot represent', () => {
  assert.throws(() => quotePgIdent('a\u0000b'));
  assert.throws(() => quotePgIdent(''));
  assert.throws(() => quotePgIdent('x'.repeat(64)), /63 bytes/);
  assert.throws(() => quotePgIdent('€'.repeat(22)), /63 bytes/);
  assert.throws(() => quotePgLiteral('a\u0000'));
  assert.throws(() => quoteMysqlIdent('x'.repeat(65)));
  assert.throws(() => quoteMysqlString('a\\b'), /backslash/);
  assert.throws(() => quoteMysqlString('a\u0000'));
});

test('PostgreSQL: hostile strings round-trip through quotePgLiteral and quotePgIdent, whatever standard_conforming_strings says', async () => {
  await withPg(async (c) => {
    for (const conforming of ['on', 'off']) {
      await c.query(`SET standard_conforming_strings = ${conforming}`);
      await c.query('SET escape_string_warning = off');
      for (const s of HOSTILE) {
        const { rows } = await c.query(`SELECT ${quotePgLiteral(s)} AS v`);
        assert.equal(rows[0].v, s, `literal ${JSON.stringify(s)} with standard_conforming_strings=${conforming}`);
        const ident = Buffer.byteLength(s) <= 63 ? s : s.slice(0, 20);
        const r = await c.query(`SELECT 1 AS ${quotePgIdent(ident)}`);
        assert.equal(r.fields[0]!.name, ident);
      }
    }
  });
});

test('MySQL: hostile strings round-trip through quoteMysqlString and quoteMysqlIdent, with and without NO_BACKSLASH_ESCAPES', async () => {
  await withMysql(async (c) => {
    await c.query('SET NAMES utf8mb4');
    for (const mode of ['', 'NO_BACKSLASH_ESCAPES']) {
      await c.query(`SET SESSION sql_mode = ${quoteMysqlString(mode)}`);
      for (const s of HOSTILE) {
        // MySQL identifiers hold only BMP characters (utf8mb3), whatever the quoting.
        const ident = s.replace(/[\u{10000}-\u{10FFFF}]/gu, '');
        if (!s.includes('\\')) {
          const [rows] = (await c.query(`SELECT ${quoteMysqlString(s)} AS v`)) as unknown as [Array<{ v: string }>];
          assert.equal(rows[0]!.v, s, `string ${JSON.stringify(s)} with sql_mode=${mode}`);
        }
        const [, fields] = (await c.query(`SELECT 1 AS ${quoteMysqlIdent(ident)}`)) as unknown as [unknown, Array<{ name: string }>];
        assert.equal(fields[0]!.name, ident);
      }
    }
  });
});
