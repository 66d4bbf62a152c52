// Issue 10 acceptance 4: `berth controller` killed with SIGKILL 20 times at
// random points, among them exactly between the broker's answer (202 or 201) and
// the status write (failpoints controller.provision-answered, bind-answered,
// operation-ended) and at random moments: afterwards every resource converges and
// the broker holds exactly one instance per ServiceInstance (and one binding per
// ServiceBinding), because the OSB ids are the resources' uids.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO } from '../support/berth.ts';
import { startStack, instance, binding, waitFor, type Stack } from './support.ts';

const KILLS = Number(process.env.BERTH_CONTROLLER_KILLS ?? 20);
const RESOURCES = 12;
const POINTS = ['controller.provision-answered', 'controller.bind-answered', 'controller.operation-ended', 'timer'];

describe('controller: kill -9 between the broker\'s answer and the status write', () => {
  let stack: Stack;
  let ns: string;
  const children = new Set<import('node:child_process').ChildProcess>();
  before(async () => {
    stack = await startStack({ startController: false });
    ns = await stack.kube.createNamespace('ctl-kill');
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    if (ns) {
      // A clean controller lets the finalizers go, so the namespace can be deleted.
      if (!stack.controller) await stack.startController();
      await stack.kube.deleteNamespace(ns).catch(() => undefined);
    }
    await stack?.stop();
  });

  const run = (failpoint: string | undefined) => {
    const child = spawn(process.execPath, [join(REPO, 'src/cli.ts'), 'controller'], {
      // The same identity across restarts (a restarted Pod keeps its name): the Lease is taken back at once.
      env: { ...stack.controllerEnv(), BERTH_CONTROLLER_ID: `kill-test-${stack.shard}`, ...(failpoint ? { BERTH_FAILPOINTS: failpoint } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    children.add(child);
    const exited = once(child, 'exit').then(([code, signal]) => {
      children.delete(child);
      return { code, signal, out };
    });
    return { child, exited };
  };

  test(`${KILLS} kills, then every resource converges with exactly one broker instance and binding each`, async () => {
    const objects = [];
    for (let i = 0; i < RESOURCES; i++) {
      objects.push(instance(`k-${i}`, { offering: 'gated', plan: 'async' }));
      objects.push(binding(`k-${i}-app`, `k-${i}`));
    }
    await stack.apply(ns, ...objects);
    const seen = new Map<string, number>();
    for (let round = 0; round < KILLS; round++) {
      const point = POINTS[Math.floor(Math.random() * POINTS.length)]!;
      const { child, exited } = run(point === 'timer' ? undefined : point);
      // A failpoint kills the process itself; otherwise (or if it never gets there) SIGKILL at a random moment.
      const timeout = sleep(point === 'timer' ? 300 + Math.random() * 2500 : 8000).then(() => child.kill('SIGKILL'));
      const r = await exited;
      void timeout;
      assert.equal(r.signal, 'SIGKILL', `round ${round}: the controller ended by SIGKILL, not ${r.code}:\n${r.out.slice(-2000)}`);
      seen.set(point, (seen.get(point) ?? 0) + 1);
    }
    // A controller without failpoints finishes the work.
    const { child, exited } = run(undefined);
    try {
      for (let i = 0; i < RESOURCES; i++) {
        await waitFor(stack.kube, ns, `serviceinstance/k-${i}`, 'Ready', 120);
        await waitFor(stack.kube, ns, `servicebinding/k-${i}-app`, 'Ready', 120);
      }
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    const list = (await stack.custom.listNamespacedCustomObject({ group: 'services.berth.dev', version: 'v1alpha1', plural: 'serviceinstances', namespace: ns })) as { items: any[] };
    const uids = new Set(list.items.map((si) => si.metadata.uid as string));
    const knex = stack.berth.berth.stores.knex;
    const brokerInstances = await knex('instances').whereNot({ state: 'deleted' }).select('id');
    assert.deepEqual(new Set(brokerInstances.map((r: { id: string }) => r.id)), uids, 'exactly one broker instance per ServiceInstance, none other');
    const bindings = await knex('bindings').whereNot({ state: 'deleted' }).select('id');
    assert.equal(bindings.length, RESOURCES, 'exactly one broker binding per ServiceBinding');
    process.stderr.write(`[kill test] kill points: ${JSON.stringify(Object.fromEntries(seen))}\n`);
  });
});
