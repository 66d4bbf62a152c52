// Issue 10 acceptance 1, the Helm plan: a ServiceInstance of a Helm-installed
// PostgreSQL (on the test cluster's kwok node: the pods run simulated, so the
// credentials are checked for shape, not logged in with) and a ServiceBinding
// reach Ready through kubectl wait; deleting them uninstalls the release.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, instance, binding, waitFor, kubectl, type Stack } from './support.ts';
import { releaseName } from '../../src/provisioners/helm/helm-provisioner.ts';

describe('controller: a Helm plan', () => {
  let stack: Stack;
  let ns: string;
  before(async () => {
    stack = await startStack();
    ns = await stack.kube.createNamespace('ctl-helm');
  });
  after(async () => {
    if (ns) await stack?.kube.deleteNamespace(ns).catch(() => undefined);
    await stack?.stop();
  });

  test('apply → Ready (asynchronous install) → Secret → delete → release uninstalled', async () => {
    await stack.apply(ns, instance('pg', { offering: 'postgresql-dedicated', plan: 'small' }), binding('pg-app', 'pg'));
    await waitFor(stack.kube, ns, 'serviceinstance/pg', 'Ready', 300);
    const si = await stack.get('serviceinstances', ns, 'pg');
    assert.equal(si.status.lastOperation.type, 'create');
    assert.equal(si.status.lastOperation.state, 'succeeded');
    await waitFor(stack.kube, ns, 'servicebinding/pg-app', 'Ready', 120);
    const secret = await stack.core.readNamespacedSecret({ namespace: ns, name: 'pg-app' });
    assert.equal(secret.type, 'servicebinding.io/postgresql');
    for (const key of ['host', 'port', 'username', 'password', 'database', 'uri']) assert.ok(secret.data?.[key], `entry ${key}`);
    const release = releaseName(si.metadata.uid);
    const releases = async () => (await kubectl(stack.kube, ['get', 'secrets', '-A', '-l', `owner=helm,name=${release}`, '-o', 'name'])).trim();
    assert.notEqual(await releases(), '', 'the release is installed');

    await kubectl(stack.kube, ['delete', '-n', ns, 'servicebinding/pg-app', '--timeout=60s']);
    await kubectl(stack.kube, ['delete', '-n', ns, 'serviceinstance/pg', '--timeout=300s']);
    assert.equal((await stack.berth.client.lastOperation(si.metadata.uid)).status, 410, 'deprovisioned at the broker');
    assert.equal(await releases(), '', 'the release is uninstalled');
  });
});
