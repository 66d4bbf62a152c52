// Berth against the shared test control plane, as the least-privileged
// ServiceAccount that deploy/rbac.yaml describes, never as cluster admin.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { RbacAuthorizationV1Api, type V1PolicyRule } from '@kubernetes/client-node';
import { execa } from 'execa';
import { sharedCluster, type SharedCluster } from '../support/kube/shared.ts';
import { REPO } from '../support/berth.ts';

export const HELM_CATALOG = join(REPO, 'test/fixtures/catalog-helm.yaml');

/** The rules of the ClusterRole in deploy/rbac.yaml. */
export function deployedRules(): V1PolicyRule[] {
  for (const doc of parseAllDocuments(readFileSync(join(REPO, 'deploy/rbac.yaml'), 'utf8'))) {
    const o = doc.toJS() as { kind?: string; rules?: V1PolicyRule[] };
    if (o?.kind === 'ClusterRole') return o.rules!;
  }
  throw new Error('deploy/rbac.yaml has no ClusterRole');
}

export async function brokerKubeconfig(kube: SharedCluster): Promise<string> {
  const access = await kube.serviceAccountWithAccess({
    namespace: 'berth-system',
    serviceAccount: 'berth',
    rules: deployedRules(),
    scope: 'cluster',
  });
  return access.kubeconfigPath;
}

export async function helmAdmin(kube: SharedCluster, args: string[]): Promise<string> {
  const r = await execa(kube.helmBin, args, { env: kube.helmEnv() });
  return r.stdout;
}

export { sharedCluster, RbacAuthorizationV1Api };
