// A malformed BERTH_ENCRYPTION_KEYS stops Berth at configuration time with one
// sentence naming the variable, never the key material.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config.ts';

const base = { DATABASE_URL: 'postgres://postgres@127.0.0.1/x', BROKER_USERNAME: 'u', BROKER_PASSWORD: 'a-password-long-enough' };

test('malformed encryption keys are refused by the configuration, naming the variable', () => {
  for (const [keys, message] of [
    ['garbage', /^BERTH_ENCRYPTION_KEYS entries must look like/],
    ['k1:c2hvcnQ=', /^BERTH_ENCRYPTION_KEYS: encryption key "k1" must be 32 bytes/],
    [`bad id:${Buffer.alloc(32).toString('base64')}`, /^BERTH_ENCRYPTION_KEYS: encryption key id "bad id"/],
  ] as const) {
    assert.throws(() => loadConfig({ ...base, BERTH_ENCRYPTION_KEYS: keys }), (err: unknown) => err instanceof ConfigError && message.test(err.message), keys);
  }
  assert.equal(loadConfig({ ...base, BERTH_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 1).toString('base64')}` }).encryptionKeys?.startsWith('k1:'), true);
});
