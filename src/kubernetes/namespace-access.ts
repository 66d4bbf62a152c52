// Berth's rights inside a release namespace. deploy/rbac.yaml gives Berth no
// cluster-wide right to list Secrets or to write workloads; what Helm needs in
// a namespace (list its release records, apply the chart, watch it go away)
// comes from the ClusterRole `berth-instance`, which Berth binds to itself
// with a RoleBinding in each namespace it uses. deploy/admission-policy.yaml
// lets it create that RoleBinding only in namespaces labelled
// app.kubernetes.io/managed-by=berth, only for itself and only for that role.
import type { RbacV1Subject } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { PermanentError } from '../osb/errors.ts';
import type { KubernetesAccess } from './client.ts';
import { kubernetesFailure, statusOf } from './errors.ts';
import { INSTANCE_ROLE, MANAGED_BY, MANAGED_BY_SELECTOR as managedBy } from './names.ts';

/** How long a new RoleBinding may take to reach the API server's authorizer before the step is retried. */
const PROPAGATION_MS = 15_000;

const usernames = new WeakMap<KubernetesAccess, Promise<string>>();

/** The user name Berth's credentials authenticate as (SelfSubjectReview, allowed to every authenticated user). */
export function whoAmI(kube: KubernetesAccess): Promise<string> {
  let name = usernames.get(kube);
  if (!name) {
    name = kube
      .api((k8s) => k8s.AuthenticationV1Api)
      .then((api) => api.createSelfSubjectReview({ body: {} }))
      .then((r) => {
        const username = r.status?.userInfo?.username;
        if (!username) throw new Error('the Kubernetes API did not say which user Berth is (SelfSubjectReview)');
        return username;
      });
    name.catch(() => usernames.delete(kube));
    usernames.set(kube, name);
  }
  return name;
}

/** RBAC matches a User subject by user name, which for a ServiceAccount is system:serviceaccount:<ns>:<name>. */
function subjectFor(username: string): RbacV1Subject {
  return { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: username };
}

/** Whether Berth may list Secrets in `namespace` (what Helm does first, to find its release records). */
async function mayManageReleases(kube: KubernetesAccess, namespace: string): Promise<boolean> {
  const api = await kube.api((k8s) => k8s.AuthorizationV1Api);
  const review = await api.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { namespace, verb: 'list', resource: 'secrets' } } } });
  return review.status?.allowed === true;
}

/**
 * Makes sure Berth may install and uninstall releases in `namespace`: if it
 * may not yet, it binds `berth-instance` to itself there and waits until the
 * authorizer sees it. `owned` says whether Berth created the namespace (for
 * the description when it may not).
 */
export async function ensureReleaseAccess(kube: KubernetesAccess, namespace: string, owned: boolean, signal: AbortSignal): Promise<void> {
  try {
    if (await mayManageReleases(kube, namespace)) return;
    const username = await whoAmI(kube);
    const rbac = await kube.api((k8s) => k8s.RbacAuthorizationV1Api);
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: INSTANCE_ROLE, labels: { ...MANAGED_BY } },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: INSTANCE_ROLE },
        subjects: [subjectFor(username)],
      },
    });
  } catch (err) {
    if (statusOf(err) === 404) throw new PermanentError(`Namespace "${namespace}" does not exist; create it (labelled ${managedBy}) or change the plan's namespace.`);
    if (statusOf(err) !== 409) {
      throw kubernetesFailure(err, `grant itself the ClusterRole ${INSTANCE_ROLE} in namespace "${namespace}"`, {
        403: owned
          ? `apply deploy/rbac.yaml and deploy/admission-policy.yaml as shipped`
          : `label the namespace ${managedBy} to hand it to Berth (kubectl label namespace ${namespace} ${managedBy}), and apply deploy/rbac.yaml as shipped`,
      });
    }
  }
  // RBAC reaches the authorizer through an informer: usually within milliseconds, give it a little while.
  const until = Date.now() + PROPAGATION_MS;
  for (let pause = 50; ; pause = Math.min(1000, pause * 2)) {
    try {
      if (await mayManageReleases(kube, namespace)) return;
    } catch (err) {
      throw kubernetesFailure(err, `check its access to namespace "${namespace}"`);
    }
    if (Date.now() > until) {
      throw new Error(`Berth's RoleBinding ${INSTANCE_ROLE} in namespace "${namespace}" does not give it access yet; retrying.`);
    }
    await sleep(pause, undefined, { signal });
  }
}
