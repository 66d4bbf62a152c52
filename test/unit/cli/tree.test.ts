// The tree `berth trace` prints: branches, full messages under their node, binding logins moved under
// their binding, and what the "provisioned" node says for each case (nothing made, no endpoint, a problem).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { drawTree, provisionedNode, resourceNode, splitByBinding, type ResourceLike } from '../../../src/cli/tree.ts';

test('drawTree: branches, and each message in full on the lines under its node', () => {
  const long = `${'x'.repeat(300)} end`;
  const out = drawTree({
    text: 'instance/a',
    detail: 'Provisioned',
    children: [
      { text: 'binding/b', children: [{ text: 'Secret/s: written', detail: 'keys: uri' }, { text: 'Role/r: ready', detail: `line one\nline two ${long}` }] },
      { text: 'provisioned by postgres', children: [{ text: 'Database/d: ready', detail: 'on server "shared"', children: [{ text: 'Role/o: ready' }] }] },
    ],
  });
  assert.equal(
    out,
    [
      'instance/a',
      '│  Provisioned',
      '├─ binding/b',
      '│  ├─ Secret/s: written',
      '│  │     keys: uri',
      '│  └─ Role/r: ready',
      '│        line one',
      `│        line two ${long}`,
      '└─ provisioned by postgres',
      '   └─ Database/d: ready',
      '      │  on server "shared"',
      '      └─ Role/o: ready',
      '',
    ].join('\n'),
  );
});

test('resourceNode: kind/name: state, the message as detail, children kept in order', () => {
  const r: ResourceLike = {
    kind: 'Deployment',
    name: 'web',
    state: 'failed',
    message: '0/1 available',
    children: [{ kind: 'Pod', name: 'web-1', state: 'failed', children: [{ kind: 'Container', name: 'app', state: 'failed', message: 'waiting: CrashLoopBackOff; last run ended with exit code 3' }] }],
  };
  assert.deepEqual(resourceNode(r), {
    text: 'Deployment/web: failed',
    detail: '0/1 available',
    children: [{ text: 'Pod/web-1: failed', children: [{ text: 'Container/app: failed', detail: 'waiting: CrashLoopBackOff; last run ended with exit code 3' }] }],
  });
});

test('splitByBinding: logins of known bindings leave the tree (at any depth), others stay where they are', () => {
  const resources: ResourceLike[] = [
    {
      kind: 'Database',
      name: 'd',
      state: 'ready',
      children: [
        { kind: 'Role', name: 'owner', state: 'ready' },
        { kind: 'Role', name: 'b1', state: 'ready', binding_id: 'one' },
        { kind: 'Role', name: 'b2', state: 'missing', bindingID: 'two' },
        { kind: 'Role', name: 'b3', state: 'ready', binding_id: 'someone-else' },
      ],
    },
  ];
  const { byBinding, rest } = splitByBinding(resources, ['one', 'two']);
  assert.deepEqual([...byBinding.keys()], ['one', 'two']);
  assert.equal(byBinding.get('two')![0]!.name, 'b2');
  assert.deepEqual(rest[0]!.children!.map((c) => c.name), ['owner', 'b3']);
  assert.equal(resources[0]!.children!.length, 4, 'the input is not changed');
});

test('provisionedNode: who looked and when; nothing made; no endpoint; a problem', () => {
  const now = Date.parse('2026-01-01T00:05:00Z');
  const made = provisionedNode({ exposed: true, source: 'controller', kind: 'helm', takenAt: '2026-01-01T00:02:00Z', resources: [{ kind: 'HelmRelease', name: 'ns/r', state: 'ready' }] }, now);
  assert.equal(made.text, 'provisioned by helm (recorded by the controller at 2026-01-01T00:02:00Z, 3 min ago)');
  assert.equal(made.children![0]!.text, 'HelmRelease/ns/r: ready');

  const nothing = provisionedNode({ exposed: true, source: 'broker', kind: 'user-provided', takenAt: '2026-01-01T00:05:00Z', resources: [] }, now);
  assert.equal(nothing.text, 'provisioned by user-provided (looked at by the broker at 2026-01-01T00:05:00Z, 0 s ago)');
  assert.match(nothing.detail!, /^Nothing: a user-provided instance makes nothing on a server or in a cluster/);

  const foreign = provisionedNode({ exposed: false, source: 'broker', resources: [] }, now);
  assert.equal(foreign.text, 'provisioned: not shown by this broker');
  assert.match(foreign.detail!, /The broker does not expose what it provisioned/);

  const failed = provisionedNode({ exposed: true, source: 'broker', kind: 'postgres', takenAt: '2026-01-01T00:05:00Z', resources: [], problem: 'The postgres provisioner could not look at what it made: connection refused' }, now);
  assert.equal(failed.detail, 'The postgres provisioner could not look at what it made: connection refused');
});
