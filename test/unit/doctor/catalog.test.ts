// A published catalog checked as platforms check it: Berth's own rules (src/catalog) plus
// what Kubernetes Service Catalog refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPublishedCatalog } from '../../../src/doctor/catalog.ts';

const plan = (id: string, name: string, extra: Record<string, unknown> = {}) => ({ id, name, description: `${name} plan`, ...extra });
const service = (plans: unknown[], extra: Record<string, unknown> = {}) => ({ id: 'svc-1', name: 'db', description: 'a db', bindable: true, plans, ...extra });

test('a valid catalog has no findings', () => {
  const f = checkPublishedCatalog({ services: [service([plan('p1', 'small'), plan('p2', 'large', { maintenance_info: { version: '1.2.3' } })])] });
  assert.deepEqual(f, { problems: [], warnings: [], services: 1, plans: 2 });
});

test('what platforms reject: duplicate ids and names, missing fields, invalid schemas, bad maintenance_info', () => {
  const f = checkPublishedCatalog({
    services: [
      service([
        plan('p1', 'small'),
        plan('p1', 'small'),
        { id: 'p3', name: 'nodesc' },
        plan('p4', 'schema', { schemas: { service_instance: { create: { parameters: { type: 'nonsense' } } } } }),
        plan('p5', 'maint', { maintenance_info: { version: 'one' } }),
      ]),
      { id: 'svc-2', name: 'db', plans: [plan('q1', 'x')] },
    ],
  });
  const all = f.problems.join('\n');
  assert.match(all, /services\[0\]\.plans\[1\]\.id: "p1" is already used at services\[0\]\.plans\[0\]/);
  assert.match(all, /services\[0\]\.plans\[1\]\.name: "small" is already used/);
  assert.match(all, /services\[0\]\.plans\[2\]\.description/);
  assert.match(all, /services\[0\]\.plans\[4\]\.maintenance_info\.version: must be a semantic version/);
  assert.match(all, /services\[1\]\.description/);
  assert.match(all, /services\[1\]\.bindable/);
  assert.match(all, /services\[0\]\.plans\[3\]\.schemas\.service_instance\.create\.parameters: /);
  assert.match(all, /services\[1\]\.name: "db" is already used at services\[0\]/);
  assert.doesNotMatch(all, /provisioner/, "Berth's own plan block is never mentioned for another broker");
});

test('not an OSB catalog at all', () => {
  assert.deepEqual(checkPublishedCatalog({ offerings: [] }).problems, ['the body is not a JSON object with a "services" array']);
});

test('what Kubernetes Service Catalog refuses: names and ids that cannot be object names', () => {
  const f = checkPublishedCatalog({ services: [service([plan('p 1', 'Small Plan')], { name: 'My DB' })] });
  assert.deepEqual(f.problems, []);
  assert.equal(f.warnings.length, 3);
  assert.match(f.warnings.join('\n'), /services\[0\] \(My DB\)\.name: Kubernetes Service Catalog refuses offering names/);
  assert.match(f.warnings.join('\n'), /plans\[0\] \(Small Plan\)\.id "p 1"/);
});
