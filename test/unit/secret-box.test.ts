// The envelope itself: a ciphertext opens only in the cell it was sealed for,
// the old unbound format opens only for re-sealing, and every failure says
// which key or what to do without showing the value.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SecretBox, UndecryptableError } from '../../src/secret-box.ts';
import { bindingCell, instanceCell, sealV1 } from '../crypto/support.ts';

const K1 = SecretBox.generateKeySpec('k1');
const K2 = SecretBox.generateKeySpec('k2');

describe('SecretBox', () => {
  it('opens a value in the cell it was sealed for', () => {
    const box = new SecretBox(K1);
    const cell = bindingCell('i-1', 'b-1', 'credentials_enc');
    const sealed = box.seal({ password: 'hunter2' }, cell);
    assert.match(sealed, /^v2:k1:/);
    assert.deepEqual(box.open(sealed, cell), { password: 'hunter2' });
  });

  it('refuses a ciphertext copied into another row, column or table', () => {
    const box = new SecretBox(K1);
    const sealed = box.seal({ password: 'hunter2' }, bindingCell('i-1', 'b-1', 'credentials_enc'));
    for (const elsewhere of [
      bindingCell('i-1', 'b-2', 'credentials_enc'),
      bindingCell('i-2', 'b-1', 'credentials_enc'),
      // The row key's parts are kept apart: ("i-1", "b-1") is not ("i-1b", "-1").
      bindingCell('i-1b', '-1', 'credentials_enc'),
      bindingCell('i-1', 'b-1', 'parameters_enc'),
      instanceCell('b-1', 'credentials_enc'),
    ]) {
      assert.throws(
        () => box.open(sealed, elsewhere),
        (err: unknown) => err instanceof UndecryptableError && err.reason === 'not-authentic' && /copied from another row/.test(err.message) && !/hunter2/.test(err.message),
        JSON.stringify(elsewhere),
      );
    }
  });

  it('names the missing key id when a ciphertext was sealed under a removed key', () => {
    const sealed = new SecretBox(`${K1},${K2}`).seal({ a: 1 }, instanceCell('x', 'parameters_enc'));
    assert.throws(
      () => new SecretBox(K2).open(sealed, instanceCell('x', 'parameters_enc')),
      (err: unknown) => err instanceof UndecryptableError && err.keyId === 'k1' && /key "k1".*BERTH_ENCRYPTION_KEYS/.test(err.message),
    );
  });

  it('opens the old unbound format only for re-sealing', () => {
    const box = new SecretBox(K1);
    const legacy = sealV1(K1, { password: 'old' });
    const cell = bindingCell('i-1', 'b-1', 'credentials_enc');
    assert.throws(() => box.open(legacy, cell), (err: unknown) => err instanceof UndecryptableError && err.reason === 'legacy-format' && /berth keys rotate/.test(err.message));
    assert.deepEqual(box.openForReseal(legacy, cell), { password: 'old' });
    assert.equal(box.isCurrent(legacy), false);
  });

  it('keeps reading older keys, seals with the first, and knows what is current', () => {
    const old = new SecretBox(K1).seal('v', instanceCell('x', 'parameters_enc'));
    const rotated = new SecretBox(`${K2},${K1}`);
    assert.equal(rotated.open(old, instanceCell('x', 'parameters_enc')), 'v');
    assert.equal(rotated.isCurrent(old), false);
    assert.equal(rotated.isCurrent(rotated.seal('v', instanceCell('x', 'parameters_enc'))), true);
  });

  it('reports garbage as not a Berth ciphertext', () => {
    assert.throws(() => new SecretBox(K1).open('plain text', instanceCell('x', 'parameters_enc')), (err: unknown) => err instanceof UndecryptableError && err.reason === 'malformed');
  });
});
