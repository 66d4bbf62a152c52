// Every name Berth derives from ids, pinned to golden values: a name that
// changes between releases orphans what existing instances own (databases,
// roles, Helm releases, Secrets). These values were produced by the release
// these names first shipped in; a failure here is a compatibility break.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { base32, hashName, idHash, nameHash } from '../../../src/lib/hash-names.ts';
import { mysqlNames, pgNames } from '../../../src/provisioners/sql/names.ts';
import { releaseName } from '../../../src/provisioners/helm/helm-provisioner.ts';
import { bindingSecretName } from '../../../src/kubernetes/binding-secrets.ts';

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

test('the hash of a text is SHA-256 in base32, cut to the length asked for', () => {
  // sha256("") = e3b0c442…; its base32 starts "4oymiquy7qobjgx36tejs35zeqt24qpemsnzgtfeswmrw6csxbkq".
  assert.equal(hashName('', 52), '4oymiquy7qobjgx36tejs35zeqt24qpemsnzgtfeswmrw6csxbkq');
  assert.equal(hashName('', 10), '4oymiquy7q');
});

test('SQL server names are stable', () => {
  assert.equal(nameHash('instance', 'a'), 'bzrxp2fq6qt2titgfmvklknyxe');
  assert.equal(pgNames.database('a'), 'berth_i_bzrxp2fq6qt2titgfmvklknyxe');
  assert.equal(pgNames.ownerRole('a'), 'berth_o_bzrxp2fq6qt2titgfmvklknyxe');
  assert.equal(pgNames.bindingRole('a', 'b'), 'berth_b_tphzele4olse7monii6d2e2hbb');
  assert.equal(pgNames.database(`'; DROP ROLE x; --`), 'berth_i_2bq7p3yqvyoadxvsfr5gaytr2g');
  assert.equal(mysqlNames.database('a'), 'berthibzrxp2fq6qt2titgfmvklknyxe');
  assert.equal(mysqlNames.bindingUser('a', 'b'), 'berthbtphzele4olse7monii6d2e2hbb');
});

test('Kubernetes names are stable', () => {
  assert.equal(idHash('a'), 'zklycewkdo64v6wcggzz');
  assert.equal(idHash('a', 'b'), 'lgzhdlq3xsy5ghkbskmb');
  assert.equal(releaseName('a'), 'b-zklycewkdo64v6wcggzz');
  assert.equal(releaseName('Ünï/€'), 'b-cdoqgexhmjazrh4hdobs');
  assert.equal(bindingSecretName('a', 'b'), 'berth-binding-lgzhdlq3xsy5ghkbskmb');
});

test('the parts of a name are hashed unambiguously', () => {
  assert.notEqual(pgNames.bindingRole('a', 'bc'), pgNames.bindingRole('ab', 'c'));
  assert.notEqual(idHash('a', 'bc'), idHash('ab', 'c'));
});
