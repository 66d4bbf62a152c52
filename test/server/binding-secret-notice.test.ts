// Issue 16 point 20: without a cluster, "the binding Secret is not written" is
// said once at start, not for every bind (Service Catalog always sends a
// Kubernetes context).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startLoggedBerth, type LoggedBerth } from './support.ts';

const UPS = { service_id: '4f6e6cf6-ffdd-425f-a2c7-3c9258ad2468', plan_id: '86064792-7ea2-467b-af93-ac9694d96d52' };
const K8S = { platform: 'kubernetes', namespace: 'apps', clusterid: 'c-1' };

describe('binding Secret notice without a cluster', () => {
  let t: LoggedBerth;
  before(async () => {
    t = await startLoggedBerth({ KUBECONFIG: '' });
  });
  after(async () => {
    await t?.stop();
  });

  it('is logged once at start, not per bind or unbind', async () => {
    const p = await t.client.provision('notice-1', { ...UPS, organization_guid: 'org', space_guid: 'space', context: K8S, parameters: { credentials: { url: 'https://x' } } }, false);
    assert.equal(p.status, 201, p.text);
    for (const b of ['b-1', 'b-2', 'b-3']) {
      const r = await t.client.bind('notice-1', b, { ...UPS, context: K8S, bind_resource: { app_guid: 'app' } }, false);
      assert.equal(r.status, 201, r.text);
      const u = await t.client.unbind('notice-1', b, UPS.service_id, UPS.plan_id, false);
      assert.equal(u.status, 200, u.text);
    }
    const notices = t.lines.filter((l) => /binding Secret/.test(String(l.msg)));
    assert.equal(notices.length, 1, JSON.stringify(notices));
    assert.match(notices[0]!.msg, /no Kubernetes cluster is configured \(KUBECONFIG\)/);
  });
});
