// Issue 16 point 23: a start without a cluster does not load
// @kubernetes/client-node (≈0.7 s and ≈80 MB); it is imported when a cluster
// is first used. Each Berth runs as a child with a preloaded hook that records
// every module it resolves.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO, spawnBerth, type BerthProcess } from '../support/berth.ts';
import { startKubeApiStandIn, type KubeApiStandIn } from '../support/kube-api-stand-in.ts';

const UPS = { service_id: '4f6e6cf6-ffdd-425f-a2c7-3c9258ad2468', plan_id: '86064792-7ea2-467b-af93-ac9694d96d52' };
const HELM = { service_id: '3a3f3f0e-9c0e-4a53-8f1f-64d1b0f0a6c3', plan_id: '9d7c1b63-1f8e-4a0e-b1e5-5f3c8a2d4e71' };
const ORG = { organization_guid: 'org', space_guid: 'space' };
const K8S = { platform: 'kubernetes', namespace: 'apps', clusterid: 'c-1' };
const KUBERNETES_CLIENT = /\/node_modules\/@kubernetes\/client-node\//;

/** Starts embedded Berth on the sample catalog with the module-recording hook; `modules()` lists what it resolved so far. */
async function spawnRecorded(dir: string, env: Record<string, string>): Promise<{ berth: BerthProcess; modules: () => string[] }> {
  const log = join(dir, 'modules.log');
  const berth = await spawnBerth({
    BERTH_DATA_DIR: join(dir, 'data'),
    BERTH_TEST_MODULE_LOG: log,
    NODE_OPTIONS: `--import=${pathToFileURL(join(REPO, 'test/support/module-log.ts')).href}`,
    ...env,
  });
  return { berth, modules: () => readFileSync(log, 'utf8').split('\n').filter(Boolean) };
}

async function stop(berth: BerthProcess | undefined): Promise<void> {
  if (!berth || berth.child.exitCode !== null || berth.child.signalCode !== null) return;
  berth.child.kill('SIGTERM');
  await berth.exited;
}

describe('embedded Berth without a cluster', () => {
  let dir: string;
  let run: Awaited<ReturnType<typeof spawnRecorded>> | undefined;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-lazy-'));
    run = await spawnRecorded(dir, { BERTH_KUBERNETES_SECRETS: 'true' });
  });
  after(async () => {
    await stop(run?.berth);
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts, binds from a Kubernetes context and refuses a helm plan without loading @kubernetes/client-node', async () => {
    const { client } = run!.berth;
    const modules = run!.modules();
    assert.ok(modules.some((m) => m.includes('/src/main.ts')), 'the hook recorded the start');
    assert.deepEqual(modules.filter((m) => KUBERNETES_CLIENT.test(m)), [], 'loaded at start');

    const p = await client.provision('lazy-ups', { ...UPS, ...ORG, context: K8S, parameters: { credentials: { url: 'https://x' } } }, false);
    assert.equal(p.status, 201, p.text);
    const b = await client.bind('lazy-ups', 'lazy-b', { ...UPS, context: K8S, bind_resource: { app_guid: 'app' } }, false);
    assert.equal(b.status, 201, b.text);

    const h = await client.provision('lazy-helm', { ...HELM, ...ORG });
    assert.equal(h.status, 202, h.text);
    const done = await client.waitForInstance('lazy-helm', h.body?.operation);
    assert.equal(done.body?.state, 'failed', done.text);
    assert.match(done.body?.description, /no Kubernetes cluster configured: set KUBECONFIG/);

    assert.deepEqual(run!.modules().filter((m) => KUBERNETES_CLIENT.test(m)), [], 'loaded by a bind or a helm plan without a cluster');
  });
});

describe('embedded Berth with a cluster', () => {
  let dir: string;
  let api: KubeApiStandIn;
  let run: Awaited<ReturnType<typeof spawnRecorded>> | undefined;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-lazy-'));
    api = await startKubeApiStandIn(join(dir, 'kubeconfig'));
    run = await spawnRecorded(dir, { BERTH_KUBERNETES_SECRETS: 'true', KUBECONFIG: api.kubeconfigPath });
  });
  after(async () => {
    await stop(run?.berth);
    await api?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads @kubernetes/client-node at the first bind that writes a binding Secret, not at start', async () => {
    const { client } = run!.berth;
    assert.deepEqual(run!.modules().filter((m) => KUBERNETES_CLIENT.test(m)), [], 'loaded at start');

    const p = await client.provision('lazy-ups', { ...UPS, ...ORG, context: K8S, parameters: { credentials: { url: 'https://x' } } }, false);
    assert.equal(p.status, 201, p.text);
    // The stand-in answers 404 to the Secret write, as for a namespace that does not exist.
    const b = await client.bind('lazy-ups', 'lazy-b', { ...UPS, context: K8S, bind_resource: { app_guid: 'app' } }, false);
    assert.notEqual(b.status, 201, b.text);
    assert.match(b.body?.description, /Namespace "apps" from the bind request's context does not exist/);
    assert.ok(api.requests.some((r) => r.startsWith('POST /api/v1/namespaces/apps/secrets')), api.requests.join('\n'));
    assert.ok(run!.modules().some((m) => KUBERNETES_CLIENT.test(m)), 'the client library was loaded for the bind');
  });
});
