// How the controller treats a broker's failures, against a scripted OSB broker
// (a seam: the answers are chosen by the test) registered as a
// ClusterServiceBroker: a 500 on create triggers orphan mitigation (a DELETE of
// the same id) before the create is retried; a 422 on update is retried with
// backoff; an operation in progress is polled as Retry-After says until it ends.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { startStack, instance, waitFor, kubectl, until, SHARD_LABEL, type Stack } from './support.ts';

describe('controller: a foreign broker\'s failures', () => {
  let stack: Stack;
  let ns: string;
  let server: Server;
  let url = '';
  const calls: string[] = [];
  let puts = 0;
  let patches = 0;
  let polls = 0;
  const brokerName = () => `scripted-${stack.shard}`;

  before(async () => {
    stack = await startStack();
    ns = await stack.kube.createNamespace('ctl-foreign');
    server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0]!;
      calls.push(`${req.method} ${path}`);
      req.resume();
      const reply = (status: number, body: object, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
        res.end(JSON.stringify(body));
      };
      if (path === '/v2/catalog') {
        return reply(200, { services: [{ id: 'svc-s', name: 'scripted', description: 'Scripted.', bindable: true, plan_updateable: true, plans: [{ id: 'plan-s', name: 'p', description: 'p' }] }] });
      }
      if (path.endsWith('/last_operation')) {
        polls++;
        return polls < 3 ? reply(200, { state: 'in progress', description: `step ${polls}` }, { 'Retry-After': '1' }) : reply(200, { state: 'succeeded', description: 'done' });
      }
      if (req.method === 'PUT') {
        puts++;
        return puts === 1 ? reply(500, { error: 'Boom', description: 'the scripted broker fails its first create' }) : reply(202, { operation: 'op-1' });
      }
      if (req.method === 'PATCH') {
        patches++;
        return patches === 1 ? reply(422, { error: 'ConcurrencyError', description: 'busy' }) : reply(200, {});
      }
      if (req.method === 'DELETE') return reply(200, {});
      reply(404, {});
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const manifest = { apiVersion: 'services.berth.dev/v1alpha1', kind: 'ClusterServiceBroker', metadata: { name: brokerName(), labels: { [SHARD_LABEL]: stack.shard } }, spec: { url } };
    await kubectl(stack.kube, ['apply', '-f', '-'], JSON.stringify(manifest));
  });
  after(async () => {
    if (ns) await stack?.kube.deleteNamespace(ns).catch(() => undefined);
    await kubectl(stack.kube, ['delete', 'clusterservicebroker', brokerName(), '--ignore-not-found']).catch(() => undefined);
    server?.close();
    server?.closeAllConnections();
    await stack?.stop();
  });

  test('500 on create → orphan mitigation → retry → polled to Ready; 422 on update → retried', async () => {
    await kubectl(stack.kube, ['wait', '--for=condition=Ready', '--timeout=60s', `clusterservicebroker/${brokerName()}`]);
    await stack.apply(ns, instance('s', { offering: 'scripted', plan: 'p', brokerRef: { name: brokerName() } }));
    await waitFor(stack.kube, ns, 'serviceinstance/s', 'Ready', 120);
    const uid = (await stack.get('serviceinstances', ns, 's')).metadata.uid;
    const forInstance = calls.filter((c) => c.includes(uid) && !c.endsWith('/last_operation'));
    assert.deepEqual(forInstance.slice(0, 3), [`PUT /v2/service_instances/${uid}`, `DELETE /v2/service_instances/${uid}`, `PUT /v2/service_instances/${uid}`], calls.join('\n'));
    assert.ok(polls >= 3, 'polled until the operation ended');
    const events = JSON.parse(await kubectl(stack.kube, ['get', 'events', '-n', ns, '--field-selector', 'involvedObject.name=s', '-o', 'json'])).items;
    assert.ok(events.some((e: any) => e.reason === 'OrphanMitigation'), 'an OrphanMitigation Event');

    await kubectl(stack.kube, ['patch', '-n', ns, 'serviceinstance/s', '--type=merge', '-p', '{"spec":{"parameters":{"size":2}}}']);
    await until(async () => (patches >= 2 ? true : undefined), 'the update retried after 422', 30_000);
    await waitFor(stack.kube, ns, 'serviceinstance/s', 'Synced', 60);
    await kubectl(stack.kube, ['delete', '-n', ns, 'serviceinstance/s', '--timeout=60s']);
    assert.ok(calls.filter((c) => c === `DELETE /v2/service_instances/${uid}`).length >= 2, 'deprovisioned');
  });
});
