// Issue 11 point 4, the cluster half: a bearer token that is no static token
// is checked with a TokenReview against the real kube-apiserver of the test
// cluster, as Berth's own ServiceAccount that may create tokenreviews and
// nothing else. Tokens are minted with the TokenRequest API, as the kubelet
// mints a Pod's projected token.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { sharedCluster, type SharedCluster } from '../support/kube/shared.ts';
import { startLoggedBerth, type LoggedBerth } from '../server/support.ts';

async function eventually(what: string, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await probe())) {
    if (Date.now() > deadline) assert.fail(`not within 60 s: ${what}`);
    await delay(200);
  }
}

describe('bearer tokens checked by TokenReview on the real API server', () => {
  let kube: SharedCluster;
  let ns: string;
  let groupNs: string;
  let berthKubeconfig: string;
  const started: LoggedBerth[] = [];
  const bearer = (token: string) => `Bearer ${token}`;

  before(async () => {
    kube = await sharedCluster();
    ns = await kube.createNamespace('tokenreview');
    groupNs = await kube.createNamespace('tokenreview-group');
    // Berth's identity: may create tokenreviews, nothing else.
    const access = await kube.serviceAccountWithAccess({
      namespace: ns,
      serviceAccount: 'berth',
      scope: 'cluster',
      rules: [{ apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] }],
    });
    berthKubeconfig = access.kubeconfigPath;
  });
  after(async () => {
    for (const t of started) await t.stop();
    const rbac = kube.kubeConfig().makeApiClient(RbacAuthorizationV1Api);
    await rbac.deleteClusterRoleBinding({ name: `${ns}-berth-access` }).catch(() => {});
    await rbac.deleteClusterRole({ name: `${ns}-berth-access` }).catch(() => {});
    await kube.deleteNamespace(ns);
    await kube.deleteNamespace(groupNs);
  });

  const start = async (env: Record<string, string | undefined>) => {
    const t = await startLoggedBerth({
      KUBECONFIG: berthKubeconfig,
      BERTH_KUBERNETES_SECRETS: 'false',
      // No password: the ServiceAccount tokens are the only credential.
      BROKER_USERNAME: undefined,
      BROKER_PASSWORD: undefined,
      BERTH_TOKENREVIEW: 'true',
      ...env,
    });
    started.push(t);
    return t;
  };
  const request = (t: LoggedBerth, path: string, token: string) => t.client.request('GET', path, { headers: { Authorization: bearer(token) } });
  const reviews = (t: LoggedBerth) => t.lines.filter((l) => /^bearer token reviewed/.test(l.msg));

  it('an allowed ServiceAccount (by name or by group) is served; another one, and a garbage token get 401', async () => {
    const t = await start({
      BERTH_TOKENREVIEW_ALLOWED: `system:serviceaccount:${ns}:platform, group:system:serviceaccounts:${groupNs}`,
      BERTH_TOKENREVIEW_CACHE_SECONDS: '300',
    });
    const platform = await kube.mintToken({ namespace: ns, serviceAccount: 'platform' });
    const grouped = await kube.mintToken({ namespace: groupNs, serviceAccount: 'anyone' });
    const intruder = await kube.mintToken({ namespace: ns, serviceAccount: 'intruder' });

    for (const [path, ok] of [['/v2/catalog', 200], ['/v2/service_instances/none/last_operation', 404], ['/v2/service_instances/none', 404]] as const) {
      assert.equal((await request(t, path, platform)).status, ok, `${path}: platform`);
      assert.equal((await request(t, path, grouped)).status, ok, `${path}: a ServiceAccount of the allowed group`);
      const refused = await request(t, path, intruder);
      assert.equal(refused.status, 401, `${path}: intruder ${refused.text}`);
      assert.equal(refused.body.error, 'Unauthorized');
      assert.match(refused.body.description, new RegExp(`valid for system:serviceaccount:${ns}:intruder, but that identity is not allowed`));
      assert.ok(!refused.text.includes(intruder));
    }
    const garbage = await request(t, '/v2/catalog', 'not.a.token');
    assert.equal(garbage.status, 401);
    assert.match(garbage.body.description, /bearer token sent is not accepted/);

    // Cached: 3 tokens over 3 routes each, plus the garbage one: one review per token.
    assert.equal(reviews(t).length, 3, JSON.stringify(reviews(t)));
    assert.deepEqual(reviews(t).map((l) => l.identity).sort(), [`system:serviceaccount:${groupNs}:anyone`, `system:serviceaccount:${ns}:intruder`, `system:serviceaccount:${ns}:platform`].sort());
    const logged = JSON.stringify(t.lines);
    for (const token of [platform, grouped, intruder]) assert.ok(!logged.includes(token.slice(-40)), 'no token in the log');
  });

  it('with BERTH_TOKENREVIEW_AUDIENCE, a token minted for another audience is refused', async () => {
    const t = await start({ BERTH_TOKENREVIEW_ALLOWED: `system:serviceaccount:${ns}:aud-platform`, BERTH_TOKENREVIEW_AUDIENCE: 'berth.example' });
    const forBerth = await kube.mintToken({ namespace: ns, serviceAccount: 'aud-platform', audiences: ['berth.example'] });
    const forApiServer = await kube.mintToken({ namespace: ns, serviceAccount: 'aud-platform' });
    assert.equal((await request(t, '/v2/catalog', forBerth)).status, 200);
    assert.equal((await request(t, '/v2/catalog', forApiServer)).status, 401);
  });

  it('the cache does not keep a revoked token valid: deleting the ServiceAccount refuses its token within the cache time', async () => {
    const t = await start({ BERTH_TOKENREVIEW_ALLOWED: `system:serviceaccount:${ns}:short-lived`, BERTH_TOKENREVIEW_CACHE_SECONDS: '1' });
    const token = await kube.mintToken({ namespace: ns, serviceAccount: 'short-lived' });
    assert.equal((await request(t, '/v2/catalog', token)).status, 200);
    await kube.kubeConfig().makeApiClient(CoreV1Api).deleteNamespacedServiceAccount({ name: 'short-lived', namespace: ns });
    await eventually('the revoked token is refused', async () => (await request(t, '/v2/catalog', token)).status === 401);
    assert.ok(reviews(t).length >= 1);
  });
});
