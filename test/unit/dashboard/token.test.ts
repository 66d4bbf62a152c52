// Dashboard links (dashboard/token.ts): bound to one instance, expiring, tamper-evident, and still valid
// after the encryption keys are rotated the documented way.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DASHBOARD_KEY_PURPOSE, DashboardTokens } from '../../../src/dashboard/token.ts';
import { SecretBox } from '../../../src/secret-box.ts';

const DAY = 86_400_000;
const PURPOSE = DASHBOARD_KEY_PURPOSE;
const oldKey = SecretBox.generateKeySpec('old');
const newKey = SecretBox.generateKeySpec('new');
const tokensOf = (spec: string, days = 30) => new DashboardTokens(new SecretBox(spec).derivedKeys(PURPOSE), days * DAY);

test('a token opens its own instance only, until it expires', () => {
  const tokens = tokensOf(oldKey);
  const now = Date.UTC(2026, 11, 3, 18, 0, 0);
  const token = tokens.issue('instance-a', now);
  const ok = tokens.check('instance-a', token, now);
  assert.equal(ok.valid, true);
  // At least the lifetime, rounded up to the end of that UTC day.
  assert.equal(ok.valid && ok.expiresAt.toISOString(), '2027-01-03T00:00:00.000Z');
  assert.deepEqual(tokens.check('instance-b', token, now), { valid: false, reason: 'not-authentic' });
  assert.deepEqual(tokens.check('instance-a', token, Date.UTC(2027, 0, 3)), { valid: false, reason: 'expired' });
  // The same link all day: answers do not churn what a platform stores.
  assert.equal(tokens.issue('instance-a', now + 5 * 3_600_000), token);
});

test('a tampered, truncated, foreign or missing token is refused', () => {
  const tokens = tokensOf(oldKey);
  const token = tokens.issue('i');
  const [v, exp, mac] = token.split('.') as [string, string, string];
  const later = `${v}.${Number(exp) + DAY / 1000}.${mac}`;
  assert.deepEqual(tokens.check('i', later), { valid: false, reason: 'not-authentic' });
  const flipped = `${v}.${exp}.${mac[0] === 'A' ? 'B' : 'A'}${mac.slice(1)}`;
  assert.deepEqual(tokens.check('i', flipped), { valid: false, reason: 'not-authentic' });
  assert.deepEqual(tokens.check('i', token.slice(0, -1)), { valid: false, reason: 'malformed' });
  assert.deepEqual(tokens.check('i', undefined), { valid: false, reason: 'malformed' });
  assert.deepEqual(tokens.check('i', [token, token]), { valid: false, reason: 'malformed' });
  assert.deepEqual(tokensOf(newKey).check('i', token), { valid: false, reason: 'not-authentic' });
});

test('key rotation: links signed with the old key work while it is configured, new links use the new key; removing it revokes', () => {
  const before = tokensOf(oldKey).issue('i');
  const rotated = tokensOf(`${newKey},${oldKey}`);
  assert.equal(rotated.check('i', before).valid, true);
  const after = rotated.issue('i');
  assert.notEqual(after, before);
  assert.equal(tokensOf(newKey).check('i', after).valid, true);
  assert.deepEqual(tokensOf(newKey).check('i', before), { valid: false, reason: 'not-authentic' });
});

test('an expired token is reported as expired only when it is authentic', () => {
  const tokens = tokensOf(oldKey);
  const past = Math.floor(Date.now() / 1000) - 60;
  assert.deepEqual(tokens.check('i', tokens.issueUntil('i', past)), { valid: false, reason: 'expired' });
  assert.deepEqual(tokens.check('j', tokens.issueUntil('i', past)), { valid: false, reason: 'not-authentic' });
});
