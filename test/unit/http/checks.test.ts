// The protocol checks every /v2 request passes (http/checks.ts), without a server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { apiMinorOf, authenticate, checkRequest, credentialMatcher, originatingIdentityOf, requestIdentityOf } from '../../../src/http/checks.ts';
import { AuthThrottle } from '../../../src/http/auth-throttle.ts';
import { OsbError } from '../../../src/osb/errors.ts';

const basic = (user: string, password: string) => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');

function osbError(fn: () => unknown): OsbError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof OsbError, String(err));
    return err;
  }
  assert.fail('expected an OsbError');
}

test('the API version: 400 without it, 412 outside 2.13-2.17', () => {
  assert.equal(apiMinorOf({ 'x-broker-api-version': '2.17' }), 17);
  assert.equal(apiMinorOf({ 'x-broker-api-version': ' 2.13 ' }), 13);
  assert.equal(osbError(() => apiMinorOf({})).status, 400);
  assert.equal(osbError(() => apiMinorOf({ 'x-broker-api-version': '  ' })).error, 'MissingAPIVersion');
  for (const v of ['2.12', '2.18', '3.0', 'latest', '2.1x']) assert.equal(osbError(() => apiMinorOf({ 'x-broker-api-version': v })).status, 412, v);
});

test('credentials: any configured pair, the whole user:password string, only Basic', () => {
  const matches = credentialMatcher([
    { username: 'a', password: 'p:w' },
    { username: 'b', password: 'q' },
  ]);
  assert.ok(matches(basic('a', 'p:w')));
  assert.ok(matches(basic('b', 'q')));
  assert.ok(matches('basic  ' + Buffer.from('b:q').toString('base64')));
  assert.ok(!matches(basic('a', 'p')));
  assert.ok(!matches(basic('a', 'q')));
  assert.ok(!matches('Bearer x'));
  assert.ok(!matches(undefined));
  assert.ok(!matches(''));
});

test('a client that fails too often is throttled before its credentials are looked at', () => {
  let now = 0;
  const auth = { matches: credentialMatcher([{ username: 'a', password: 'b' }]), throttle: new AuthThrottle({ limit: 2, windowMs: 10_000, now: () => now }), log: pino({ level: 'silent' }) };
  assert.equal(osbError(() => authenticate(auth, 'c1', undefined, '/v2/catalog')).status, 401);
  assert.equal(osbError(() => authenticate(auth, 'c1', basic('a', 'x'), '/v2/catalog')).status, 401);
  assert.equal(osbError(() => authenticate(auth, 'c1', basic('a', 'x'), '/v2/catalog')).status, 401);
  const throttled = osbError(() => authenticate(auth, 'c1', basic('a', 'b'), '/v2/catalog'));
  assert.equal(throttled.status, 429);
  assert.equal(throttled.headers['Retry-After'], '10');
  authenticate(auth, 'c2', basic('a', 'b'), '/v2/catalog');
  now = 10_000;
  authenticate(auth, 'c1', basic('a', 'b'), '/v2/catalog');
});

test('identity headers: the request identity is bounded; the originating identity must be a base64 JSON object', () => {
  assert.equal(requestIdentityOf({ 'x-broker-api-request-identity': 'r'.repeat(300) }), 'r'.repeat(256));
  assert.equal(requestIdentityOf({}), undefined);
  const value = Buffer.from(JSON.stringify({ user_id: 'u' })).toString('base64');
  assert.deepEqual(originatingIdentityOf({ 'x-broker-api-originating-identity': `kubernetes ${value}` }), { platform: 'kubernetes', value: { user_id: 'u' } });
  assert.equal(originatingIdentityOf({}), undefined);
  for (const raw of ['kubernetes', 'kubernetes !!!', `k ${Buffer.from('[1]').toString('base64')}`, `k ${Buffer.from('"s"').toString('base64')}`]) {
    assert.equal(osbError(() => originatingIdentityOf({ 'x-broker-api-originating-identity': raw })).status, 400, raw);
  }
});

test('the checks run in the spec\'s order: version before credentials', () => {
  const auth = { matches: credentialMatcher([{ username: 'a', password: 'b' }]), throttle: new AuthThrottle({ limit: 5, windowMs: 1000 }), log: pino({ level: 'silent' }) };
  assert.equal(osbError(() => checkRequest(auth, { headers: { 'x-broker-api-version': '1.0' }, url: '/v2/catalog', client: 'c' })).status, 412);
  assert.equal(osbError(() => checkRequest(auth, { headers: { 'x-broker-api-version': '2.16' }, url: '/v2/catalog', client: 'c' })).status, 401);
  const meta = checkRequest(auth, { headers: { 'x-broker-api-version': '2.16', authorization: basic('a', 'b'), 'x-broker-api-request-identity': 'r1' }, url: '/v2/catalog', client: 'c' });
  assert.ok(!(meta instanceof Promise), 'basic auth is checked synchronously');
  assert.deepEqual([meta.apiMinor, meta.requestIdentity, meta.originatingIdentity], [16, 'r1', undefined]);
});
