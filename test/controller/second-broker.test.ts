// Issue 10 acceptance 7: a second broker (another Berth with its own catalog)
// registered as a ClusterServiceBroker: its offerings and plans appear as
// ServiceOfferings/ServicePlans, and an instance of it reaches Ready and binds.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { REPO, TEST_CREDENTIALS, startTestBerth, type TestBerth } from '../support/berth.ts';
import { startStack, instance, binding, waitFor, kubectl, until, CONTROLLER_NAMESPACE, SHARD_LABEL, type Stack } from './support.ts';

describe('controller: a second broker as a ClusterServiceBroker', () => {
  let stack: Stack;
  let second: TestBerth;
  let ns: string;
  let brokerName: string;
  before(async () => {
    stack = await startStack();
    second = await startTestBerth({ catalogPath: join(REPO, 'catalog.yaml') });
    ns = await stack.kube.createNamespace('ctl-csb');
    brokerName = `second-${stack.shard}`;
  });
  after(async () => {
    if (ns) await stack?.kube.deleteNamespace(ns).catch(() => undefined);
    await kubectl(stack.kube, ['delete', 'clusterservicebroker', brokerName, '--ignore-not-found']).catch(() => undefined);
    await kubectl(stack.kube, ['delete', 'secret', '-n', CONTROLLER_NAMESPACE, `${brokerName}-auth`, '--ignore-not-found']).catch(() => undefined);
    await second?.stop();
    await stack?.stop();
  });

  test('its catalog appears, an instance of it reaches Ready and binds', async () => {
    await stack.core.createNamespacedSecret({
      namespace: CONTROLLER_NAMESPACE,
      body: { metadata: { name: `${brokerName}-auth` }, stringData: { username: TEST_CREDENTIALS.username, password: TEST_CREDENTIALS.password } },
    });
    const manifest = {
      apiVersion: 'services.berth.dev/v1alpha1',
      kind: 'ClusterServiceBroker',
      metadata: { name: brokerName, labels: { [SHARD_LABEL]: stack.shard } },
      spec: { url: second.berth.url, authSecretRef: { name: `${brokerName}-auth` } },
    };
    await kubectl(stack.kube, ['apply', '-f', '-'], JSON.stringify(manifest));
    await kubectl(stack.kube, ['wait', '--for=condition=Ready', '--timeout=60s', `clusterservicebroker/${brokerName}`]);
    const offerings = await until(async () => {
      const out = await kubectl(stack.kube, ['get', 'serviceofferings', '-l', `services.berth.dev/broker=${brokerName}`, '-o', 'name']);
      return out.includes(`${brokerName}.user-provided`) ? out : undefined;
    }, 'the second broker\'s offerings');
    assert.match(offerings, new RegExp(`${brokerName}\\.postgresql`));
    const plans = await kubectl(stack.kube, ['get', 'serviceplans', '-l', `services.berth.dev/broker=${brokerName}`]);
    assert.match(plans, /user-provided\s+standard/);

    await stack.apply(
      ns,
      instance('remote', { offering: 'user-provided', plan: 'standard', brokerRef: { name: brokerName }, parameters: { credentials: { from: 'second' } } }),
      binding('remote-app', 'remote'),
    );
    await waitFor(stack.kube, ns, 'serviceinstance/remote');
    await waitFor(stack.kube, ns, 'servicebinding/remote-app');
    const si = await stack.get('serviceinstances', ns, 'remote');
    assert.equal(si.status.brokerName, brokerName);
    assert.equal((await second.client.lastOperation(si.metadata.uid)).status, 200, 'the instance lives at the second broker');
    assert.equal((await stack.berth.client.lastOperation(si.metadata.uid)).status, 404, 'and not at the local one');
    const secret = await stack.core.readNamespacedSecret({ namespace: ns, name: 'remote-app' });
    assert.equal(Buffer.from(secret.data!.from!, 'base64').toString(), 'second');

    await kubectl(stack.kube, ['delete', '-n', ns, 'servicebinding/remote-app', 'serviceinstance/remote', '--timeout=60s']);
    assert.equal((await second.client.lastOperation(si.metadata.uid)).status, 410, 'deprovisioned at the second broker');
    await kubectl(stack.kube, ['delete', 'clusterservicebroker', brokerName]);
    await until(async () => ((await kubectl(stack.kube, ['get', 'serviceofferings', '-l', `services.berth.dev/broker=${brokerName}`, '-o', 'name'])).trim() === '' ? true : undefined), 'its offerings removed with it');
  });
});
