// Table-driven: how `-p key=value` types and nests values, which repeats are refused with which
// message, how a conflicting repeat names the differing field, and --timeout durations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildParameters, firstDifference, typedValue, type JsonObject } from '../../../src/cli/parameters.ts';
import { parseDuration } from '../../../src/cli/broker/wait.ts';
import { parameterDigests } from '../../../src/cli/broker/state.ts';
import { CliError } from '../../../src/cli/errors.ts';

test('-p values: JSON where JSON reads them, strings otherwise', () => {
  const table: Array<[string, unknown]> = [
    ['5432', 5432],
    ['-1.5', -1.5],
    ['1e3', 1000],
    ['true', true],
    ['false', false],
    ['null', null],
    ['orders', 'orders'],
    ['007', '007'], // not a JSON number: a zip code stays a string
    ['1.2.3', '1.2.3'],
    ['True', 'True'],
    ['"5432"', '5432'], // a JSON string forces a string
    ['{"user":"x","port":1}', { user: 'x', port: 1 }],
    ['["citext","hstore"]', ['citext', 'hstore']],
    ['', ''],
    ['a=b', 'a=b'],
    ['https://example.com/?a=1', 'https://example.com/?a=1'],
  ];
  for (const [text, expected] of table) assert.deepEqual(typedValue(text), expected, `-p k=${text}`);
});

test('-p pairs build one nested object', () => {
  const table: Array<[string[], Record<string, unknown>, JsonObject?]> = [
    [['port=5432', 'ssl=true'], { port: 5432, ssl: true }],
    [['a.b=c'], { a: { b: 'c' } }],
    [['a.b=1', 'a.c=2', 'd=x'], { a: { b: 1, c: 2 }, d: 'x' }],
    [['credentials={"user":"x"}'], { credentials: { user: 'x' } }],
    [['credentials={"user":"x"}', 'credentials.password=s3cret'], { credentials: { user: 'x', password: 's3cret' } }],
    [['a\\.b=1'], { 'a.b': 1 }],
    [['url=postgres://u:p@h/db?x=1'], { url: 'postgres://u:p@h/db?x=1' }],
    // -c gives the base; -p sets on top of it
    [['port=6543'], { port: 6543, host: 'h' }, { port: 5432, host: 'h' }],
    [['tls.mode=verify'], { tls: { mode: 'verify', ca: 'x' } }, { tls: { ca: 'x' } }],
  ];
  for (const [pairs, expected, base] of table) assert.deepEqual(buildParameters(pairs, base), expected, pairs.join(' '));
});

test('-p mistakes are usage errors that name both flags', () => {
  const table: Array<[string[], RegExp, JsonObject?]> = [
    [['port'], /^-p "port" is not key=value; write e\.g\. -p port=5432/],
    [['=5'], /^-p "=5" is not key=value/],
    [['a=1', 'a=2'], /^-p a is given twice \(-p a=1 and -p a=2\); give it once$/],
    [['a.b=1', 'a.b=1'], /^-p a\.b is given twice \(-p a\.b=1 and -p a\.b=1\)/],
    [['a=1', 'a.b=2'], /^-p a\.b=2 conflicts with -p a=1: a is already 1, not an object$/],
    [['a.b=2', 'a=1'], /^-p a=1 conflicts with -p a\.b=2: a would replace the object that sets a\.b$/],
    [['a.b=2'], /^-p a\.b=2 conflicts with -c: a is already "x", not an object$/, { a: 'x' }],
    [['a..b=1'], /^-p a\.\.b=1: the key "a\.\.b" has an empty part/],
    [['creds={"user":'], /^the value "\{\\"user\\":" starts like JSON but is not valid JSON/],
  ];
  for (const [pairs, message, base] of table) {
    assert.throws(
      () => buildParameters(pairs, base),
      (err: unknown) => err instanceof CliError && err.exitCode === 2 && message.test(err.message),
      `${pairs.join(' ')} should fail with ${message}`,
    );
  }
});

test('a conflicting repeat names the first field that differs, and never a parameter value', () => {
  const fields = ['offering', 'plan', 'parameters'];
  const base = { offering: 'postgresql', plan: 'small', parameters: { extensions: ['citext'], credentials: { user: 'u', password: 'p' } } };
  const table: Array<[Record<string, unknown>, string | undefined]> = [
    [base, undefined],
    [{ ...base, plan: 'large' }, 'plan is "small", not "large"'],
    [{ ...base, offering: 'mysql', plan: 'large' }, 'offering is "postgresql", not "mysql"'],
    [{ ...base, parameters: { ...base.parameters, extensions: [] } }, 'parameters.extensions differs (another value)'],
    [{ ...base, parameters: { ...base.parameters, credentials: { user: 'u', password: 'other' } } }, 'parameters.credentials.password differs (another value)'],
    [{ ...base, parameters: { ...base.parameters, credentials: { user: 'u' } } }, 'parameters.credentials.password differs (not given now)'],
    [{ ...base, parameters: { ...base.parameters, size: 3 } }, 'parameters.size differs (not set on the existing one)'],
  ];
  for (const [requested, expected] of table) assert.equal(firstDifference(base, requested, fields), expected, JSON.stringify(requested));

  // What the state file keeps to name a differing key when the broker does not return parameters: digests, not values.
  const digests = parameterDigests({ credentials: { user: 'u', password: 'p' }, port: 5432 });
  assert.deepEqual(Object.keys(digests).sort(), ['credentials.password', 'credentials.user', 'port']);
  assert.ok(!JSON.stringify(digests).includes('"p"'));
  assert.notEqual(parameterDigests({ port: 5432 }).port, parameterDigests({ port: '5432' }).port, 'a number and a string differ');
});

test('--timeout durations', () => {
  const table: Array<[string, number]> = [
    ['30m', 1_800_000],
    ['90s', 90_000],
    ['1h30m', 5_400_000],
    ['250ms', 250],
    ['1.5s', 1500],
    ['45', 45_000],
  ];
  for (const [text, ms] of table) assert.equal(parseDuration(text, '--timeout'), ms, text);
  for (const bad of ['', 'soon', '10x', '5m later', 'm5']) assert.throws(() => parseDuration(bad, '--timeout'), /is not a duration; write e\.g\. 90s, 10m or 1h30m/, bad);
});
