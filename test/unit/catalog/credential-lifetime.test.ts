// `credential_lifetime` in a plan's provisioner block (issue 15 §2): checked once,
// when the catalog is loaded, with messages that say what to write instead; kept
// through plan snapshots (what operations run with); turned into the bind's
// expires_at / renew_before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import pino from 'pino';
import { CatalogError, parseCatalog } from '../../../src/catalog/catalog.ts';
import { PlanSnapshots, snapshotOf } from '../../../src/catalog/plan-snapshot.ts';
import { loadConfig } from '../../../src/config.ts';
import { ProvisionerRegistry } from '../../../src/provisioners/provisioner.ts';
import { builtInProvisioners } from '../../../src/provisioners/index.ts';
import { expiryMetadata } from '../../../src/provisioners/sql/frame.ts';
import { KubernetesAccess } from '../../../src/kubernetes/client.ts';
import { REPO, TEST_CREDENTIALS, TEST_KEYS } from '../../support/berth.ts';

function registry(): ProvisionerRegistry {
  const config = loadConfig({
    CATALOG_PATH: join(REPO, 'catalog.yaml'),
    BROKER_USERNAME: TEST_CREDENTIALS.username,
    BROKER_PASSWORD: TEST_CREDENTIALS.password,
    BERTH_ENCRYPTION_KEYS: TEST_KEYS,
    PATH: process.env.PATH,
    HOME: process.env.HOME,
  });
  return new ProvisionerRegistry(builtInProvisioners(config, pino({ level: 'silent' }), new KubernetesAccess(config)));
}

function catalogWith(kind: string, setting: string): string {
  return `services:
  - id: svc
    name: svc
    description: d
    bindable: true
    plans:
      - id: plan
        name: plan
        description: d
        binding_rotatable: true
        provisioner:
          kind: ${kind}
          server: main
          ${setting}
`;
}

function problemsOf(yaml: string): string[] {
  try {
    parseCatalog(yaml, 'catalog.yaml', registry().parseConfig);
    return [];
  } catch (err) {
    assert.ok(err instanceof CatalogError, String(err));
    return err.problems;
  }
}

for (const kind of ['postgres', 'mysql']) {
  test(`${kind}: credential_lifetime is a number of seconds, kept in the plan and in its snapshot`, () => {
    const reg = registry();
    const plan = parseCatalog(catalogWith(kind, 'credential_lifetime: 3600'), 'catalog.yaml', reg.parseConfig).plan('plan')!;
    assert.equal((plan.provisioner.config as { credential_lifetime?: number }).credential_lifetime, 3600);
    const again = new PlanSnapshots(reg.parseConfig).plan(JSON.parse(JSON.stringify(snapshotOf(plan))));
    assert.equal((again.provisioner.config as { credential_lifetime?: number }).credential_lifetime, 3600);
  });

  test(`${kind}: without credential_lifetime, credentials last until unbind`, () => {
    const plan = parseCatalog(catalogWith(kind, ''), 'catalog.yaml', registry().parseConfig).plan('plan')!;
    assert.equal((plan.provisioner.config as { credential_lifetime?: number }).credential_lifetime, undefined);
  });

  test(`${kind}: a credential_lifetime that is not a whole positive number of seconds is refused, saying what to write`, () => {
    const where = 'services[0].plans[0].provisioner.credential_lifetime';
    const cases: Array<[string, RegExp]> = [
      ['0', /at least 1 second; omit it for credentials that last until unbind/],
      ['-60', /at least 1 second/],
      ['1.5', /whole number of seconds/],
      ['"1h"', /must be a number of seconds \(e\.g\. 86400 for a day\)/],
      ['315360001', /at most 315360000 seconds \(10 years\)/],
    ];
    for (const [value, message] of cases) {
      const problems = problemsOf(catalogWith(kind, `credential_lifetime: ${value}`));
      assert.equal(problems.length, 1, `${value}: ${problems.join('; ')}`);
      assert.ok(problems[0]!.startsWith(`${where}: `), problems[0]);
      assert.match(problems[0]!, message, `${value}: ${problems[0]}`);
    }
  });
}

test('a kind that cannot make credentials expire refuses credential_lifetime, naming the kinds that can', () => {
  const yaml = `services:
  - id: svc
    name: svc
    description: d
    bindable: true
    plans:
      - id: plan
        name: plan
        description: d
        provisioner:
          kind: user-provided
          credential_lifetime: 60
`;
  assert.deepEqual(problemsOf(yaml), [
    'services[0].plans[0].provisioner.credential_lifetime: kind user-provided cannot make credentials expire (only postgres and mysql can); remove credential_lifetime from this plan',
  ]);
});

test('expires_at and renew_before: RFC 3339 in whole seconds, renewal due at 80 % of the lifetime', () => {
  assert.deepEqual(expiryMetadata('2026-12-03T17:00:00Z', 3600), { expires_at: '2026-12-03T17:00:00Z', renew_before: '2026-12-03T16:48:00Z' });
  assert.deepEqual(expiryMetadata('2026-12-03T17:00:00.000Z', 5), { expires_at: '2026-12-03T17:00:00Z', renew_before: '2026-12-03T16:59:59Z' });
});
