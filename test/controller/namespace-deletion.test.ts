// Issue 10 acceptance 5: deleting a namespace that holds 20 ServiceInstances and
// 20 ServiceBindings deprovisions everything at the broker and the namespace goes
// away with no finalizer left behind, within the bound stated here (120 s on the
// shared 2-core test machine; it takes a few seconds when the machine is idle).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, instance, binding, waitFor, type Stack } from './support.ts';

const COUNT = 20;
const BOUND_MS = 120_000;

describe('controller: namespace deletion', () => {
  let stack: Stack;
  let ns: string | undefined;
  before(async () => {
    stack = await startStack();
    ns = await stack.kube.createNamespace('ctl-nsdel');
  });
  after(async () => {
    if (ns) await stack?.kube.deleteNamespace(ns).catch(() => undefined);
    await stack?.stop();
  });

  test(`${COUNT} instances and ${COUNT} bindings: all deprovisioned, namespace gone within ${BOUND_MS / 1000} s`, async () => {
    const objects = [];
    for (let i = 0; i < COUNT; i++) {
      objects.push(instance(`svc-${i}`, { offering: 'user-provided', plan: 'standard', parameters: { credentials: { n: String(i) } } }));
      objects.push(binding(`bind-${i}`, `svc-${i}`));
    }
    await stack.apply(ns!, ...objects);
    for (let i = 0; i < COUNT; i++) await waitFor(stack.kube, ns!, `servicebinding/bind-${i}`, 'Ready', 180);
    const list = (await stack.custom.listNamespacedCustomObject({ group: 'services.berth.dev', version: 'v1alpha1', plural: 'serviceinstances', namespace: ns! })) as { items: any[] };
    const ids = list.items.map((si) => si.metadata.uid as string);
    assert.equal(ids.length, COUNT);

    await stack.kube.deleteNamespace(ns!, { timeoutMs: BOUND_MS });
    const gone = ns!;
    ns = undefined;
    for (const id of ids) assert.equal((await stack.berth.client.lastOperation(id)).status, 410, `instance ${id} deprovisioned`);
    await assert.rejects(stack.core.readNamespace({ name: gone }), (e: any) => e.code === 404);
  });
});
