// Issue 10 acceptance 2 and 3: the broker's refusal is Synced=False with its
// description untruncated until the spec changes, and fixing the spec recovers
// the same resource; a plan change and a changed parametersFrom Secret are OSB
// updates, seen in the broker's audit table; CEL refuses an offering change and a
// plan change where the offering does not allow it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startStack, instance, waitFor, kubectl, until, conditionOf, type Stack } from './support.ts';
import { calls, refuseDeletes } from '../support/gated-provisioner.ts';
import { OsbClient, OsbError } from '../../src/osb-client/index.ts';
import { TEST_CREDENTIALS } from '../support/berth.ts';

describe('controller: broker errors, updates and admission rules', () => {
  let stack: Stack;
  let ns: string;
  before(async () => {
    stack = await startStack();
    ns = await stack.kube.createNamespace('ctl-err');
  });
  after(async () => {
    if (ns) await stack?.kube.deleteNamespace(ns).catch(() => undefined);
    await stack?.stop();
  });

  test('invalid parameters: Synced=False with Berth\'s description, no retries; fixing the spec recovers the same resource', async () => {
    const bad = { credentials: { uri: 'x' }, unknownSetting: 'y'.repeat(300) };
    // What Berth itself answers for these parameters, to compare word for word.
    const osb = new OsbClient({ url: stack.berth.berth.url, auth: TEST_CREDENTIALS });
    const refusal = await osb
      .provision(randomUUID(), { service_id: 'svc-ctl-ups', plan_id: 'plan-ctl-ups', organization_guid: 'o', space_guid: 's', parameters: bad })
      .then(() => assert.fail('Berth accepted invalid parameters'), (e: unknown) => e as OsbError);
    osb.close();
    assert.equal(refusal.status, 400);

    await stack.apply(ns, instance('bad', { offering: 'user-provided', plan: 'standard', parameters: bad }));
    const refused = await until(async () => {
      const si = await stack.get('serviceinstances', ns, 'bad');
      return conditionOf(si, 'Synced')?.reason === 'BrokerRefused' ? si : undefined;
    }, 'Synced=False, reason BrokerRefused');
    const synced = conditionOf(refused, 'Synced');
    assert.equal(synced.reason, 'BrokerRefused');
    assert.equal(synced.message, refusal.description, 'the broker\'s description, untruncated');
    assert.equal(conditionOf(refused, 'Ready').status, 'False');
    const uid = refused.metadata.uid;
    const events = await kubectl(stack.kube, ['get', 'events', '-n', ns, '--field-selector', `involvedObject.name=bad`, '-o', 'json']);
    assert.ok(JSON.parse(events).items.some((e: any) => e.reason === 'BrokerRefused' && e.type === 'Warning'), 'an Event tells kubectl describe');
    // No retry until the spec changes.
    const calls = await stack.controller!.brokerCalls();
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(await stack.controller!.brokerCalls(), calls, 'a refused spec is not retried');

    await kubectl(stack.kube, ['patch', '-n', ns, 'serviceinstance/bad', '--type=json', '-p', JSON.stringify([{ op: 'remove', path: '/spec/parameters/unknownSetting' }])]);
    await waitFor(stack.kube, ns, 'serviceinstance/bad');
    const fixed = await stack.get('serviceinstances', ns, 'bad');
    assert.equal(fixed.metadata.uid, uid, 'recovered without recreating');
    assert.equal(conditionOf(fixed, 'Synced').status, 'True');
    await kubectl(stack.kube, ['delete', '-n', ns, 'serviceinstance/bad', '--timeout=60s']);
  });

  test('CEL: the offering is immutable; the plan changes only where the offering allows it', async () => {
    await stack.apply(ns, instance('fixed', { offering: 'user-provided', plan: 'standard', parameters: { credentials: { a: 'b' } } }));
    await waitFor(stack.kube, ns, 'serviceinstance/fixed');
    await assert.rejects(
      kubectl(stack.kube, ['patch', '-n', ns, 'serviceinstance/fixed', '--type=merge', '-p', '{"spec":{"offering":"postgresql"}}']),
      /spec.offering is immutable/,
    );
    await assert.rejects(
      kubectl(stack.kube, ['patch', '-n', ns, 'serviceinstance/fixed', '--type=merge', '-p', '{"spec":{"plan":"other"}}']),
      /spec.plan can only change when the instance's offering allows plan changes/,
    );
    await kubectl(stack.kube, ['delete', '-n', ns, 'serviceinstance/fixed', '--timeout=60s']);
  });

  test('a failed delete: DeleteFailed with the broker\'s description; the controller retries by updating first (a failed delete stands at the broker until then)', async () => {
    await stack.apply(ns, instance('doomed', { offering: 'gated', plan: 'async' }));
    await waitFor(stack.kube, ns, 'serviceinstance/doomed');
    const uid = (await stack.get('serviceinstances', ns, 'doomed')).metadata.uid as string;
    refuseDeletes(uid);
    try {
      await kubectl(stack.kube, ['delete', '-n', ns, 'serviceinstance/doomed', '--wait=false']);
      const failed = await until(async () => {
        const c = conditionOf(await stack.get('serviceinstances', ns, 'doomed'), 'Ready');
        return c?.reason === 'DeleteFailed' ? c : undefined;
      }, 'Ready=False DeleteFailed');
      assert.equal(failed.message, 'The gated test service refused to delete this instance.');
      const deletesSoFar = calls.filter((c) => c.kind === 'deprovision' && c.instanceId === uid).length;
      // The controller's backoff retries meanwhile. Without the update it sends first, the broker would answer the
      // retried DELETE with the standing failure and never call the provisioner again.
      await until(async () => (calls.filter((c) => c.kind === 'deprovision' && c.instanceId === uid).length > deletesSoFar ? true : undefined), 'a retried delete reached the provisioner', 30_000);
    } finally {
      refuseDeletes(uid, false);
    }
    await until(async () => ((await stack.get('serviceinstances', ns, 'doomed').catch(() => undefined)) === undefined ? true : undefined), 'the resource is gone once the backend deletes', 90_000);
  });

  test('a plan change and a parametersFrom Secret change are OSB updates, in the broker\'s audit table', async () => {
    await stack.apply(
      ns,
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db-params' }, stringData: { 'params.json': JSON.stringify({ extensions: ['citext'] }) } },
      instance('db', { offering: 'postgresql', plan: 'small', parametersFrom: [{ secretKeyRef: { name: 'db-params', key: 'params.json' } }] }),
    );
    await waitFor(stack.kube, ns, 'serviceinstance/db');
    const si = await stack.get('serviceinstances', ns, 'db');
    const updates = async () => (await stack.berth.berth.stores.audit.forInstance(si.metadata.uid)).filter((e) => e.action.includes('update') || e.action === 'update');
    const actions = async () => (await stack.berth.berth.stores.audit.forInstance(si.metadata.uid)).map((e) => `${e.action}:${e.outcome ?? ''}`);
    assert.equal((await updates()).length, 0, (await actions()).join(' '));

    await kubectl(stack.kube, ['patch', '-n', ns, 'serviceinstance/db', '--type=merge', '-p', '{"spec":{"plan":"large"}}']);
    await until(async () => ((await stack.get('serviceinstances', ns, 'db')).status.planID === 'plan-ctl-pg-large' ? true : undefined), 'the plan change applied');
    await until(async () => ((await updates()).length >= 1 ? true : undefined), 'an update in the audit table');

    const before = (await updates()).length;
    await stack.core.replaceNamespacedSecret({
      namespace: ns,
      name: 'db-params',
      body: { metadata: { name: 'db-params' }, stringData: { 'params.json': JSON.stringify({ extensions: ['citext', 'hstore'] }) } },
    });
    await until(async () => ((await updates()).length > before ? true : undefined), `an update after the Secret changed (${(await actions()).join(' ')})`);
    await waitFor(stack.kube, ns, 'serviceinstance/db');
    const audit = await stack.berth.berth.stores.audit.forInstance(si.metadata.uid);
    assert.ok(audit.some((e) => e.platform === 'kubernetes'), 'the originating identity reaches the audit trail');
    await kubectl(stack.kube, ['delete', '-n', ns, 'serviceinstance/db', '--timeout=60s']);
  });
});
