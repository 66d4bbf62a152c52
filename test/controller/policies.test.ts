// The escape hatches: the paused annotation (Synced=False, ReconcilePaused, no
// broker call until unpaused), deletionPolicy: Orphan (the resource goes, the
// instance stays at the broker), a forced resync that re-provisions an instance
// the broker lost, and a Secret name someone else owns (never adopted).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, instance, binding, waitFor, kubectl, until, conditionOf, type Stack } from './support.ts';

describe('controller: pause, orphan, resync, foreign Secrets', () => {
  let stack: Stack;
  let ns: string;
  before(async () => {
    stack = await startStack();
    ns = await stack.kube.createNamespace('ctl-pol');
  });
  after(async () => {
    if (ns) await stack?.kube.deleteNamespace(ns).catch(() => undefined);
    await stack?.stop();
  });

  test('paused: no broker call for a changed spec until unpaused', async () => {
    await stack.apply(ns, instance('p', { offering: 'postgresql', plan: 'small' }));
    await waitFor(stack.kube, ns, 'serviceinstance/p');
    await kubectl(stack.kube, ['annotate', '-n', ns, 'serviceinstance/p', 'services.berth.dev/paused=true']);
    await until(async () => (conditionOf(await stack.get('serviceinstances', ns, 'p'), 'Synced')?.reason === 'ReconcilePaused' ? true : undefined), 'ReconcilePaused');
    const calls = await stack.controller!.brokerCalls();
    await kubectl(stack.kube, ['patch', '-n', ns, 'serviceinstance/p', '--type=merge', '-p', '{"spec":{"plan":"large"}}']);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await stack.controller!.brokerCalls(), calls, 'paused: no broker call');
    await kubectl(stack.kube, ['annotate', '-n', ns, 'serviceinstance/p', 'services.berth.dev/paused-']);
    await until(async () => ((await stack.get('serviceinstances', ns, 'p')).status.planID === 'plan-ctl-pg-large' ? true : undefined), 'the plan change applied after unpausing');
    await kubectl(stack.kube, ['delete', '-n', ns, 'serviceinstance/p', '--timeout=60s']);
  });

  test('deletionPolicy Orphan: the resource goes, the instance stays at the broker', async () => {
    await stack.apply(ns, instance('o', { offering: 'user-provided', plan: 'standard', deletionPolicy: 'Orphan', parameters: { credentials: { a: 'b' } } }));
    await waitFor(stack.kube, ns, 'serviceinstance/o');
    const uid = (await stack.get('serviceinstances', ns, 'o')).metadata.uid;
    await kubectl(stack.kube, ['delete', '-n', ns, 'serviceinstance/o', '--timeout=60s']);
    assert.equal((await stack.berth.client.lastOperation(uid)).status, 200, 'still at the broker');
    const d = await stack.berth.client.deprovision(uid, 'svc-ctl-ups', 'plan-ctl-ups');
    await stack.berth.client.waitForInstance(uid, d.body?.operation).catch(() => undefined);
  });

  test('reconcile-at: an instance the broker lost is provisioned again under the same id', async () => {
    await stack.apply(ns, instance('r', { offering: 'user-provided', plan: 'standard', parameters: { credentials: { a: 'b' } } }));
    await waitFor(stack.kube, ns, 'serviceinstance/r');
    const uid = (await stack.get('serviceinstances', ns, 'r')).metadata.uid;
    // Someone deprovisions it behind Kubernetes' back.
    const d = await stack.berth.client.deprovision(uid, 'svc-ctl-ups', 'plan-ctl-ups');
    await stack.berth.client.waitForInstance(uid, d.body?.operation).catch(() => undefined);
    await kubectl(stack.kube, ['annotate', '-n', ns, 'serviceinstance/r', 'services.berth.dev/reconcile-at=now-1']);
    await until(async () => ((await stack.berth.client.lastOperation(uid)).body?.state === 'succeeded' ? true : undefined), 'provisioned again');
    await kubectl(stack.kube, ['delete', '-n', ns, 'serviceinstance/r', '--timeout=60s']);
  });

  test('a Secret of the binding\'s name that the controller does not own is left alone', async () => {
    await stack.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'taken' }, stringData: { mine: 'yes' } } });
    await stack.apply(ns, instance('s', { offering: 'user-provided', plan: 'standard', parameters: { credentials: { a: 'b' } } }), binding('s-app', 's', { secretName: 'taken' }));
    await waitFor(stack.kube, ns, 'serviceinstance/s');
    const b = await until(async () => {
      const x = await stack.get('servicebindings', ns, 's-app');
      return conditionOf(x, 'Ready')?.reason === 'SecretNameTaken' ? x : undefined;
    }, 'SecretNameTaken');
    assert.match(conditionOf(b, 'Ready').message, /not this binding's/);
    const secret = await stack.core.readNamespacedSecret({ namespace: ns, name: 'taken' });
    assert.deepEqual(Object.keys(secret.data ?? {}), ['mine'], 'unchanged');
    assert.equal(secret.metadata?.ownerReferences, undefined);
    await kubectl(stack.kube, ['delete', '-n', ns, 'servicebinding/s-app', 'serviceinstance/s', '--timeout=60s']);
  });
});
