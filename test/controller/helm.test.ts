// Issue 10 acceptance 1, the Helm plan: a ServiceInstance of a Helm-installed
// PostgreSQL (on the test cluster's kwok node: the pods run simulated, so the
// credentials are checked for shape, not logged in with) and a ServiceBinding
// reach Ready through kubectl wait; deleting them uninstalls the release.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, instance, binding, waitFor, kubectl, until, type Stack } from './support.ts';
import { PATH, runBerth } from '../cli/support.ts';
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

    // berth trace (Kubernetes mode, the developer's kubeconfig): the release and its workloads from the controller's
    // record, the StatefulSet read live again; the binding's Secret under the binding.
    const home = mkdtempSync(join(tmpdir(), 'berth-trace-'));
    try {
      const traced = await until(async () => {
        const r = await runBerth(['trace', 'pg', '-n', ns], { PATH, HOME: home, KUBECONFIG: stack.kube.kubeconfigPath });
        return r.code === 0 && r.stdout.includes('HelmRelease/') ? r : undefined;
      }, "the release in the controller's record");
      assert.match(traced.stdout, /├─ ServiceBinding\/pg-app  Ready=True[^\n]*\n(│  [^\n]*\n)*│  └─ Secret\/pg-app: written\n/, traced.stdout);
      assert.match(traced.stdout, new RegExp(`└─ provisioned by helm \\(recorded by the controller at [^)]+\\)\\n   └─ HelmRelease/berth-\\w+/${release}: ready\\n      │  helm status deployed, revision 1; chart postgresql-`), traced.stdout);
      assert.match(traced.stdout, new RegExp(`└─ StatefulSet/${release}: ready\\n[ │]+read live now: 1/1 ready, 1 updated`), traced.stdout);
      assert.match(traced.stdout, new RegExp(`└─ Pod/${release}-0: ready\\n[ │]+Ready; phase Running; on node `), traced.stdout);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
    const recorded = (await stack.get('serviceinstances', ns, 'pg')).status.provisionedResources;
    assert.equal(recorded.kind, 'helm');
    assert.equal(recorded.exposed, true);
    assert.equal(recorded.resources[0].kind, 'HelmRelease');
    assert.equal(recorded.resources[0].children[0].kind, 'StatefulSet');

    const releases = async () => (await kubectl(stack.kube, ['get', 'secrets', '-A', '-l', `owner=helm,name=${release}`, '-o', 'name'])).trim();
    assert.notEqual(await releases(), '', 'the release is installed');

    await kubectl(stack.kube, ['delete', '-n', ns, 'servicebinding/pg-app', '--timeout=60s']);
    await kubectl(stack.kube, ['delete', '-n', ns, 'serviceinstance/pg', '--timeout=300s']);
    assert.equal((await stack.berth.client.lastOperation(si.metadata.uid)).status, 410, 'deprovisioned at the broker');
    assert.equal(await releases(), '', 'the release is uninstalled');
  });
});
