// What the catalog loader refuses so that parameters stay safe to validate and
// to hand to a provisioner (issue 16 points 1 and 15): patterns run on RE2,
// plain-http chart repositories need an explicit opt-in, and helm parameter
// mappings need a schema that declares them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import pino from 'pino';
import { CatalogError, loadCatalog, parseCatalog } from '../../../src/catalog/catalog.ts';
import { compileParameterSchema, describeErrors } from '../../../src/catalog/schemas.ts';
import { loadConfig } from '../../../src/config.ts';
import { ProvisionerRegistry } from '../../../src/provisioners/provisioner.ts';
import { builtInProvisioners } from '../../../src/provisioners/index.ts';
import { KubernetesAccess } from '../../../src/kubernetes/client.ts';
import { parseHelmPlan } from '../../../src/provisioners/helm/config.ts';
import { REPO, TEST_CREDENTIALS, TEST_KEYS } from '../../support/berth.ts';

const DRAFT7 = 'http://json-schema.org/draft-07/schema#';

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

function problemsOf(yaml: string): string[] {
  try {
    parseCatalog(yaml, 'catalog.yaml', registry().parseConfig);
    return [];
  } catch (err) {
    assert.ok(err instanceof CatalogError, String(err));
    return err.problems;
  }
}

const helmPlan = (provisioner: string, schemas = '') => `
services:
  - id: svc
    name: svc
    description: d
    bindable: true
    plans:
      - id: plan
        name: plan
        description: d
${schemas}
        provisioner:
          kind: helm
          chart: charts/postgresql
${provisioner}
`;

test('schema patterns are compiled with RE2: a lookahead is refused at load, naming why', () => {
  const r = compileParameterSchema({ $schema: DRAFT7, properties: { name: { type: 'string', pattern: '^(?!admin).*$' } } });
  assert.ok('problem' in r, 'a pattern RE2 cannot run must not compile');
  assert.match(r.problem, /RE2 \(linear time\), which has no lookaround or backreferences/);
});

test('a catastrophic pattern answers at once on a long input', () => {
  // On a backtracking engine this needs 2^100 steps; RE2 reads the string once.
  const r = compileParameterSchema({ $schema: DRAFT7, properties: { name: { type: 'string', pattern: '^(a+)+$' } } });
  assert.ok('validate' in r);
  assert.equal(r.validate({ name: `${'a'.repeat(100)}!` }), false);
  assert.equal(describeErrors(r.validate.errors), 'parameters.name must match pattern "^(a+)+$"');
  assert.equal(r.validate({ name: 'aaaa' }), true);
});

test('uniqueItems compares JSON values whatever their key order, in every draft', () => {
  for (const $schema of [
    'http://json-schema.org/draft-04/schema#',
    'http://json-schema.org/draft-06/schema#',
    DRAFT7,
    'https://json-schema.org/draft/2019-09/schema',
    'https://json-schema.org/draft/2020-12/schema',
  ]) {
    const r = compileParameterSchema({ $schema, properties: { list: { type: 'array', uniqueItems: true } } });
    assert.ok('validate' in r, $schema);
    assert.equal(r.validate({ list: [{ a: 1, b: [1, { c: 2, d: 3 }] }, { b: [1, { d: 3, c: 2 }], a: 1 }] }), false, $schema);
    assert.match(describeErrors(r.validate.errors), /^parameters\.list must NOT have duplicate items \(items 0 and 1 are identical\)$/);
    assert.equal(r.validate({ list: [1, '1', [1], ['1'], { a: 1 }, { a: '1' }, null, 'null', true, 'true'] }), true, $schema);
    assert.equal(r.validate({ list: [1, 1.0] }), false, `${$schema}: 1 and 1.0 are the same JSON number`);
  }
});

test('an enum error lists the allowed values, cut after 20', () => {
  const values = Array.from({ length: 25 }, (_, i) => `v${i}`);
  const r = compileParameterSchema({ $schema: DRAFT7, properties: { size: { enum: ['s', 'm', 1] }, many: { enum: values } } });
  assert.ok('validate' in r);
  assert.equal(r.validate({ size: 'xl' }), false);
  assert.equal(describeErrors(r.validate.errors), 'parameters.size must be one of "s", "m" or 1');
  assert.equal(r.validate({ many: 'x' }), false);
  assert.match(describeErrors(r.validate.errors), /^parameters\.many must be one of "v0", "v1", .*"v19" \(or one of 5 more\)$/);
});

test('helm: an http:// chart repository is refused unless the plan opts in; https is accepted', () => {
  const base = { chart: 'postgresql', version: '1.2.3' };
  const http = parseHelmPlan({ ...base, repository: 'http://charts.example.com' });
  assert.ok('problems' in http);
  assert.deepEqual(http.problems.map((p) => p.path), ['repository']);
  assert.match(http.problems[0]!.message, /uses http:\/\/.*allow_insecure_repository: true/);
  assert.ok('config' in parseHelmPlan({ ...base, repository: 'http://charts.example.com', allow_insecure_repository: true }));
  assert.ok('config' in parseHelmPlan({ ...base, repository: 'https://charts.example.com' }));
  const ftp = parseHelmPlan({ ...base, repository: 'ftp://charts.example.com' });
  assert.ok('problems' in ftp && ftp.problems[0]!.path === 'repository');
});

test('helm: an http:// repository fails catalog load with the plan path', () => {
  assert.deepEqual(problemsOf(helmPlan('          repository: http://charts.example.com\n          version: 1.0.0')), [
    'services[0].plans[0].provisioner.repository: uses http://, which lets anyone on the path swap the chart; use https://, or set allow_insecure_repository: true for a repository you trust on a private network',
  ]);
});

test('helm: parameter mappings on a plan without a schema for provision are refused at catalog load', () => {
  const problems = problemsOf(helmPlan('          parameters: { database: auth.database }'));
  assert.deepEqual(problems, [
    'services[0].plans[0].provisioner.parameters: maps user parameters into chart values, but the plan has no schemas.service_instance.create.parameters; add a JSON schema that declares database',
  ]);
  // Only an update schema: provision would still pass parameters unchecked.
  const updateOnly = `        schemas:
          service_instance:
            update:
              parameters: { $schema: "${DRAFT7}", properties: { database: { type: string } } }`;
  assert.match(problemsOf(helmPlan('          parameters: { database: auth.database }', updateOnly)).join('\n'), /no schemas\.service_instance\.create\.parameters/);
});

test('helm: each mapped parameter must be declared by the schemas that validate it', () => {
  const schemas = `        schemas:
          service_instance:
            create:
              parameters: { $schema: "${DRAFT7}", type: object, properties: { database: { type: string } } }
            update:
              parameters: { $schema: "${DRAFT7}", type: object, properties: { other: { type: string } } }`;
  assert.deepEqual(problemsOf(helmPlan('          parameters: { database: auth.database }', schemas)), [
    'services[0].plans[0].provisioner.parameters.database: is not declared in schemas.service_instance.update.parameters.properties; declare it so users\' values are validated',
  ]);
  const declared = schemas.replace('other:', 'database:');
  assert.deepEqual(problemsOf(helmPlan('          parameters: { database: auth.database }', declared)), []);
});

test('the shipped catalogs still load', () => {
  for (const file of ['catalog.yaml', 'test/fixtures/catalog-helm.yaml']) {
    assert.doesNotThrow(() => loadCatalog(join(REPO, file), registry().parseConfig), file);
  }
});

test('the same error at many places is described once, naming the first places', () => {
  const r = compileParameterSchema({ $schema: DRAFT7, properties: { list: { type: 'array', items: { enum: ['a', 'b'] } } } });
  assert.ok('validate' in r);
  assert.equal(r.validate({ list: Array.from({ length: 1000 }, (_, i) => i) }), false);
  assert.equal(describeErrors(r.validate.errors), 'parameters.list.0, parameters.list.1, parameters.list.2 and 997 more places must be one of "a" or "b"');
});

test('a recursive schema is refused at load (validation could take exponential time); plain $refs are fine', () => {
  const tree = { anyOf: [{ type: 'array', items: { $ref: '#' } }, { type: 'array', items: { $ref: '#' } }, { type: 'number' }] };
  for (const schema of [
    { $schema: DRAFT7, ...tree },
    { $schema: DRAFT7, properties: { root: { $ref: '#/definitions/node' } }, definitions: { node: { type: 'object', properties: { kids: { type: 'array', items: { $ref: '#/definitions/node' } } } } } },
    { $schema: DRAFT7, properties: { a: { $ref: '#/definitions/a' } }, definitions: { a: { anyOf: [{ $ref: '#/definitions/b' }] }, b: { items: { $ref: '#/definitions/a' } } } },
    { $schema: DRAFT7, properties: { a: { $ref: '#node' } }, definitions: { n: { $id: '#node', items: { $ref: '#node' } } } },
    { $schema: 'https://json-schema.org/draft/2020-12/schema', $dynamicAnchor: 'n', items: { $dynamicRef: '#n' } },
  ]) {
    const r = compileParameterSchema(schema);
    assert.ok('problem' in r, JSON.stringify(schema));
    assert.match(r.problem, /recursive reference .* exponential/);
  }
  const shared = compileParameterSchema({
    $schema: DRAFT7,
    properties: { a: { $ref: '#/definitions/name' }, b: { $ref: '#/definitions/name' }, c: { $ref: '#/definitions/pair' } },
    definitions: { name: { type: 'string', maxLength: 10 }, pair: { type: 'array', items: { $ref: '#/definitions/name' } } },
  });
  assert.ok('validate' in shared, JSON.stringify(shared));
  assert.equal(shared.validate({ a: 'x', c: ['y', 'z'] }), true);
});

test('helm: credentials.per_binding names an engine Berth can create logins on, and where the admin login is', () => {
  const base = { chart: 'charts/postgresql', credentials: { type: 'postgresql', entries: { host: 'service:{release}' } } };
  const pg = parseHelmPlan({
    ...base,
    credentials: {
      ...base.credentials,
      per_binding: {
        engine: 'postgresql',
        admin_username: 'secret:{release}-credentials:username',
        admin_password: 'secret:{release}-credentials:password',
        database: 'secret:{release}-credentials:database',
      },
    },
  });
  assert.ok('config' in pg);
  const redis = parseHelmPlan({ ...base, credentials: { ...base.credentials, per_binding: { engine: 'redis', admin_password: 'secret:x:password' } } });
  assert.ok('config' in redis);
  const unknown = parseHelmPlan({ ...base, credentials: { ...base.credentials, per_binding: { engine: 'mongodb', admin_password: 'x' } } });
  assert.ok('problems' in unknown);
  assert.match(unknown.problems[0]!.path, /^credentials\.per_binding/);
  const noDatabase = parseHelmPlan({ ...base, credentials: { ...base.credentials, per_binding: { engine: 'postgresql', admin_username: 'a', admin_password: 'b' } } });
  assert.ok('problems' in noDatabase);
  assert.match(noDatabase.problems.map((p) => p.path).join(' '), /credentials\.per_binding\.database/);
});
