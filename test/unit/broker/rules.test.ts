// The OSB rules a request meets before anything is stored (broker/rules.ts),
// against a catalog with a fake provisioner (a seam: no database, no server).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCatalog } from '../../../src/catalog/catalog.ts';
import { Rules } from '../../../src/broker/rules.ts';
import { OsbError } from '../../../src/osb/errors.ts';
import { ProvisionerRegistry, type Provisioner } from '../../../src/provisioners/provisioner.ts';

const fake: Provisioner = {
  kind: 'fake',
  parsePlanConfig: (block) => ({ config: block }),
  isAsync: (kind, plan) => (plan.provisioner.config as { async?: boolean }).async === true && kind !== 'update',
  checkParameters: (_plan, parameters) => (parameters.forbidden ? 'forbidden is not allowed' : undefined),
  checkUpdate: (from, to) => (from.id === 'p-sync' && to.id === 'p-async' ? 'cannot become asynchronous' : undefined),
  provision: async () => {},
  update: async () => {},
  deprovision: async () => {},
  bind: async () => ({ credentials: {} }),
  unbind: async () => {},
};
const registry = new ProvisionerRegistry([fake]);
const catalog = parseCatalog(
  `
services:
  - id: s1
    name: one
    description: One.
    bindable: true
    plans:
      - id: p-sync
        name: sync
        description: Synchronous.
        maintenance_info: { version: 1.0.0 }
        schemas:
          service_instance:
            create:
              parameters:
                $schema: http://json-schema.org/draft-07/schema#
                type: object
                properties: { size: { type: integer, maximum: 10 } }
                additionalProperties: false
        provisioner: { kind: fake }
      - id: p-async
        name: async
        description: Asynchronous.
        maximum_polling_duration: 60
        provisioner: { kind: fake, async: true }
  - id: s2
    name: two
    description: Two.
    bindable: false
    plans:
      - id: p-other
        name: other
        description: Of another service.
        provisioner: { kind: fake }
`,
  'catalog.yaml',
  registry.parseConfig,
);
const rules = new Rules(catalog, registry);

function refusal(fn: () => unknown): [number, string | undefined] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof OsbError, String(err));
    return [err.status, err.description ?? err.error];
  }
  assert.fail('expected a refusal');
}

test('service and plan must be in the catalog, and the plan of the service', () => {
  assert.equal(rules.service('s1').id, 's1');
  assert.deepEqual(refusal(() => rules.service('nope')), [400, `service_id "nope" is not in this broker's catalog.`]);
  assert.deepEqual(refusal(() => rules.plan(rules.service('s1'), 'p-other')), [400, `plan_id "p-other" does not belong to service_id "s1".`]);
  rules.assertPlanBelongsTo('s1', 'retired-plan');
  assert.equal(refusal(() => rules.assertPlanBelongsTo('s1', 'p-other'))[0], 400);
});

test('an asynchronous plan needs accepts_incomplete, and asynchronous bindings need 2.14', () => {
  const async = catalog.plan('p-async')!;
  assert.equal(rules.asyncFor(catalog.plan('p-sync')!, 'provision', false, 17), false);
  assert.equal(rules.asyncFor(async, 'provision', true, 13), true);
  assert.deepEqual(refusal(() => rules.asyncFor(async, 'provision', false, 17))[0], 422);
  assert.deepEqual(refusal(() => rules.asyncFor(async, 'bind', true, 13)), [412, 'This plan binds asynchronously, which requires X-Broker-API-Version 2.14 or later.']);
  assert.equal(rules.asyncFor(async, 'update', false, 17), false);
});

test('parameters: the plan schema, then what the provisioner refuses', () => {
  const plan = catalog.plan('p-sync')!;
  rules.validate(plan.schemas.instanceCreate, { size: 3 });
  assert.match(refusal(() => rules.validate(plan.schemas.instanceCreate, { size: 11 }))[1]!, /^Invalid parameters: .*size/);
  assert.deepEqual(refusal(() => rules.checkParameters(plan, { forbidden: true })), [400, 'forbidden is not allowed']);
  assert.deepEqual(refusal(() => rules.checkUpdate(plan, catalog.plan('p-async')!)), [422, 'cannot become asynchronous']);
});

test('maintenance_info must match the plan\'s', () => {
  const plan = catalog.plan('p-sync')!;
  rules.maintenanceVersion(plan, undefined);
  rules.maintenanceVersion(plan, '1.0.0');
  assert.equal(refusal(() => rules.maintenanceVersion(plan, '0.9.0'))[0], 422);
  assert.equal(refusal(() => rules.maintenanceVersion(catalog.plan('p-async')!, '1.0.0'))[0], 422);
});

test('an update to the catalog\'s maintenance version below the instance\'s is a refused downgrade', () => {
  const plan = catalog.plan('p-sync')!; // maintenance_info 1.0.0
  rules.noDowngrade({ id: 'i', maintenanceVersion: '0.9.0' }, plan, '1.0.0');
  rules.noDowngrade({ id: 'i', maintenanceVersion: '1.0.0' }, plan, '1.0.0');
  rules.noDowngrade({ id: 'i', maintenanceVersion: '2.0.0' }, plan, undefined); // not an upgrade request
  const [status, description] = refusal(() => rules.noDowngrade({ id: 'i', maintenanceVersion: '1.0.1' }, plan, '1.0.0'));
  assert.equal(status, 422);
  assert.match(description!, /instance i is at maintenance version 1\.0\.1, newer than the catalog's 1\.0\.0; Berth does not downgrade/);
});
