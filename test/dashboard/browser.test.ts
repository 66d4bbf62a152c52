// Instance dashboards in a real browser (Debian's chromium driven by playwright-core): a postgres instance
// on the machine's PostgreSQL with a real binding, its dashboard_url from the provision answer opened as a
// platform's user would; wrong, expired and other instances' tokens refused; a phone-sized viewport. The
// screenshots are kept under test-artifacts/dashboard/ (the path is printed).
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { DASHBOARD_KEY_PURPOSE, DashboardTokens } from '../../src/dashboard/token.ts';
import { SecretBox } from '../../src/secret-box.ts';
import { REPO, TEST_CREDENTIALS, TEST_KEYS, freePort, startTestBerth } from '../support/berth.ts';
import { OsbClient } from '../support/osb-client.ts';
import { DbBerth, PG, serverEnv } from '../database-provisioners/support.ts';

/** The browser's globals, for functions that run in the page (this project compiles without the DOM library). */
type InPage = { getComputedStyle(el: unknown): { borderTopLeftRadius: string; display: string } };

const CHROMIUM = process.env.BERTH_TEST_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(REPO, 'test-artifacts/dashboard');

/** The fixture's pg-small plan with a maintenance version, so that moving it shows "upgrade available". */
function catalogWith(version: string): string {
  const path = join(tmpdir(), `berth-dashboard-catalog-${version}-${process.pid}.yaml`);
  writeFileSync(
    path,
    `services:
  - id: ${PG.service}
    name: test-postgresql
    description: PostgreSQL databases for tests.
    bindable: true
    instances_retrievable: true
    bindings_retrievable: true
    plan_updateable: true
    metadata: { displayName: "Test PostgreSQL <dashboard>" }
    plans:
      - id: ${PG.small}
        name: pg-small
        description: Connection limit 5.
        maintenance_info: { version: ${version} }
        provisioner: { kind: postgres, server: local, connection_limit: 5 }
`,
  );
  return path;
}

let h: DbBerth;
let browser: Browser;
let port: number;
let base: string;

async function restartWith(catalogPath: string): Promise<void> {
  await h.test.stop();
  h.test = await startTestBerth({ databaseUrl: h.state.url, env: { ...serverEnv(), ...env(catalogPath) } });
}

const env = (catalogPath: string) => ({ PORT: String(port), BERTH_DASHBOARD_URL: `http://127.0.0.1:${port}/`, CATALOG_PATH: catalogPath });

before(async () => {
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
  h = await DbBerth.start(env(catalogWith('1.0.0')));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  mkdirSync(ARTIFACTS, { recursive: true });
});
after(async () => {
  await browser?.close();
  await h?.stop();
});

test('the dashboard of a real postgres instance, its binding and operations, refused without the right token, on a phone', async (t) => {
  // Provision and bind for real; dashboard_url comes with the 202 and with GET.
  const a = h.tracker.instance();
  const first = await h.client.provision(a, { service_id: PG.service, plan_id: PG.small, organization_guid: 'org', space_guid: 'space' });
  assert.equal(first.status, 202, first.text);
  const url: string = first.body.dashboard_url;
  assert.ok(url.startsWith(`${base}/dashboard/${a}?token=v1.`), url);
  assert.equal((await h.client.waitForInstance(a, first.body.operation, 60_000)).body.state, 'succeeded');
  const fetched = await h.client.request('GET', `/v2/service_instances/${a}`);
  assert.equal(fetched.status, 200, fetched.text);
  assert.equal(fetched.body.dashboard_url, url, 'the same link all day');
  const bound = await h.bound(a, PG.service, PG.small);
  const password = bound.credentials.password!;
  const b = await h.provisioned(PG.service, PG.small);

  // The plan moves on: the catalog's version is now 1.1.0, the instance's still 1.0.0 (and links survive a restart).
  await restartWith(catalogWith('1.1.0'));

  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  const response = await page.goto(url);
  assert.equal(response?.status(), 200);
  const headers = response!.headers();
  assert.match(headers['content-security-policy']!, /^default-src 'none'; style-src 'sha256-/);
  assert.equal(headers['referrer-policy'], 'no-referrer');
  const text = await page.locator('main').innerText();
  const html = await page.content();

  assert.match(await page.title(), /Test PostgreSQL <dashboard> · pg-small/);
  assert.match(await page.locator('#status').innerText(), /State\s+Ready/);
  assert.match(text, /Plan\s+pg-small/);
  assert.match(text, /Kind\s+postgres/);
  assert.match(await page.locator('#status').innerText(), /Version\s+1\.0\.0/);
  assert.match(await page.locator('#status').innerText(), /Upgrade available.*1\.1\.0/s);
  // Operations with descriptions and times: the provision and the bind, both succeeded.
  const operations = await page.locator('#operations tbody tr').allInnerTexts();
  assert.equal(operations.length, 2, operations.join('\n'));
  assert.match(operations[0]!, /bind[\s\S]*Succeeded[\s\S]*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
  assert.match(operations[1]!, /provision[\s\S]*Succeeded/);
  // The binding by id, with its credential entry names and no values.
  const bindings = await page.locator('#bindings').innerText();
  assert.match(bindings, new RegExp(bound.id));
  for (const name of ['database', 'host', 'jdbc-url', 'password', 'port', 'type', 'uri', 'username']) assert.match(bindings, new RegExp(`\\b${name}\\b`));
  assert.ok(!html.includes(password), 'the password is nowhere in the page');
  assert.ok(!html.includes(encodeURIComponent(password)), 'nor URL-encoded');
  assert.ok(!html.includes(bound.credentials.username!) || !html.includes(bound.credentials.uri!), 'no connection string');
  assert.match(await page.locator('#connect').innerText(), /psql "\$uri"/);
  // What runs: the postgres provisioner's look at the real server (the database and the binding's role).
  const resources = await page.locator('#resources').innerText();
  assert.match(resources, /Database/);
  // The page's style applies under the CSP (a blocked style would be a console error and an unstyled page).
  assert.deepEqual(consoleErrors, []);
  assert.equal(await page.locator('section').first().evaluate((el) => (globalThis as unknown as InPage).getComputedStyle(el).borderTopLeftRadius), '8px');
  const desktopShot = join(ARTIFACTS, 'dashboard-desktop.png');
  await page.screenshot({ path: desktopShot, fullPage: true });

  // A phone: nothing wider than the screen, the tables turned into stacked rows.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const phonePage = await phone.newPage();
  assert.equal((await phonePage.goto(url))?.status(), 200);
  const widths = (await phonePage.evaluate('({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth })')) as { scroll: number; inner: number };
  assert.ok(widths.scroll <= widths.inner, `no horizontal scrolling on a phone (${widths.scroll} > ${widths.inner})`);
  assert.equal(await phonePage.locator('#operations thead').evaluate((el) => (globalThis as unknown as InPage).getComputedStyle(el).display), 'none');
  const phoneShot = join(ARTIFACTS, 'dashboard-phone.png');
  await phonePage.screenshot({ path: phoneShot, fullPage: true });
  await phone.close();
  t.diagnostic(`screenshots: ${desktopShot} ${phoneShot}`);
  console.log(`dashboard screenshots: ${desktopShot} ${phoneShot}`);

  // Refusals: 403, a page without any of the instance's data.
  const refused = async (target: string) => {
    const r = await page.goto(target);
    const body = await page.content();
    assert.equal(r?.status(), 403, target);
    for (const leak of ['pg-small', 'Test PostgreSQL', bound.id, 'Operations', 'Bindings']) assert.ok(!body.includes(leak), `refusal page shows ${leak}`);
    return page.locator('main').innerText();
  };
  const token = new URL(url).searchParams.get('token')!;
  const [v, exp, mac] = token.split('.') as [string, string, string];
  assert.match(await refused(`${base}/dashboard/${a}?token=${v}.${exp}.${mac[0] === 'A' ? 'B' : 'A'}${mac.slice(1)}`), /not valid/);
  assert.match(await refused(`${base}/dashboard/${a}?token=${v}.${Number(exp) + 86_400}.${mac}`), /not valid/);
  assert.match(await refused(`${base}/dashboard/${a}`), /not valid/);
  const signer = new DashboardTokens(new SecretBox(TEST_KEYS).derivedKeys(DASHBOARD_KEY_PURPOSE), 86_400_000);
  assert.match(await refused(`${base}/dashboard/${a}?token=${signer.issueUntil(a, Math.floor(Date.now() / 1000) - 1)}`), /expired/);
  // A's token never opens B; B's own link does, and shows B, not A.
  assert.match(await refused(`${base}/dashboard/${b}?token=${token}`), /not valid/);
  const bUrl: string = (await h.client.request('GET', `/v2/service_instances/${b}`)).body.dashboard_url;
  assert.equal((await page.goto(bUrl))?.status(), 200);
  const bText = await page.locator('main').innerText();
  assert.match(bText, new RegExp(b));
  assert.ok(!bText.includes(a) && !bText.includes(bound.id), "B's page shows nothing of A");

  // A deleted instance: its valid link says so, with nothing else.
  assert.equal((await h.deprovision(b, PG.service, PG.small)).body.state, 'succeeded');
  const gone = await page.goto(bUrl);
  assert.equal(gone?.status(), 404);
  assert.match(await page.locator('main').innerText(), /does not exist/);
  await context.close();
});

test('without BERTH_DASHBOARD_URL: no dashboard_url, no /dashboard route', async () => {
  const plain = await startTestBerth({ databaseUrl: h.state.url, env: { ...serverEnv(), CATALOG_PATH: catalogWith('1.0.0') } });
  try {
    const id = h.tracker.instance();
    const first = await plain.client.provision(id, { service_id: PG.service, plan_id: PG.small, organization_guid: 'org', space_guid: 'space' });
    assert.equal(first.status, 202, first.text);
    assert.deepEqual(Object.keys(first.body), ['operation']);
    assert.equal((await plain.client.waitForInstance(id, first.body.operation, 60_000)).body.state, 'succeeded');
    const fetched = await plain.client.request('GET', `/v2/service_instances/${id}`);
    assert.equal(fetched.body.dashboard_url, undefined);
    const r = await fetch(`${plain.berth.url}/dashboard/${id}?token=v1.1.x`);
    assert.equal(r.status, 404);
  } finally {
    await plain.stop();
  }
});

test('dashboard_url where OSB defines it: provision (also a repeat), GET, update from 2.14 only', async () => {
  const id = await h.provisioned(PG.service, PG.small);
  const link: string = (await h.client.request('GET', `/v2/service_instances/${id}`)).body.dashboard_url;
  assert.ok(link.startsWith(`${base}/dashboard/${id}?token=`), link);
  const repeat = await h.client.provision(id, { service_id: PG.service, plan_id: PG.small, organization_guid: 'org', space_guid: 'space' });
  assert.equal(repeat.status, 200, repeat.text);
  // (and the instance metadata the postgres kind returns to 2.15+ callers)
  assert.deepEqual({ ...repeat.body, metadata: undefined }, { dashboard_url: link, metadata: undefined });
  assert.equal(repeat.body.metadata.labels['berth.dev/server'], 'local');
  const update = { service_id: PG.service, parameters: {} };
  const v14 = await new OsbClient(h.test.berth.url, TEST_CREDENTIALS, '2.14').update(id, update);
  assert.equal(v14.status, 200, v14.text);
  assert.deepEqual(v14.body, { dashboard_url: link });
  const v13 = await new OsbClient(h.test.berth.url, TEST_CREDENTIALS, '2.13').update(id, update);
  assert.equal(v13.status, 200, v13.text);
  assert.deepEqual(v13.body, {});
  // The pages opened in the first test are counted under their route, never their URL (the token is a credential).
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /berth_http_requests_total\{route="\/dashboard\/:instance_id",method="GET",status="200"\}/);
  assert.match(metrics, /route="\/dashboard\/:instance_id",method="GET",status="403"/);
  assert.doesNotMatch(metrics, /token|v1\.\d+\./);
});
