// The doctor's report and its runner, without a broker: lines on a terminal and off it, the
// summary, -o json, exit codes, a throwing check, and the TLS certificate's expiry verdicts
// (certificates made with openssl, "now" moved instead of waiting).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exitCodeOf, fail, line, pass, runChecks, skip, warn, type Check, type Result } from '../../../src/doctor/check.ts';
import { renderHuman, renderJson, renderLine, renderSummary, timing } from '../../../src/doctor/report.ts';
import { certificateOutcome } from '../../../src/doctor/local.ts';

const result = (status: Result['status'], message: string, durationMs?: number): Result => ({ id: `x-${status}`, title: `Thing ${status}`, status, message, ...(durationMs !== undefined ? { durationMs } : {}) });

test('a line off a terminal: PASS/WARN/FAIL/SKIP words, no escape codes, the time, continuation lines indented', () => {
  assert.equal(renderLine(result('pass', 'all good', 12), false), 'PASS Thing pass: all good (12 ms)\n');
  assert.equal(renderLine(result('warn', 'hmm', 1500), false), 'WARN Thing warn: hmm (1.5 s)\n');
  assert.equal(renderLine(result('fail', 'broken:\nrow a\nrow b', 125_000), false), 'FAIL Thing fail: broken: (2 min 5 s)\n     row a\n     row b\n');
  assert.equal(renderLine(result('skip', 'not asked', 3), false), 'SKIP Thing skip: not asked\n', 'a skipped check has no time');
  assert.equal(renderLine(result('pass', 'sub-step'), false), 'PASS Thing pass: sub-step\n', 'a line without its own timing shows none');
});

test('a line on a terminal: a coloured symbol', () => {
  assert.equal(renderLine(result('pass', 'ok', 5), true), '\x1b[32m✓\x1b[0m Thing pass: ok (5 ms)\n');
  assert.equal(renderLine(result('fail', 'no', 5), true), '\x1b[31m✗\x1b[0m Thing fail: no (5 ms)\n');
  assert.equal(renderLine(result('warn', 'eh', 5), true).slice(0, 11), '\x1b[33m!\x1b[0m ');
});

test('the summary counts each status and gives the verdict', () => {
  const all = [result('pass', 'a', 1), result('pass', 'b', 1), result('warn', 'c', 1), result('skip', 'd')];
  assert.equal(renderSummary(all, 2300, false), '4 checks: 2 passed, 1 warnings, 0 failed, 1 skipped in 2.3 s: passed with warnings\n');
  assert.equal(renderSummary([...all, result('fail', 'e', 1)], 10, false), '5 checks: 2 passed, 1 warnings, 1 failed, 1 skipped in 10 ms: FAILED\n');
  assert.equal(renderSummary([result('pass', 'a', 1)], 10, false), '1 checks: 1 passed, 0 warnings, 0 failed in 10 ms: passed\n');
  assert.match(renderSummary([result('fail', 'a', 1)], 10, true), /^\x1b\[1;31m1 checks: .*FAILED\x1b\[0m\n$/);
  assert.equal(renderHuman([result('pass', 'a', 1)], 10, { tty: false, target: 'broker http://x' }), 'berth doctor: broker http://x\nPASS Thing pass: a (1 ms)\n\n1 checks: 1 passed, 0 warnings, 0 failed in 10 ms: passed\n');
});

test('-o json: target, ok, counts and every check with its details', () => {
  const json = JSON.parse(renderJson([result('pass', 'a', 1), { ...result('fail', 'b', 2), details: { rows: 3 } }], 42.4, 'local installation'));
  assert.deepEqual(json, {
    target: 'local installation',
    ok: false,
    summary: { pass: 1, warn: 0, fail: 1, skip: 0, total: 2, durationMs: 42 },
    checks: [
      { id: 'x-pass', title: 'Thing pass', status: 'pass', message: 'a', durationMs: 1 },
      { id: 'x-fail', title: 'Thing fail', status: 'fail', message: 'b', durationMs: 2, details: { rows: 3 } },
    ],
  });
});

test('the runner: checks in order, sub-lines with their own ids, a throwing check becomes its own failure, exit code 1 only on a failure', async () => {
  const order: string[] = [];
  const checks: Check<{ seen: string[] }>[] = [
    { id: 'first', title: 'First', run: async (c) => (c.seen.push('first'), pass('fine')) },
    { id: 'thrower', title: 'Thrower', run: async () => { throw new Error('ECONNRESET from somewhere'); } },
    { id: 'multi', title: 'Multi', run: async () => [warn('main line'), line('multi-extra', 'Extra', skip('not needed')), line('multi-timed', 'Timed', pass('ok'), 7)] },
  ];
  const ctx = { seen: [] as string[] };
  const results = await runChecks(checks, ctx, (r) => order.push(r.id));
  assert.deepEqual(order, ['first', 'thrower', 'multi', 'multi-extra', 'multi-timed']);
  assert.deepEqual(ctx.seen, ['first']);
  assert.equal(results[1]!.status, 'fail');
  assert.equal(results[1]!.message, 'the check itself failed: ECONNRESET from somewhere');
  assert.equal(typeof results[2]!.durationMs, 'number');
  assert.equal(results[3]!.durationMs, undefined);
  assert.equal(results[4]!.durationMs, 7);
  assert.equal(results[4]!.details, undefined, 'id, title and timing are not details');
  assert.equal(exitCodeOf(results), 1);
  assert.equal(exitCodeOf(results.filter((r) => r.status !== 'fail')), 0, 'warnings alone exit 0');
  assert.equal(exitCodeOf([]), 0);
  assert.equal(fail('x').status, 'fail');
});

test('timings read as a person says them', () => {
  assert.equal(timing(0), '0 ms');
  assert.equal(timing(999), '999 ms');
  assert.equal(timing(1000), '1.0 s');
  assert.equal(timing(59_949), '59.9 s');
  assert.equal(timing(61_000), '1 min 1 s');
});

test('TLS certificate: pass when far from expiry, warn under 30 days, fail expired or unreadable', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-doctor-cert-'));
  try {
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', cert, '-days', '90', '-subj', '/CN=broker.test'], { stdio: 'ignore' });
    const pem = readFileSync(cert, 'utf8');
    const now = Date.now();
    const fresh = certificateOutcome(pem, cert, now);
    assert.equal(fresh.status, 'pass', fresh.message);
    assert.match(fresh.message, /^CN=broker\.test, valid until .* \((89|90) days\)$/);
    const soon = certificateOutcome(pem, cert, now + 70 * 86_400_000);
    assert.equal(soon.status, 'warn', soon.message);
    assert.match(soon.message, /expires in (19|20) day\(s\).*renew it/);
    const expired = certificateOutcome(pem, cert, now + 91 * 86_400_000);
    assert.equal(expired.status, 'fail');
    assert.match(expired.message, /expired on .*clients refuse it/);
    const garbage = certificateOutcome('-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n', cert, now);
    assert.equal(garbage.status, 'fail');
    assert.match(garbage.message, /holds no readable PEM certificate/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
