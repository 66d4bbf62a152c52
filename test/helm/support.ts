// Berth against the shared test control plane with exactly the rights that
// deploy/rbac.yaml and deploy/admission-policy.yaml ship, never as cluster
// admin: both files are applied as they are, and Berth uses a token of the
// ServiceAccount they name.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { execa } from 'execa';
import { sharedCluster, type SharedCluster } from '../support/kube/shared.ts';
import { REPO } from '../support/berth.ts';
import { MANAGED_BY_SELECTOR } from '../../src/kubernetes/names.ts';

export const HELM_CATALOG = join(REPO, 'test/fixtures/catalog-helm.yaml');
export const DEPLOY_FILES = [join(REPO, 'deploy/rbac.yaml'), join(REPO, 'deploy/admission-policy.yaml')];
/** The identity both files name. */
export const BERTH_SA = { namespace: 'berth-system', name: 'berth' };

async function kubectl(kube: SharedCluster, args: string[]): Promise<string> {
  return (await execa(kube.kubectlBin, [...args, '--kubeconfig', kube.kubeconfigPath])).stdout;
}

let applied: Promise<string> | undefined;

/**
 * Applies deploy/rbac.yaml and deploy/admission-policy.yaml as admin, waits
 * until the API server enforces the policies, and returns a kubeconfig for
 * Berth's ServiceAccount.
 */
export function brokerKubeconfig(kube: SharedCluster): Promise<string> {
  applied ??= (async () => {
    // Test files run in parallel processes: server-side apply, retried on a create race.
    const apply = async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          await kubectl(kube, ['create', 'namespace', BERTH_SA.namespace]).catch(() => undefined);
          await kubectl(kube, ['apply', '--server-side', '--force-conflicts', '--field-manager=berth-tests', ...DEPLOY_FILES.flatMap((f) => ['-f', f])]);
          return;
        } catch (err) {
          if (attempt >= 5) throw err;
          await sleep(500 * attempt);
        }
      }
    };
    await apply();
    const token = await kube.mintToken({ namespace: BERTH_SA.namespace, serviceAccount: BERTH_SA.name });
    const path = kube.kubeconfigForToken(token, { name: 'berth', namespace: BERTH_SA.namespace });
    await policiesEnforced(kube, path);
    return path;
  })();
  return applied;
}

/** Policies reach the API server through an informer: wait until a write they forbid is refused (dry run, changes nothing). */
async function policiesEnforced(_kube: SharedCluster, kubeconfigPath: string): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const probes = [
    () => core.createNamespace({ dryRun: 'All', body: { metadata: { name: 'berth-policy-probe' } } }),
    () => core.createNamespacedSecret({ namespace: 'default', dryRun: 'All', body: { metadata: { name: 'berth-policy-probe' } } }),
  ];
  const until = Date.now() + 60_000;
  for (const probe of probes) {
    for (;;) {
      try {
        await probe();
      } catch (err) {
        const e = err as { code?: number; body?: unknown };
        if (e.code === 403 && /ValidatingAdmissionPolicy/.test(String(e.body))) break;
        if (e.code !== 403) throw err;
      }
      if (Date.now() > until) throw new Error('deploy/admission-policy.yaml is not enforced 60 s after it was applied');
      await sleep(200);
    }
  }
}

/** What an operator does for a plan's fixed namespace: create it and label it as Berth's. */
export async function handToBerth(kube: SharedCluster, namespace: string): Promise<void> {
  await kubectl(kube, ['create', 'namespace', namespace]).catch(() => undefined);
  await kubectl(kube, ['label', 'namespace', namespace, MANAGED_BY_SELECTOR, '--overwrite']);
}

export async function helmAdmin(kube: SharedCluster, args: string[]): Promise<string> {
  const r = await execa(kube.helmBin, args, { env: kube.helmEnv() });
  return r.stdout;
}

export { sharedCluster, RbacAuthorizationV1Api };
