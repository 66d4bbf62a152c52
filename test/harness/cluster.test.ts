// The shared Kubernetes test control plane works the way Berth's suites need it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppsV1Api, CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { execa } from 'execa';
import { repoRoot } from '../support/kube/binaries.ts';
import { listeningAddresses, pidAlive } from '../support/kube/processes.ts';
import { isNotFound, sharedCluster, type SharedCluster } from '../support/kube/shared.ts';

const chartDir = path.join(repoRoot, 'test', 'fixtures', 'charts', 'tiny');

async function eventually<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
    }
    await sleep(250);
  }
}

function podReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

describe('Kubernetes test control plane', () => {
  let kube: SharedCluster;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  const namespaces: string[] = [];

  before(async () => {
    kube = await sharedCluster();
    core = kube.kubeConfig().makeApiClient(CoreV1Api);
    apps = kube.kubeConfig().makeApiClient(AppsV1Api);
  });

  after(async () => {
    // Best effort: the cluster is thrown away at the end of the run anyway.
    await Promise.all(namespaces.map((ns) => kube.deleteNamespace(ns, { wait: false }).catch(() => undefined)));
  });

  test('runs the versions it was built from, and kubectl/helm work against it', async () => {
    assert.match(kube.kubernetesVersion, /^v1\.(3[6-9]|[4-9]\d)\.\d+$/);
    const server = kube.kubernetesVersion.split('.').map(Number);
    const kubectl = await execa(kube.kubectlBin, ['version', '-o', 'json', '--kubeconfig', kube.kubeconfigPath]);
    const v = JSON.parse(kubectl.stdout) as { clientVersion: { minor: string }; serverVersion: { gitVersion: string } };
    assert.equal(v.serverVersion.gitVersion, kube.kubernetesVersion);
    assert.ok(Math.abs(Number(v.clientVersion.minor) - (server[1] ?? 0)) <= 1, 'kubectl within one minor of the server');
    const nodes = await execa(kube.kubectlBin, ['get', 'nodes', '-o', 'name', '--kubeconfig', kube.kubeconfigPath]);
    assert.match(nodes.stdout, new RegExp(`node/${kube.nodeName}`));
    const helm = await execa(kube.helmBin, ['version', '--short'], { env: kube.helmEnv() });
    assert.match(helm.stdout, /^v4\./, 'Berth targets Helm 4');
  });

  test('namespaces can be created and deleted, and deletion completes', async () => {
    const name = await kube.createNamespace('ns-lifecycle');
    const ns = await core.readNamespace({ name });
    assert.equal(ns.status?.phase, 'Active');
    // Something inside, so the namespace controller has work to do on deletion.
    await core.createNamespacedConfigMap({ namespace: name, body: { metadata: { name: 'cm' }, data: { a: 'b' } } });
    await core.deleteNamespace({ name });
    const terminating = await core.readNamespace({ name }).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
    if (terminating) assert.equal(terminating.status?.phase, 'Terminating');
    await eventually(`namespace ${name} to be gone`, async () => {
      try {
        await core.readNamespace({ name });
        return false;
      } catch (err) {
        if (isNotFound(err)) return true;
        throw err;
      }
    });
  });

  test("a Deployment's Pods become Ready on the kwok node", async () => {
    const namespace = await kube.createNamespace('deploy');
    namespaces.push(namespace);
    const labels = { app: 'web' };
    await apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 3,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: { containers: [{ name: 'web', image: 'registry.invalid/web:1', ports: [{ containerPort: 80 }] }] },
          },
        },
      },
    });
    const dep = await eventually('Deployment web to have 3 ready replicas', async () => {
      const d = await apps.readNamespacedDeployment({ name: 'web', namespace });
      return d.status?.readyReplicas === 3 && d.status.availableReplicas === 3 ? d : undefined;
    });
    assert.equal(dep.status?.updatedReplicas, 3);
    const pods = await core.listNamespacedPod({ namespace, labelSelector: 'app=web' });
    assert.equal(pods.items.length, 3);
    for (const pod of pods.items) {
      assert.equal(pod.spec?.nodeName, kube.nodeName, 'scheduled onto the kwok node by kube-scheduler');
      assert.equal(pod.status?.phase, 'Running');
      assert.ok(podReady(pod), `pod ${pod.metadata?.name} Ready`);
      assert.ok(pod.status?.podIP, 'kwok assigned a pod IP');
    }
  });

  test('a Secret written with @kubernetes/client-node reads back byte-identical', async () => {
    const namespace = await kube.createNamespace('secret');
    namespaces.push(namespace);
    const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const random = randomBytes(4096);
    const text = Buffer.from('pässwörd ✓ \n\t"quoted" \u0000 end', 'utf8');
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: 'creds' },
        type: 'Opaque',
        data: {
          'all-bytes': allBytes.toString('base64'),
          random: random.toString('base64'),
          'text.txt': text.toString('base64'),
          empty: '',
        },
      },
    });
    const back = await core.readNamespacedSecret({ name: 'creds', namespace });
    const data = back.data ?? {};
    assert.deepEqual(Buffer.from(data['all-bytes'] ?? 'x', 'base64'), allBytes);
    assert.deepEqual(Buffer.from(data.random ?? 'x', 'base64'), random);
    assert.deepEqual(Buffer.from(data['text.txt'] ?? 'x', 'base64'), text);
    assert.equal(Buffer.from(data.empty ?? 'x', 'base64').length, 0);
    assert.deepEqual(Object.keys(data).sort(), ['all-bytes', 'empty', 'random', 'text.txt']);
  });

  test('helm install --wait of a small chart completes, and helm uninstall removes it', async () => {
    const namespace = await kube.createNamespace('helm');
    namespaces.push(namespace);
    const env = kube.helmEnv();
    const release = 'tiny1';
    const install = await execa(
      kube.helmBin,
      ['install', release, chartDir, '--namespace', namespace, '--wait', '--timeout', '3m', '--set', 'password=s3cr3t', '-o', 'json'],
      { env, reject: false },
    );
    assert.equal(install.exitCode, 0, `helm install failed:\n${install.stderr}\n${install.stdout}`);
    const rel = JSON.parse(install.stdout) as { info: { status: string } };
    assert.equal(rel.info.status, 'deployed');

    // --wait returned, so the Deployment must already be available.
    const dep = await apps.readNamespacedDeployment({ name: `${release}-tiny`, namespace });
    assert.equal(dep.status?.readyReplicas, 2);
    await core.readNamespacedService({ name: `${release}-tiny`, namespace });
    const secret = await core.readNamespacedSecret({ name: `${release}-tiny`, namespace });
    assert.equal(Buffer.from(secret.data?.password ?? '', 'base64').toString(), 's3cr3t');

    const list = await execa(kube.helmBin, ['list', '--namespace', namespace, '-o', 'json'], { env });
    assert.deepEqual((JSON.parse(list.stdout) as Array<{ name: string }>).map((r) => r.name), [release]);

    const uninstall = await execa(kube.helmBin, ['uninstall', release, '--namespace', namespace, '--wait', '--timeout', '2m'], {
      env,
      reject: false,
    });
    assert.equal(uninstall.exitCode, 0, `helm uninstall failed:\n${uninstall.stderr}`);
    const after = await execa(kube.helmBin, ['list', '--namespace', namespace, '-o', 'json'], { env });
    assert.deepEqual(JSON.parse(after.stdout), []);
    const status = await execa(kube.helmBin, ['status', release, '--namespace', namespace], { env, reject: false });
    assert.notEqual(status.exitCode, 0);
    assert.match(status.stderr, /not found/);
    for (const read of [
      () => apps.readNamespacedDeployment({ name: `${release}-tiny`, namespace }),
      () => core.readNamespacedService({ name: `${release}-tiny`, namespace }),
      () => core.readNamespacedSecret({ name: `${release}-tiny`, namespace }),
    ]) {
      await assert.rejects(read(), (err: unknown) => isNotFound(err));
    }
    // Helm's release record (a Secret of type helm.sh/release.v1) is gone too.
    const releaseSecrets = await core.listNamespacedSecret({ namespace, labelSelector: `owner=helm,name=${release}` });
    assert.equal(releaseSecrets.items.length, 0);
    // And the Pods go away with the ReplicaSet.
    await eventually('the chart Pods to be deleted', async () => {
      const pods = await core.listNamespacedPod({ namespace });
      return pods.items.length === 0;
    });
  });

  test('a token bound by RBAC to one namespace is refused (403) in another', async () => {
    const own = await kube.createNamespace('rbac-own');
    const other = await kube.createNamespace('rbac-other');
    namespaces.push(own, other);
    const access = await kube.serviceAccountWithAccess({ namespace: own, serviceAccount: 'berth', clusterRole: 'edit' });
    assert.equal(access.username, `system:serviceaccount:${own}:berth`);
    const asSa = kube.kubeConfigForToken(access.token).makeApiClient(CoreV1Api);

    // Allowed where it is bound (RBAC informers may need a moment).
    await eventually('the RoleBinding to take effect', async () => {
      await asSa.createNamespacedSecret({ namespace: own, body: { metadata: { name: 'mine' }, stringData: { k: 'v' } } });
      return true;
    }, 30_000);
    const mine = await asSa.readNamespacedSecret({ namespace: own, name: 'mine' });
    assert.equal(Buffer.from(mine.data?.k ?? '', 'base64').toString(), 'v');

    // Refused elsewhere, and at cluster scope.
    await assert.rejects(
      asSa.createNamespacedSecret({ namespace: other, body: { metadata: { name: 'theirs' }, stringData: { k: 'v' } } }),
      (err: unknown) => (err as { code?: number }).code === 403,
    );
    await assert.rejects(asSa.listNamespacedSecret({ namespace: other }), (err: unknown) => (err as { code?: number }).code === 403);
    await assert.rejects(asSa.listNamespace(), (err: unknown) => (err as { code?: number }).code === 403);

    // The same through a kubeconfig, as a child process (how berth's helm calls run).
    const denied = await execa(kube.kubectlBin, ['get', 'secrets', '-n', other, '--kubeconfig', access.kubeconfigPath], { reject: false });
    assert.notEqual(denied.exitCode, 0);
    assert.match(denied.stderr, /forbidden/i);
    const allowed = await execa(kube.kubectlBin, ['get', 'secret', 'mine', '-o', 'name', '--kubeconfig', access.kubeconfigPath]);
    assert.equal(allowed.stdout.trim(), 'secret/mine');
  });

  test('every process of the control plane listens on 127.0.0.1 only', () => {
    assert.equal(kube.processes.length, 5);
    const seen: string[] = [];
    for (const p of kube.processes) {
      assert.ok(pidAlive(p.pid), `${p.name} (pid ${p.pid}) is running`);
      const addrs = listeningAddresses(p.pid);
      seen.push(...addrs.map((a) => `${p.name}=${a}`));
      for (const a of addrs) assert.match(a, /^127\.0\.0\.1:\d+$/, `${p.name} listens on ${a}`);
    }
    // The API server, etcd (client + peer), both controllers and kwok do listen somewhere.
    for (const name of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok']) {
      assert.ok(seen.some((s) => s.startsWith(`${name}=`)), `${name} has a listening socket (${seen.join(' ')})`);
    }
  });
});
