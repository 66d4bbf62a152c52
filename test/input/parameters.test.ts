// Hostile and malformed input on the OSB requests that carry a body: bounded
// parameters (issue 16 point 1), finite numbers (15), mandatory platform GUIDs
// (16) and validation errors a person can act on (27). Runs against the sample
// catalog.yaml on a throwaway database of the real Postgres server; every
// request here is refused before anything is created.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startTestBerth, type TestBerth } from '../support/berth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { BODY_LIMITS } from '../../src/http/body-limits.ts';
import { objectBody } from '../../src/http/schemas.ts';
import { OsbError } from '../../src/osb/errors.ts';
import { hugeExtensionsBody, SAMPLE_PG } from './bodies.ts';

const UPS = { service_id: '4f6e6cf6-ffdd-425f-a2c7-3c9258ad2468', plan_id: '86064792-7ea2-467b-af93-ac9694d96d52' };
const PG = SAMPLE_PG;
const ORG = { organization_guid: 'org-1', space_guid: 'space-1' };

/** The 400 description objectBody gives for a body, or undefined when it accepts it. */
function refusal(body: unknown): string | undefined {
  try {
    objectBody(body);
    return undefined;
  } catch (err) {
    assert.ok(err instanceof OsbError, `expected an OsbError, got ${String(err)}`);
    assert.equal(err.status, 400);
    return err.description;
  }
}

describe('request body bounds (before any schema runs)', () => {
  const { arrayItems, objectKeys, stringLength, values, depth } = BODY_LIMITS;

  test('an array longer than the limit is refused, naming where it is', () => {
    assert.equal(refusal({ parameters: { list: Array(arrayItems).fill(0) } }), undefined);
    assert.match(refusal({ parameters: { list: Array(arrayItems + 1).fill(0) } }) ?? '', /^parameters\.list is an array of 1001 items; at most 1000 are accepted\.$/);
    assert.match(refusal({ parameters: { a: [[], Array(arrayItems + 1).fill(0)] } }) ?? '', /^parameters\.a\[1\] is an array/);
  });

  test('an object with too many keys is refused', () => {
    const keys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
    assert.equal(refusal({ parameters: keys(objectKeys) }), undefined);
    assert.match(refusal({ parameters: keys(objectKeys + 1) }) ?? '', /^parameters is an object with 1001 keys; at most 1000 are accepted\.$/);
  });

  test('a string or key longer than the limit is refused', () => {
    assert.equal(refusal({ parameters: { s: 'x'.repeat(stringLength) } }), undefined);
    assert.match(refusal({ parameters: { s: 'x'.repeat(stringLength + 1) } }) ?? '', /^parameters\.s is a string of 65537 characters; at most 65536 are accepted\.$/);
    assert.match(refusal({ parameters: { ['k'.repeat(stringLength + 1)]: 1 } }) ?? '', /^parameters has a key of 65537 characters/);
  });

  test('a body holding more values than the limit is refused, however they are spread', () => {
    const spread = (total: number) => ({ parameters: Object.fromEntries(Array.from({ length: Math.ceil(total / 500) }, (_, i) => [`a${i}`, Array(500).fill(1)])) });
    assert.equal(refusal(spread(values - 1000)), undefined);
    assert.match(refusal(spread(values + 500)) ?? '', /^the request body holds more than 10000 values/);
  });

  test('nesting deeper than the limit is refused', () => {
    let deep: unknown = 1;
    for (let i = 0; i < depth; i++) deep = [deep];
    assert.match(refusal({ parameters: { deep } }) ?? '', /nested more than 64 levels deep/);
  });

  test('a number JSON.parse turned into Infinity is refused, not stored as null', () => {
    assert.match(refusal(JSON.parse('{"parameters":{"size":1e400}}')) ?? '', /^parameters\.size is a number too large to represent/);
    assert.match(refusal(JSON.parse('{"parameters":{"sizes":[1,-1e999]}}')) ?? '', /^parameters\.sizes\[1\] is a number too large/);
    assert.equal(refusal(JSON.parse('{"parameters":{"size":1.7e308,"tiny":1e-400}}')), undefined);
  });
});

describe('provision requests with hostile or incomplete bodies', () => {
  let db: TestDatabase;
  let t: TestBerth;

  before(async () => {
    db = await createTestDatabase();
    t = await startTestBerth({ databaseUrl: db.url });
  });
  after(async () => {
    await t?.stop();
    await db?.drop();
  });

  /** Whether Berth recorded the instance at all (an asynchronous one stays invisible to GET while it is created). */
  const created = async (id: string) => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      return (await c.query('SELECT 1 FROM instances WHERE id = $1', [id])).rowCount !== 0;
    } finally {
      await c.end();
    }
  };

  test('the audit request (1 MB, 165k unique extensions) gets a 400 that names the limit', async () => {
    const body = hugeExtensionsBody();
    assert.ok(body.length > 1_000_000 && body.length < 1024 * 1024, `body is ${body.length} bytes`);
    const r = await t.client.request('PUT', '/v2/service_instances/huge-1?accepts_incomplete=true', { rawBody: body });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'BadRequest');
    assert.equal(r.body.description, 'parameters.extensions is an array of 165000 items; at most 1000 are accepted.');
    assert.equal(await created('huge-1'), false);
  });

  test('1e400 in parameters gets a 400 instead of being stored as null', async () => {
    const r = await t.client.request('PUT', '/v2/service_instances/inf-1', {
      rawBody: `{"service_id":"${UPS.service_id}","plan_id":"${UPS.plan_id}","organization_guid":"o","space_guid":"s","parameters":{"credentials":{"port":1e400}}}`,
    });
    assert.equal(r.status, 400);
    assert.match(r.body.description, /^parameters\.credentials\.port is a number too large to represent/);
    assert.equal(await created('inf-1'), false);
  });

  test('an enum error lists the values the plan allows', async () => {
    const r = await t.client.provision('enum-1', { ...PG, ...ORG, parameters: { extensions: ['citext', 'postgis'] } });
    assert.equal(r.status, 400);
    assert.equal(
      r.body.description,
      'Invalid parameters: parameters.extensions.1 must be one of "citext", "hstore", "pg_trgm", "pgcrypto" or "uuid-ossp"',
    );
  });

  test('duplicate extensions are still refused (uniqueItems), naming the two items', async () => {
    const r = await t.client.provision('dup-1', { ...PG, ...ORG, parameters: { extensions: ['citext', 'hstore', 'citext'] } });
    assert.equal(r.status, 400);
    assert.match(r.body.description, /parameters\.extensions must NOT have duplicate items \(items 0 and 2 are identical\)/);
  });

  for (const missing of ['organization_guid', 'space_guid'] as const) {
    test(`a provision without ${missing} gets a 400 and creates nothing`, async () => {
      const { [missing]: _left, ...rest } = ORG;
      const id = `no-${missing}`;
      const r = await t.client.provision(id, { ...UPS, ...rest, parameters: { credentials: { uri: 'smtp://x' } } });
      assert.equal(r.status, 400);
      assert.equal(r.body.error, 'BadRequest');
      assert.match(r.body.description, new RegExp(`^${missing} is required when provisioning \\(OSB specification\\): send the GUID of the platform's`));
      assert.equal(await created(id), false);

      const empty = await t.client.provision(id, { ...UPS, ...ORG, [missing]: '', parameters: { credentials: { uri: 'smtp://x' } } });
      assert.equal(empty.status, 400);
      assert.match(empty.body.description, new RegExp(`^${missing} must be a non-empty string`));

      // With both, the same request is a first provision (201), not a repeat.
      const ok = await t.client.provision(id, { ...UPS, ...ORG, parameters: { credentials: { uri: 'smtp://x' } } });
      assert.equal(ok.status, 201, ok.text);
    });
  }
});
