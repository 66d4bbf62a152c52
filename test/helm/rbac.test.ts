// What Berth's ServiceAccount must not do, with exactly deploy/rbac.yaml and
// deploy/admission-policy.yaml applied to the real kube-apiserver: each attempt
// is refused by RBAC (403 Forbidden) or by the admission policy (403, "denied
// request"). Destructive attempts are dry runs, so a broken policy fails the
// test without wrecking the shared cluster. That Berth can still do its work
// with these rights is proven by helm-e2e.test.ts and helm-crash.test.ts,
// which run Berth with the same kubeconfig.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AppsV1Api, AuthorizationV1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { sharedCluster, type SharedCluster } from '../support/kube/shared.ts';
import { BERTH_SA, brokerKubeconfig, handToBerth } from './support.ts';
import { INSTANCE_ROLE, MANAGED_BY } from '../../src/kubernetes/names.ts';

type Refusal = 'rbac' | 'policy';

/** Asserts that `attempt` is refused, and by whom. */
async function refused(by: Refusal, what: string, attempt: () => Promise<unknown>, message?: RegExp): Promise<void> {
  let err: { code?: number; body?: unknown } | undefined;
  try {
    await attempt();
  } catch (e) {
    err = e as { code?: number; body?: unknown };
  }
  assert.ok(err, `${what}: was allowed`);
  const body = String(err.body ?? '');
  assert.equal(err.code, 403, `${what}: ${err.code} ${body}`);
  if (by === 'policy') assert.match(body, /ValidatingAdmissionPolicy '[^']+' with binding '[^']+' denied request/, what);
  else assert.doesNotMatch(body, /ValidatingAdmissionPolicy/, what);
  if (message) assert.match(body, message, what);
}

describe("Berth's ServiceAccount with deploy/rbac.yaml and deploy/admission-policy.yaml", () => {
  let kube: SharedCluster;
  let berth: KubeConfig;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let rbac: RbacAuthorizationV1Api;
  let foreign: string;
  let own: string;
  const fixed = 'berth-rbac-fixed';

  before(async () => {
    kube = await sharedCluster();
    berth = new KubeConfig();
    berth.loadFromFile(await brokerKubeconfig(kube));
    core = berth.makeApiClient(CoreV1Api);
    apps = berth.makeApiClient(AppsV1Api);
    rbac = berth.makeApiClient(RbacAuthorizationV1Api);
    const admin = kube.kubeConfig().makeApiClient(CoreV1Api);
    foreign = await kube.createNamespace('foreign');
    await admin.createNamespacedSecret({ namespace: foreign, body: { metadata: { name: 'theirs' }, stringData: { token: 'do not touch' } } });
    await handToBerth(kube, fixed);
    // A namespace Berth creates for an instance, labelled as the policy requires.
    own = `berth-rbac-${Date.now().toString(36)}`;
    await core.createNamespace({ body: { metadata: { name: own, labels: { ...MANAGED_BY, 'berth.dev/instance': 'rbac-test' } } } });
  });

  after(async () => {
    await Promise.all([foreign, own, fixed].filter(Boolean).map((ns) => kube.deleteNamespace(ns, { wait: false }).catch(() => undefined)));
  });

  test('Secrets: never listed or watched, cluster-wide or in a namespace that is not its own', async () => {
    await refused('rbac', 'list Secrets cluster-wide', () => core.listSecretForAllNamespaces());
    await refused('rbac', 'watch Secrets cluster-wide', () => core.listSecretForAllNamespaces({ watch: true, timeoutSeconds: 1 }));
    await refused('rbac', 'list Secrets in a foreign namespace', () => core.listNamespacedSecret({ namespace: foreign }));
    await refused('rbac', 'list Secrets in kube-system', () => core.listNamespacedSecret({ namespace: 'kube-system' }));
  });

  test('a Secret it did not make is never changed, deleted or made in a foreign namespace', async () => {
    const theirs = await kube.kubeConfig().makeApiClient(CoreV1Api).readNamespacedSecret({ name: 'theirs', namespace: foreign });
    await refused('policy', 'update a foreign Secret', () =>
      core.replaceNamespacedSecret({ name: 'theirs', namespace: foreign, dryRun: 'All', body: { ...theirs, stringData: { token: 'mine now' } } }),
    );
    await refused('policy', 'delete a foreign Secret', () => core.deleteNamespacedSecret({ name: 'theirs', namespace: foreign, dryRun: 'All' }));
    await refused('policy', 'create an unlabelled Secret in a foreign namespace', () =>
      core.createNamespacedSecret({ namespace: foreign, dryRun: 'All', body: { metadata: { name: 'planted' }, stringData: { a: 'b' } } }),
    );
    // Turning a foreign Secret into "its own" by adding Berth's labels is a change to a foreign Secret too.
    await refused('policy', 'relabel a foreign Secret as a binding Secret', () =>
      core.replaceNamespacedSecret({
        name: 'theirs',
        namespace: foreign,
        dryRun: 'All',
        body: { ...theirs, metadata: { ...theirs.metadata, labels: { ...MANAGED_BY, 'berth.dev/binding': 'x' }, annotations: { 'berth.dev/binding-id': 'b', 'berth.dev/instance-id': 'i' } } },
      }),
    );
  });

  test('workloads, Services and RoleBindings only in its own namespaces', async () => {
    const deployment = {
      metadata: { name: 'intruder' },
      spec: { selector: { matchLabels: { app: 'x' } }, template: { metadata: { labels: { app: 'x' } }, spec: { containers: [{ name: 'x', image: 'x' }] } } },
    };
    await refused('rbac', 'create a Deployment in a foreign namespace', () => apps.createNamespacedDeployment({ namespace: foreign, dryRun: 'All', body: deployment }));
    await refused('rbac', 'create a Deployment in kube-system', () => apps.createNamespacedDeployment({ namespace: 'kube-system', dryRun: 'All', body: deployment }));
    await refused('rbac', 'create a StatefulSet in a foreign namespace', () =>
      apps.createNamespacedStatefulSet({ namespace: foreign, dryRun: 'All', body: { ...deployment, spec: { ...deployment.spec, serviceName: 'x' } } }),
    );
    await refused('rbac', 'create a Service in a foreign namespace', () =>
      core.createNamespacedService({ namespace: foreign, dryRun: 'All', body: { metadata: { name: 'x' }, spec: { ports: [{ port: 80 }] } } }),
    );
    // The one cluster-wide RBAC right that could open a namespace to it: binding berth-instance to itself.
    const selfBinding = {
      metadata: { name: INSTANCE_ROLE },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: INSTANCE_ROLE },
      subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: `system:serviceaccount:${BERTH_SA.namespace}:${BERTH_SA.name}` }],
    };
    await refused('policy', 'grant itself berth-instance in a foreign namespace', () =>
      rbac.createNamespacedRoleBinding({ namespace: foreign, dryRun: 'All', body: selfBinding }),
    );
    await refused('policy', 'grant itself berth-instance in kube-system', () =>
      rbac.createNamespacedRoleBinding({ namespace: 'kube-system', dryRun: 'All', body: selfBinding }),
    );
    await refused('policy', 'grant berth-instance to someone else in its own namespace', () =>
      rbac.createNamespacedRoleBinding({
        namespace: own,
        dryRun: 'All',
        body: { ...selfBinding, subjects: [{ kind: 'ServiceAccount', namespace: 'default', name: 'default' }] },
      }),
    );
    await refused('rbac', 'bind another ClusterRole (admin) in its own namespace', () =>
      rbac.createNamespacedRoleBinding({ namespace: own, dryRun: 'All', body: { ...selfBinding, metadata: { name: 'x' }, roleRef: { ...selfBinding.roleRef, name: 'admin' } } }),
    );
    await refused('rbac', 'create a ClusterRoleBinding', () =>
      rbac.createClusterRoleBinding({ dryRun: 'All', body: { ...selfBinding, roleRef: { ...selfBinding.roleRef, name: 'cluster-admin' } } }),
    );
  });

  test('namespaces: deletes only the ones it created, creates only ones labelled as its own, changes none', async () => {
    await refused('policy', 'delete a foreign namespace', () => core.deleteNamespace({ name: foreign, dryRun: 'All' }), /may delete only namespaces labelled/);
    await refused('policy', 'delete a fixed namespace an operator handed to it', () => core.deleteNamespace({ name: fixed, dryRun: 'All' }));
    await refused('policy', 'create a namespace without its labels', () =>
      core.createNamespace({ dryRun: 'All', body: { metadata: { name: 'unlabelled-by-berth' } } }),
    );
    await refused('rbac', 'label a foreign namespace as its own', () =>
      core.replaceNamespace({ name: foreign, dryRun: 'All', body: { metadata: { name: foreign, labels: { ...MANAGED_BY, 'berth.dev/instance': 'x' } } } }),
    );
  });

  test('what it needs stays allowed: its own namespace, binding Secrets by name, its access where it is due', async () => {
    // The positive side of each refusal above (the full helm lifecycle is in helm-e2e.test.ts).
    await core.deleteNamespace({ name: own, dryRun: 'All' });
    const bindingSecret = {
      metadata: {
        name: 'berth-binding-rbac-test',
        labels: { ...MANAGED_BY, 'berth.dev/instance': 'i', 'berth.dev/binding': 'b' },
        annotations: { 'berth.dev/instance-id': 'i', 'berth.dev/binding-id': 'b' },
      },
      stringData: { password: 'x' },
    };
    // A binding Secret in an app namespace: created, brought up to date, deleted, but never handed to another binding.
    const created = await core.createNamespacedSecret({ namespace: foreign, body: bindingSecret });
    await core.replaceNamespacedSecret({ name: bindingSecret.metadata.name, namespace: foreign, dryRun: 'All', body: { ...created, stringData: { password: 'y' } } });
    await refused('policy', 'move a binding Secret to another binding', () =>
      core.replaceNamespacedSecret({
        name: bindingSecret.metadata.name,
        namespace: foreign,
        dryRun: 'All',
        body: { ...created, metadata: { ...created.metadata, annotations: { ...created.metadata!.annotations, 'berth.dev/binding-id': 'other' } } },
      }),
    );
    await core.deleteNamespacedSecret({ name: bindingSecret.metadata.name, namespace: foreign });
    await rbac.createNamespacedRoleBinding({
      namespace: fixed,
      dryRun: 'All',
      body: {
        metadata: { name: INSTANCE_ROLE },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: INSTANCE_ROLE },
        subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: `system:serviceaccount:${BERTH_SA.namespace}:${BERTH_SA.name}` }],
      },
    });
    // Reads by name cannot be limited by admission: a Secret whose name it knows stays readable (README).
    const review = await berth.makeApiClient(AuthorizationV1Api).createSelfSubjectAccessReview({
      body: { spec: { resourceAttributes: { namespace: foreign, verb: 'get', resource: 'secrets', name: 'theirs' } } },
    });
    assert.equal(review.status?.allowed, true, 'documented: Secrets are read by name anywhere');
  });
});
