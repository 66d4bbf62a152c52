// Bearer tokens in the one auth check (http/checks.ts) and the TokenReview
// cache (http/token-review.ts), without a server or cluster: the review is a
// seam here; token-review.test.ts proves it against the real API server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { authenticate, credentialMatcher, type TokenChecker, type TokenVerdict } from '../../../src/http/checks.ts';
import { AuthThrottle } from '../../../src/http/auth-throttle.ts';
import { TokenReviewer } from '../../../src/http/token-review.ts';
import type { KubernetesAccess } from '../../../src/kubernetes/client.ts';
import { OsbError } from '../../../src/osb/errors.ts';

const silent = pino({ level: 'silent' });

async function osbError(fn: () => unknown): Promise<OsbError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof OsbError, String(err));
    return err;
  }
  assert.fail('expected an OsbError');
}

test('static tokens: any configured one, case-insensitive scheme, the whole token, and basic pairs beside them', () => {
  const matches = credentialMatcher([{ username: 'a', password: 'pw' }], ['tok-one', 'tok-two']);
  assert.ok(matches('Bearer tok-one'));
  assert.ok(matches('Bearer tok-two'));
  assert.ok(matches('bearer   tok-two '));
  assert.ok(matches('Basic ' + Buffer.from('a:pw').toString('base64')));
  for (const wrong of ['Bearer tok-on', 'Bearer tok-one2', 'Bearer', 'Bearer ', 'tok-one', 'Basic ' + Buffer.from('a:tok-one').toString('base64'), 'Bearer pw']) {
    assert.ok(!matches(wrong), wrong);
  }
  assert.ok(!credentialMatcher([{ username: 'a', password: 'pw' }])('Bearer tok-one'), 'no tokens configured');
});

test('a bearer token that is no static one goes to the checker; its verdict decides, failures count toward the throttle', async () => {
  const verdicts: Record<string, TokenVerdict> = {
    good: { kind: 'allowed', identity: 'system:serviceaccount:cf:cc' },
    stranger: { kind: 'not-allowed', identity: 'system:serviceaccount:x:y' },
    bad: { kind: 'refused' },
  };
  const asked: string[] = [];
  const tokens: TokenChecker = {
    check: (t) => {
      asked.push(t);
      if (t === 'down') return Promise.reject(new Error('connect ECONNREFUSED'));
      if (t === 'cached-good') return verdicts.good!;
      return Promise.resolve(verdicts[t] ?? { kind: 'refused' });
    },
  };
  const auth = { matches: credentialMatcher([], ['static-token']), tokens, throttle: new AuthThrottle({ limit: 3, windowMs: 60_000 }), log: silent };

  assert.equal(authenticate(auth, 'c', 'Bearer static-token', '/v2/catalog'), undefined, 'a static token needs no review');
  assert.equal(authenticate(auth, 'c', 'Bearer cached-good', '/v2/catalog'), undefined, 'a cached verdict answers synchronously');
  const pending = authenticate(auth, 'c', 'Bearer good', '/v2/catalog');
  assert.ok(pending instanceof Promise);
  await pending;
  assert.deepEqual(asked, ['cached-good', 'good']);

  const notAllowed = await osbError(() => authenticate(auth, 'c', 'Bearer stranger', '/v2/catalog'));
  assert.equal(notAllowed.status, 401);
  assert.match(notAllowed.description!, /valid for system:serviceaccount:x:y, but that identity is not allowed/);
  assert.ok(!notAllowed.description!.includes('stranger'));
  const refused = await osbError(() => authenticate(auth, 'c', 'Bearer bad', '/v2/catalog'));
  assert.equal(refused.status, 401);
  assert.match(refused.description!, /bearer token sent is not accepted/);
  for (let i = 0; i < 3; i++) {
    const down = await osbError(() => authenticate(auth, 'c2', 'Bearer down', '/v2/catalog'));
    assert.equal(down.status, 503, 'the cluster not answering is not the client\'s fault');
  }
  // Two refusals for c so far; a third uses up the allowance, then even a good token gets 429.
  assert.equal((await osbError(() => authenticate(auth, 'c', 'Bearer bad', '/v2/catalog'))).status, 401);
  assert.equal((await osbError(() => authenticate(auth, 'c', 'Bearer static-token', '/v2/catalog'))).status, 429);
  assert.equal(authenticate(auth, 'c2', 'Bearer static-token', '/v2/catalog'), undefined, '503s are not counted');
});

test('the TokenReview cache: one review per token and TTL, concurrent checks share it, failures are not cached, size is bounded', async () => {
  let now = 0;
  let calls = 0;
  let fail = false;
  const reviewer = new TokenReviewer({
    kube: {} as KubernetesAccess,
    users: ['system:serviceaccount:cf:cc'],
    groups: ['system:serviceaccounts:korifi'],
    audiences: [],
    cacheMs: 10_000,
    log: silent,
    now: () => now,
    review: async (token) => {
      calls++;
      if (fail) throw new Error('unreachable');
      if (token.startsWith('cc')) return { authenticated: true, username: 'system:serviceaccount:cf:cc', groups: ['system:serviceaccounts', 'system:serviceaccounts:cf'] };
      if (token.startsWith('korifi')) return { authenticated: true, username: 'system:serviceaccount:korifi:api', groups: ['system:serviceaccounts:korifi'] };
      if (token.startsWith('other')) return { authenticated: true, username: 'system:serviceaccount:x:y', groups: ['system:serviceaccounts:x'] };
      return { authenticated: false };
    },
  });
  const [a, b] = await Promise.all([reviewer.check('cc-1'), reviewer.check('cc-1')]);
  assert.deepEqual(a, { kind: 'allowed', identity: 'system:serviceaccount:cf:cc' });
  assert.equal(a, b);
  assert.equal(calls, 1, 'concurrent checks of one token share one review');
  assert.deepEqual(reviewer.check('cc-1'), a, 'then cached, answered synchronously');
  assert.deepEqual(await reviewer.check('korifi-1'), { kind: 'allowed', identity: 'system:serviceaccount:korifi:api' });
  assert.deepEqual(await reviewer.check('other-1'), { kind: 'not-allowed', identity: 'system:serviceaccount:x:y' });
  assert.deepEqual(await reviewer.check('garbage'), { kind: 'refused' });
  assert.deepEqual(reviewer.check('garbage'), { kind: 'refused' }, 'refusals are cached too');
  assert.equal(calls, 4);

  now = 10_000;
  fail = true;
  await assert.rejects(async () => reviewer.check('cc-1'), /unreachable/, 'expired: asked again');
  await assert.rejects(async () => reviewer.check('cc-1'), /unreachable/, 'a failure is not cached');
  assert.equal(calls, 6);
  fail = false;
  assert.equal((await reviewer.check('cc-1')).kind, 'allowed');

  // Bounded: thousands of distinct tokens do not grow the cache without end.
  for (let i = 0; i < 6000; i++) await reviewer.check(`garbage-${i}`);
  const before = calls;
  await reviewer.check('garbage-0');
  assert.equal(calls, before + 1, 'the oldest entries were forgotten');
  reviewer.check('garbage-5999');
  assert.equal(calls, before + 1, 'the newest are kept');
});
