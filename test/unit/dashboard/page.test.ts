// The dashboard's HTML (dashboard/page.ts): every value escaped, the CSP allows exactly the page's own style.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { DASHBOARD_HEADERS, dashboardPage, escapeHtml, refusalPage } from '../../../src/dashboard/page.ts';
import { maintenanceOf, type DashboardView } from '../../../src/dashboard/view.ts';

const EVIL = `<script>alert("x")</script>'&`;

function view(over: Partial<DashboardView> = {}): DashboardView {
  return {
    instanceId: `id-${EVIL}`,
    state: 'ready',
    serviceName: `svc ${EVIL}`,
    planName: `plan ${EVIL}`,
    planDescription: `desc ${EVIL}`,
    kind: 'helm',
    maintenance: { instance: '1.0.0', catalog: '1.1.0', upgradeAvailable: true },
    operations: [{ kind: 'provision', bindingId: undefined, state: 'failed', description: `failed: ${EVIL}`, startedAt: new Date(0), finishedAt: new Date(1000) }],
    bindings: [{ id: `b-${EVIL}`, state: 'ready', appGuid: EVIL, entryNames: [`k${EVIL}`], expiresAt: undefined }],
    connect: { type: 'redis', entryNames: ['host', 'password', 'port', 'uri'] },
    resources: {
      items: [{ kind: 'HelmRelease', name: `ns/${EVIL}`, state: 'ready', children: [{ kind: 'Deployment', name: 'web', state: 'not-ready', message: `0/1 ready ${EVIL}` }] }],
      problem: undefined,
      takenAt: new Date(0).toISOString(),
    },
    ...over,
  };
}

test('every value from records, catalog and provisioner is escaped', () => {
  const html = dashboardPage(view(), { expiresAt: new Date(86_400_000), freshLink: `https://b.example/dashboard/x?token=${EVIL}` });
  assert.doesNotMatch(html, /<script/);
  assert.doesNotMatch(html, /alert\("x"\)/);
  assert.match(html, /&#60;script&#62;alert\(&#34;x&#34;\)&#60;\/script&#62;&#39;&#38;/);
  // The workloads and their readiness, the upgrade, the connect example for the kind.
  assert.match(html, /Deployment<\/strong> <code>web<\/code>/);
  assert.match(html, /Not ready/);
  assert.match(html, /Upgrade available/);
  assert.match(html, /redis-cli -u &#34;\$uri&#34;/);
  assert.match(html, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
});

test('the CSP allows the page its own style and nothing else', () => {
  const html = refusalPage('t', 'm');
  const css = /<style>([\s\S]*)<\/style>/.exec(html)![1]!;
  const hash = createHash('sha256').update(css).digest('base64');
  assert.equal(DASHBOARD_HEADERS['Content-Security-Policy'], `default-src 'none'; style-src 'sha256-${hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`);
  assert.equal(escapeHtml(`a"b'c<d>&`), 'a&#34;b&#39;c&#60;d&#62;&#38;');
});

test('upgrade available: the plan in the catalog has another version than the instance', () => {
  assert.deepEqual(maintenanceOf({ maintenanceVersion: '1.0.0', planSnapshot: undefined }, '1.1.0'), { instance: '1.0.0', catalog: '1.1.0', upgradeAvailable: true });
  assert.deepEqual(maintenanceOf({ maintenanceVersion: '1.1.0', planSnapshot: undefined }, '1.1.0'), { instance: '1.1.0', catalog: '1.1.0', upgradeAvailable: false });
  assert.deepEqual(maintenanceOf({ maintenanceVersion: undefined, planSnapshot: undefined }, undefined), { instance: undefined, catalog: undefined, upgradeAvailable: false });
  const recorded = { maintenanceVersion: undefined, planSnapshot: { maintenanceVersion: '2' } as never };
  assert.equal(maintenanceOf(recorded, '3').upgradeAvailable, true);
});
