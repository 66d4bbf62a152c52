import assert from 'node:assert/strict';
import { test } from 'node:test';
import { retry } from '../../../src/lib/retry.ts';
import { pause, untilAborted } from '../../../src/lib/abortable.ts';

test('retry stops at the first success', async () => {
  let calls = 0;
  const v = await retry(async (attempt) => {
    calls++;
    if (attempt < 3) throw new Error(`fail ${attempt}`);
    return 'ok';
  }, { attempts: 5, delayMs: () => 1 });
  assert.equal(v, 'ok');
  assert.equal(calls, 3);
});

test('retry rethrows the last error after the last attempt', async () => {
  let calls = 0;
  await assert.rejects(retry(async (attempt) => {
    calls++;
    throw new Error(`fail ${attempt}`);
  }, { attempts: 3, delayMs: () => 1 }), /fail 3/);
  assert.equal(calls, 3);
});

test('retry does not retry what is not retryable', async () => {
  let calls = 0;
  await assert.rejects(retry(async () => {
    calls++;
    throw new Error('permanent');
  }, { attempts: 5, delayMs: () => 1, retryable: () => false }), /permanent/);
  assert.equal(calls, 1);
});

test('retry gives up once its time is up', async () => {
  let calls = 0;
  await assert.rejects(retry(async () => {
    calls++;
    throw new Error('down');
  }, { until: Date.now() - 1, delayMs: () => 1 }), /down/);
  assert.equal(calls, 1);
});

test('retry waits the policy\'s delays between attempts', async () => {
  const asked: number[] = [];
  await retry(async (attempt) => {
    if (attempt < 4) throw new Error('again');
  }, { delayMs: (attempt) => (asked.push(attempt), 1) });
  assert.deepEqual(asked, [1, 2, 3]);
});

test('an abort ends the wait between attempts', async () => {
  const controller = new AbortController();
  const pending = retry(async () => {
    throw new Error('again');
  }, { delayMs: () => 60_000, signal: controller.signal });
  controller.abort(new Error('stopped'));
  await assert.rejects(pending, /stopped/);
});

test('pause resolves early on abort and never rejects', async () => {
  const controller = new AbortController();
  const paused = pause(60_000, controller.signal);
  controller.abort();
  assert.equal(await paused, undefined);
});

test('untilAborted rejects with the abort reason without waiting for the work', async () => {
  const controller = new AbortController();
  const never = new Promise<never>(() => {});
  const waiting = untilAborted(never, controller.signal);
  controller.abort(new Error('lease lost'));
  await assert.rejects(waiting, /lease lost/);
  assert.equal(await untilAborted(Promise.resolve(7), new AbortController().signal), 7);
});
