// How trace words a Pod and its containers (src/provisioners/helm/describe.ts): readiness, a crash loop
// with the last exit code, an image that cannot be pulled, a Pod that cannot be scheduled.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import { describePod } from '../../../src/provisioners/helm/describe.ts';

const pod = (status: V1Pod['status'], nodeName?: string): V1Pod => ({ metadata: { name: 'web-0' }, spec: { containers: [], ...(nodeName ? { nodeName } : {}) }, status });

test('a Ready Pod with a running container', () => {
  const r = describePod(
    pod(
      {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: 'True' }],
        containerStatuses: [{ name: 'app', image: 'x', imageID: '', ready: true, restartCount: 0, state: { running: { startedAt: new Date('2026-01-01T00:00:00Z') } } }],
      },
      'node-1',
    ),
  );
  assert.equal(r.state, 'ready');
  assert.equal(r.message, 'Ready; phase Running; on node node-1');
  assert.deepEqual(r.children, [{ kind: 'Container', name: 'app', state: 'ready', message: 'running since 2026-01-01T00:00:00.000Z, ready; 0 restart(s)' }]);
});

test('a crash loop: failed, with the reason, the message and how the last run ended', () => {
  const r = describePod(
    pod({
      phase: 'Running',
      conditions: [{ type: 'Ready', status: 'False', message: 'containers with unready status: [app]' }],
      containerStatuses: [
        {
          name: 'app',
          image: 'x',
          imageID: '',
          ready: false,
          restartCount: 4,
          state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 1m20s restarting failed container=app' } },
          lastState: { terminated: { exitCode: 3, reason: 'Error', message: 'FATAL: config missing' } },
        },
      ],
    }),
  );
  assert.equal(r.state, 'failed');
  assert.equal(r.message, 'not Ready; phase Running; containers with unready status: [app]');
  assert.deepEqual(r.children![0], {
    kind: 'Container',
    name: 'app',
    state: 'failed',
    message: 'waiting: CrashLoopBackOff: back-off 1m20s restarting failed container=app; 4 restart(s); last run ended with exit code 3 (Error): FATAL: config missing',
  });
});

test('an image that cannot be pulled is failed; a container being created is not ready yet', () => {
  const r = describePod(
    pod({
      phase: 'Pending',
      containerStatuses: [
        { name: 'a', image: 'x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "nope"' } } },
        { name: 'b', image: 'y', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ContainerCreating' } } },
      ],
    }),
  );
  assert.equal(r.state, 'failed');
  assert.deepEqual(r.children!.map((c) => c.state), ['failed', 'not-ready']);
});

test('a Pod that cannot be scheduled says why', () => {
  const r = describePod(pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available: 1 Insufficient memory.' }] }));
  assert.equal(r.state, 'not-ready');
  assert.equal(r.message, 'not Ready; phase Pending; not scheduled: Unschedulable: 0/1 nodes are available: 1 Insufficient memory.');
});
