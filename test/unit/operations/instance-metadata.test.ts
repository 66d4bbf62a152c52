// The 4,096-byte bound on instance metadata (src/operations/instance-metadata.ts): what is kept, what is left
// out and in which order, and that every left-out entry is logged by key.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { boundedInstanceMetadata, INSTANCE_METADATA_MAX_BYTES } from '../../../src/operations/instance-metadata.ts';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  return { log, lines };
}

const bytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v), 'utf8');

test('metadata within the bound is kept as it is', () => {
  const { log, lines } = capture();
  const m = { labels: { 'berth.dev/release': 'b-x' }, attributes: { 'berth.dev/revision': '3' } };
  assert.deepEqual(boundedInstanceMetadata(m, log), m);
  assert.equal(lines.length, 0);
  assert.equal(boundedInstanceMetadata(undefined, log), undefined);
  assert.equal(boundedInstanceMetadata({ labels: {}, attributes: {} }, log), undefined, 'empty sections are left out');
});

test('over the bound: the longest attributes go first, then labels, never a cut value', () => {
  const { log, lines } = capture();
  const m = {
    labels: { small: 'a', big: 'é'.repeat(1500) },
    attributes: { a: 'x'.repeat(1200), b: 'y'.repeat(1000), c: 'kept' },
  };
  const out = boundedInstanceMetadata(m, log)!;
  assert.ok(bytes(out) <= INSTANCE_METADATA_MAX_BYTES, `${bytes(out)} bytes`);
  // 'é' is two bytes: labels alone are ~3 kB, so attribute a (the longest) goes, and b fits beside them.
  assert.deepEqual(out, { labels: m.labels, attributes: { b: m.attributes.b, c: 'kept' } });
  assert.deepEqual(lines.map((l) => [l.section, l.key]), [['attributes', 'a']]);

  const huge = { labels: { one: 'z'.repeat(3000), two: 'w'.repeat(3000), tiny: 't' }, attributes: { big: 'q'.repeat(5000) } };
  const { log: log2, lines: lines2 } = capture();
  const out2 = boundedInstanceMetadata(huge, log2)!;
  assert.ok(bytes(out2) <= INSTANCE_METADATA_MAX_BYTES);
  assert.equal(out2.attributes, undefined);
  assert.equal(Object.keys(out2.labels as object).length, 2, 'one long label dropped, the other and the tiny one kept');
  assert.equal((out2.labels as Record<string, string>).tiny, 't');
  assert.deepEqual(lines2.map((l) => l.section), ['attributes', 'labels']);
});

test('values that are not strings are left out with a log line', () => {
  const { log, lines } = capture();
  const out = boundedInstanceMetadata({ labels: { n: 1 as unknown as string, s: 'ok' } }, log);
  assert.deepEqual(out, { labels: { s: 'ok' } });
  assert.equal(lines[0]?.key, 'n');
});
