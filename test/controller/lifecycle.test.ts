// Issue 10 acceptance 1 and 8 (and the CRDs' shape): kubectl apply a
// ServiceInstance and a ServiceBinding → kubectl wait Ready → the Secret in the
// app namespace, servicebinding.io format, owned by the binding; the Postgres
// credentials log in; deleting the binding removes the Secret and the login;
// deleting the instance deprovisions it at the broker. The broker writes no
// second Secret for the controller's binds, and still writes one for Service
// Catalog-style binds.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startStack, instance, binding, waitFor, kubectl, until, conditionOf, type Stack } from './support.ts';
import { bindingSecretName } from '../../src/kubernetes/binding-secrets.ts';

describe('controller: instance and binding lifecycle on the real API server', () => {
  let stack: Stack;
  let ns: string;
  before(async () => {
    stack = await startStack();
    ns = await stack.kube.createNamespace('ctl-life');
  });
  after(async () => {
    if (ns) await stack?.kube.deleteNamespace(ns).catch(() => undefined);
    await stack?.stop();
  });

  test('the CRDs: kubectl get columns by condition type, short names, categories, explain descriptions, binding label', async () => {
    const kube = stack.kube;
    const explain = await kubectl(kube, ['explain', 'serviceinstances.spec.offering']);
    assert.match(explain, /catalog/, explain);
    const explainStatus = await kubectl(kube, ['explain', 'serviceinstances.status.conditions.observedGeneration']);
    assert.match(explainStatus, /generation/i);
    const crd = JSON.parse(await kubectl(kube, ['get', 'crd', 'servicebindings.services.berth.dev', '-o', 'json']));
    assert.equal(crd.metadata.labels['servicebinding.io/provisioned-service'], 'true');
    const resources = await kubectl(kube, ['api-resources', '--api-group=services.berth.dev', '-o', 'wide']);
    for (const short of ['bsi', 'bsb', 'bso', 'bsp']) assert.match(resources, new RegExp(`\\b${short}\\b`), resources);
    assert.match(resources, /berth,services/);
    // kubectl get serviceplans stands in for svcat marketplace once the controller published the catalog.
    const plans = await until(async () => {
      const out = await kubectl(kube, ['get', 'serviceplans']);
      return /berth\.postgresql\.small/.test(out) ? out : undefined;
    }, 'the local catalog published as ServicePlans');
    assert.match(plans.split('\n')[0]!, /^NAME\s+BROKER\s+OFFERING\s+PLAN\s+FREE\s+DESCRIPTION/);
    const schema = JSON.parse(await kubectl(kube, ['get', 'serviceplan', 'berth.user-provided.standard', '-o', 'json']));
    assert.deepEqual(schema.spec.schemas.service_instance.create.parameters.required, ['credentials']);
  });

  test('user-provided: apply → Ready → Secret with the entries → delete → gone at the broker', async () => {
    await stack.apply(ns, instance('creds', { offering: 'user-provided', plan: 'standard', parameters: { credentials: { uri: 'smtp://mail:25', password: 'hunter2' } } }));
    await waitFor(stack.kube, ns, 'serviceinstance/creds');
    const table = await kubectl(stack.kube, ['get', 'serviceinstances', '-n', ns]);
    assert.match(table.split('\n')[0]!, /^NAME\s+OFFERING\s+PLAN\s+READY\s+REASON\s+AGE$/, table);
    assert.match(table.split('\n')[1]!, /^creds\s+user-provided\s+standard\s+True\s+Available\s+/);
    const si = await stack.get('serviceinstances', ns, 'creds');
    assert.equal(si.status.instanceID, si.metadata.uid, 'the OSB instance id is metadata.uid');
    for (const type of ['Ready', 'Synced', 'Progressing']) assert.equal(conditionOf(si, type).observedGeneration, si.metadata.generation, type);

    await stack.apply(ns, binding('creds-app', 'creds'));
    await waitFor(stack.kube, ns, 'servicebinding/creds-app');
    const b = await stack.get('servicebindings', ns, 'creds-app');
    assert.equal(b.status.binding.name, 'creds-app', 'status.binding.name for servicebinding.io runtimes');
    const secret = await stack.core.readNamespacedSecret({ namespace: ns, name: 'creds-app' });
    assert.equal(secret.type, 'servicebinding.io/user-provided');
    const data = Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
    assert.deepEqual(data, { type: 'user-provided', provider: 'berth', uri: 'smtp://mail:25', password: 'hunter2' });
    assert.deepEqual(secret.metadata!.ownerReferences!.map((o) => [o.kind, o.uid, o.controller]), [['ServiceBinding', b.metadata.uid, true]]);
    // The broker wrote no second copy (acceptance 8 / the double-writer rule).
    assert.equal((await stack.core.listNamespacedSecret({ namespace: ns, labelSelector: 'app.kubernetes.io/managed-by=berth' })).items.length, 0);

    // Someone deletes the Secret: it comes back.
    await stack.core.deleteNamespacedSecret({ namespace: ns, name: 'creds-app' });
    await until(async () => ((await stack.core.readNamespacedSecret({ namespace: ns, name: 'creds-app' })).data?.uri ? true : undefined), 'the deleted Secret recreated');

    await kubectl(stack.kube, ['delete', '-n', ns, 'servicebinding/creds-app', '--wait=true', '--timeout=60s']);
    await assert.rejects(stack.core.readNamespacedSecret({ namespace: ns, name: 'creds-app' }), (e: any) => e.code === 404);
    assert.equal((await stack.berth.client.fetchBinding(si.metadata.uid, b.metadata.uid)).status, 404, 'unbound at the broker');
    await kubectl(stack.kube, ['delete', '-n', ns, 'serviceinstance/creds', '--wait=true', '--timeout=60s']);
    assert.equal((await stack.berth.client.lastOperation(si.metadata.uid)).status, 410, 'deprovisioned at the broker');
  });

  test('postgresql: the Secret\'s credentials log in; unbind refuses them; delete deprovisions the database', async () => {
    await stack.apply(ns, instance('orders', { offering: 'postgresql', plan: 'small' }), binding('orders-app', 'orders', { secretName: 'orders-db' }));
    await waitFor(stack.kube, ns, 'serviceinstance/orders');
    await waitFor(stack.kube, ns, 'servicebinding/orders-app');
    const secret = await stack.core.readNamespacedSecret({ namespace: ns, name: 'orders-db' });
    assert.equal(secret.type, 'servicebinding.io/postgresql');
    const data = Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
    for (const key of ['type', 'provider', 'host', 'port', 'username', 'password', 'uri']) assert.ok(data[key], `entry ${key}`);
    const login = async () => {
      const c = new pg.Client({ connectionString: data.uri });
      await c.connect();
      try {
        return (await c.query('select session_user as u')).rows[0].u as string;
      } finally {
        await c.end();
      }
    };
    assert.equal(await login(), data.username);
    const si = await stack.get('serviceinstances', ns, 'orders');
    // What the provisioner made, recorded for `berth trace` once the bind ended: the database, the owner role, and the
    // binding's login role (under the binding's id, the ServiceBinding's uid), which really logged in.
    const bindingUid = (await stack.get('servicebindings', ns, 'orders-app')).metadata.uid;
    const recorded = await until(async () => {
      const p = (await stack.get('serviceinstances', ns, 'orders')).status.provisionedResources;
      return p?.bindingIDs?.includes(bindingUid) ? p : undefined;
    }, 'the binding in status.provisionedResources');
    assert.equal(recorded.kind, 'postgres');
    assert.equal(recorded.exposed, true);
    assert.ok(!Number.isNaN(Date.parse(recorded.takenAt)));
    const [database] = recorded.resources;
    assert.equal(database.kind, 'Database');
    assert.equal(database.state, 'ready');
    assert.equal(database.name, data.database);
    const role = database.children.find((c: { bindingID?: string }) => c.bindingID === bindingUid);
    assert.deepEqual([role.kind, role.name, role.state], ['Role', data.username, 'ready']);
    assert.match(role.message, /logged in with the binding's credentials just now/);
    assert.ok(!JSON.stringify(recorded).includes(data.password!), 'never a password in the status');
    await kubectl(stack.kube, ['delete', '-n', ns, 'servicebinding/orders-app', '--wait=true', '--timeout=60s']);
    await assert.rejects(stack.core.readNamespacedSecret({ namespace: ns, name: 'orders-db' }), (e: any) => e.code === 404);
    await assert.rejects(login(), /password authentication failed|does not exist/);
    await kubectl(stack.kube, ['delete', '-n', ns, 'serviceinstance/orders', '--wait=true', '--timeout=60s']);
    assert.equal((await stack.berth.client.lastOperation(si.metadata.uid)).status, 410, 'deprovisioned at the broker');
  });

  test('Service Catalog-style binds (platform kubernetes, no controller flag) still get the broker\'s Secret', async () => {
    const c = stack.berth.client;
    const ids = { service_id: 'svc-ctl-ups', plan_id: 'plan-ctl-ups' };
    const p = await c.provision('sc-style', { ...ids, organization_guid: 'cluster', space_guid: ns, context: { platform: 'kubernetes', namespace: ns, clusterid: 'c' }, parameters: { credentials: { k: 'v' } } });
    assert.ok([201, 202].includes(p.status), p.text);
    await c.waitForInstance('sc-style', p.body?.operation);
    const b = await c.bind('sc-style', 'sc-b', { ...ids, context: { platform: 'kubernetes', namespace: ns, clusterid: 'c' } });
    assert.ok([201, 202].includes(b.status), b.text);
    await c.waitForBinding('sc-style', 'sc-b', b.body?.operation);
    const written = await stack.core.readNamespacedSecret({ namespace: ns, name: bindingSecretName('sc-style', 'sc-b') });
    assert.equal(written.metadata?.labels?.['app.kubernetes.io/managed-by'], 'berth');
    const u = await c.unbind('sc-style', 'sc-b', ids.service_id, ids.plan_id);
    await c.waitForBinding('sc-style', 'sc-b', u.body?.operation).catch(() => undefined);
    const d = await c.deprovision('sc-style', ids.service_id, ids.plan_id);
    await c.waitForInstance('sc-style', d.body?.operation).catch(() => undefined);
  });
});
