// Issue 10 acceptance 6: two `berth controller` replicas elect one leader on a
// Lease; the standby makes no broker calls; when the leader is killed (SIGKILL,
// no release) the standby takes over once the lease expires, and the work goes on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { REPO, freePort } from '../support/berth.ts';
import { startStack, instance, waitFor, until, CONTROLLER_NAMESPACE, type Stack } from './support.ts';

const LEASE_SECONDS = 4;

describe('controller: two replicas, one leader', () => {
  let stack: Stack;
  let ns: string;
  const children = new Set<ChildProcess>();
  before(async () => {
    stack = await startStack({ startController: false });
    ns = await stack.kube.createNamespace('ctl-ha');
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    if (ns) {
      if (!stack.controller) await stack.startController();
      await stack.kube.deleteNamespace(ns).catch(() => undefined);
    }
    await stack?.stop();
  });

  const replica = async (id: string) => {
    const port = await freePort();
    const child = spawn(process.execPath, [join(REPO, 'src/cli.ts'), 'controller'], {
      env: { ...stack.controllerEnv(), BERTH_CONTROLLER_ID: id, BERTH_CONTROLLER_METRICS_PORT: String(port), BERTH_CONTROLLER_LEASE_SECONDS: String(LEASE_SECONDS) },
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    children.add(child);
    const exited = once(child, 'exit');
    const calls = async () => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return text.split('\n').filter((l) => l.startsWith('berth_controller_broker_calls_total')).reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
    };
    await until(async () => ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok ? true : undefined), `replica ${id} serving /healthz`);
    return { id, child, exited, calls };
  };

  test('one leader, a silent standby, failover after SIGKILL within the lease, no duplicate calls', async () => {
    const leases = stack.kube.kubeConfig().makeApiClient(CoordinationV1Api);
    const holder = async () => (await leases.readNamespacedLease({ namespace: CONTROLLER_NAMESPACE, name: `berth-controller-${stack.shard}` })).spec?.holderIdentity;
    const a = await replica('replica-a');
    const b = await replica('replica-b');
    const leaderId = await until(async () => (await holder()) ?? undefined, 'a leader');
    const [leader, standby] = leaderId === a.id ? [a, b] : [b, a];

    await stack.apply(ns, instance('ha-1', { offering: 'gated', plan: 'async' }), instance('ha-2', { offering: 'user-provided', plan: 'standard', parameters: { credentials: { k: 'v' } } }));
    await waitFor(stack.kube, ns, 'serviceinstance/ha-1');
    await waitFor(stack.kube, ns, 'serviceinstance/ha-2');
    assert.ok((await leader.calls()) > 0, 'the leader called the broker');
    assert.equal(await standby.calls(), 0, 'the standby made no broker call');
    // Each accepted request is one audit row (outcome "accepted"; the operation's end adds another).
    const audit = await stack.berth.berth.stores.knex('audit_events').select('instance_id', 'action', 'outcome');
    const provisions = audit.filter((e: { action: string; outcome: string }) => e.action === 'provision' && e.outcome === 'accepted');
    assert.equal(provisions.length, 2, `one provision per instance: ${JSON.stringify(audit)}`);

    const killedAt = Date.now();
    leader.child.kill('SIGKILL');
    await leader.exited;
    await until(async () => ((await holder()) === standby.id ? true : undefined), 'the standby takes the Lease', LEASE_SECONDS * 3 * 1000);
    const failoverMs = Date.now() - killedAt;
    process.stderr.write(`[replicas test] failover after SIGKILL: ${failoverMs} ms (lease ${LEASE_SECONDS} s, renewed every ${LEASE_SECONDS / 4} s)\n`);

    await stack.apply(ns, instance('ha-3', { offering: 'gated', plan: 'async' }));
    await waitFor(stack.kube, ns, 'serviceinstance/ha-3');
    assert.ok((await standby.calls()) > 0, 'the new leader does the work');
    const after = await stack.berth.berth.stores.knex('audit_events').where({ action: 'provision', outcome: 'accepted' }).select('instance_id');
    assert.equal(after.length, 3, 'still one provision per instance after the failover');
    standby.child.kill('SIGTERM');
    await standby.exited;
  });
});
