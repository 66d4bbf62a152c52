// The lifecycle table (osb/lifecycle.ts): what each kind of operation leaves
// behind when it fails, and which failures report instance_usable and
// update_repeatable (OSB: only update and deprovision, defaulting to true).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lifecycle, reportedUsability, stateAfterFailure, stateBeforeDelete } from '../../../src/osb/lifecycle.ts';

test('a failed create leaves create_failed, or nothing when the request data caused it', () => {
  assert.equal(stateAfterFailure('provision', { planId: 'p' }, false), 'create_failed');
  assert.equal(stateAfterFailure('provision', { planId: 'p' }, true), 'deleted');
  assert.equal(stateAfterFailure('bind', { planId: 'p' }, false), 'create_failed');
  assert.equal(stateAfterFailure('bind', { planId: 'p' }, true), 'deleted');
});

test('a failed update leaves the instance ready', () => {
  assert.equal(stateAfterFailure('update', {}, false), 'ready');
  assert.equal(stateAfterFailure('update', {}, true), 'ready');
});

test('a failed delete restores the state it found, ready when none was recorded', () => {
  assert.equal(stateAfterFailure('deprovision', { previousState: 'create_failed' }, false), 'create_failed');
  assert.equal(stateAfterFailure('deprovision', {}, false), 'ready');
  assert.equal(stateAfterFailure('unbind', { previousState: 'create_failed' }, false), 'create_failed');
  assert.equal(stateAfterFailure('unbind', {}, false), 'ready');
});

test('a delete that interrupts a create records create_failed as what to restore', () => {
  assert.equal(stateBeforeDelete('creating'), 'create_failed');
  assert.equal(stateBeforeDelete('ready'), 'ready');
  assert.equal(stateBeforeDelete('create_failed'), 'create_failed');
});

test('only update and deprovision report instance_usable; only update reports update_repeatable; both default to true', () => {
  assert.deepEqual(reportedUsability('update', {}), { instanceUsable: true, updateRepeatable: true });
  assert.deepEqual(reportedUsability('update', { instanceUsable: false, updateRepeatable: false }), { instanceUsable: false, updateRepeatable: false });
  assert.deepEqual(reportedUsability('deprovision', { updateRepeatable: false }), { instanceUsable: true });
  assert.deepEqual(reportedUsability('deprovision', { instanceUsable: false }), { instanceUsable: false });
  for (const kind of ['provision', 'bind', 'unbind'] as const) assert.deepEqual(reportedUsability(kind, { instanceUsable: false, updateRepeatable: false }), {});
});

test('requests move objects to the states the spec names', () => {
  assert.deepEqual(
    Object.fromEntries(Object.entries(lifecycle).map(([k, v]) => [k, [v.target, v.during, v.succeeded]])),
    {
      provision: ['instance', 'creating', 'ready'],
      update: ['instance', 'updating', 'ready'],
      deprovision: ['instance', 'deleting', 'deleted'],
      bind: ['binding', 'creating', 'ready'],
      unbind: ['binding', 'deleting', 'deleted'],
      // An administrator's repair (no OSB request): busy like an update while it runs.
      repair: ['instance', 'updating', 'ready'],
    },
  );
});

test("a failed repair leaves the instance as it found it, reporting it usable", () => {
  assert.equal(stateAfterFailure('repair', { previousState: 'ready' }, false), 'ready');
  assert.deepEqual(reportedUsability('repair', {}), { instanceUsable: true, updateRepeatable: true });
});
