// The OSB conformance suite: a table of request → expected status, body and
// `error`, plus the scenarios a table cannot express. It runs once per
// database backend (see postgres.test.ts and embedded.test.ts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OsbClient, type Reply } from '../support/osb-client.ts';
import { REPO, TEST_CREDENTIALS, startTestBerth, type TestBerth } from '../support/berth.ts';
import { rearm, release } from '../support/gated-provisioner.ts';
import { ASYNC_REQUIRED_DESCRIPTION, CONCURRENCY_DESCRIPTION } from '../../src/osb/errors.ts';

const ROTATED = { username: 'old-platform', password: 'rotated:secret' };
export const CATALOG = join(REPO, 'test/fixtures/catalog-conformance.yaml');
export const MODULES = join(REPO, 'test/support/gated-provisioner.ts');

const UPS = { service_id: 'svc-ups', plan_id: 'plan-ups' };
const FAST = { service_id: 'svc-gated', plan_id: 'plan-fast' };
const HELD = { service_id: 'svc-gated', plan_id: 'plan-held' };
const org = { organization_guid: 'org-1', space_guid: 'space-1' };

interface Case {
  name: string;
  method: string;
  path: string;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string | undefined>;
  status: number;
  error?: string;
  description?: RegExp | string;
  check?: (r: Reply) => void;
}

const q = (o: Record<string, string>) => '?' + new URLSearchParams(o).toString();
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64');

const cases: Case[] = [
  // API version: 400 when missing, 412 when unsupported; checked before authentication.
  { name: 'version header missing', method: 'GET', path: '/v2/catalog', headers: { 'X-Broker-API-Version': undefined }, status: 400, error: 'MissingAPIVersion', description: /2\.13 to 2\.17/ },
  { name: 'version 2.12', method: 'GET', path: '/v2/catalog', headers: { 'X-Broker-API-Version': '2.12' }, status: 412, description: /2\.13 to 2\.17/ },
  { name: 'version 3.0', method: 'GET', path: '/v2/catalog', headers: { 'X-Broker-API-Version': '3.0' }, status: 412 },
  { name: 'version garbage', method: 'GET', path: '/v2/catalog', headers: { 'X-Broker-API-Version': 'latest' }, status: 412 },
  { name: 'version checked before auth', method: 'GET', path: '/v2/catalog', headers: { 'X-Broker-API-Version': '1.0', Authorization: undefined }, status: 412 },
  { name: 'missing version checked before auth', method: 'GET', path: '/v2/catalog', headers: { 'X-Broker-API-Version': undefined, Authorization: undefined }, status: 400 },
  // Plan-level bindable and plan_updateable on every plan, also where the service's say the same
  // (Korifi reads an absent one as false); plan_updateable only from 2.15, where OSB added it.
  {
    name: 'catalog states bindable and plan_updateable on every plan',
    method: 'GET',
    path: '/v2/catalog',
    status: 200,
    check: (r) => {
      const plans = (r.body.services as Array<{ bindable: boolean; plan_updateable?: boolean; plans: Array<Record<string, unknown>> }>).flatMap((s) =>
        s.plans.map((p) => ({ id: p.id, bindable: p.bindable, plan_updateable: p.plan_updateable, service: s })),
      );
      for (const p of plans) {
        assert.equal(typeof p.bindable, 'boolean', `plan ${p.id} states bindable`);
        assert.equal(typeof p.plan_updateable, 'boolean', `plan ${p.id} states plan_updateable`);
      }
      const byId = new Map(plans.map((p) => [p.id, p]));
      assert.deepEqual([byId.get('plan-fast')?.bindable, byId.get('plan-fast')?.plan_updateable], [true, true], 'inherited from the service');
      assert.equal(byId.get('plan-fixed')?.plan_updateable, false, 'the plan\'s own value');
      assert.equal(byId.get('plan-unbindable')?.bindable, false);
    },
  },
  {
    name: 'catalog at 2.14 states bindable on every plan, and no plan_updateable',
    method: 'GET',
    path: '/v2/catalog',
    headers: { 'X-Broker-API-Version': '2.14' },
    status: 200,
    check: (r) => {
      for (const s of r.body.services as Array<{ plans: Array<Record<string, unknown>> }>) {
        for (const p of s.plans) {
          assert.equal(typeof p.bindable, 'boolean');
          assert.equal(p.plan_updateable, undefined);
        }
      }
    },
  },
  // Authentication.
  {
    name: 'no credentials',
    method: 'GET',
    path: '/v2/catalog',
    headers: { Authorization: undefined },
    status: 401,
    error: 'Unauthorized',
    check: (r) => assert.match(r.headers.get('www-authenticate') ?? '', /^Basic/),
  },
  { name: 'wrong password', method: 'GET', path: '/v2/catalog', headers: { Authorization: 'Basic ' + Buffer.from('platform:nope').toString('base64') }, status: 401 },
  { name: 'password prefix only', method: 'GET', path: '/v2/catalog', headers: { Authorization: 'Basic ' + Buffer.from('platform:p@ss').toString('base64') }, status: 401 },
  { name: 'bearer scheme', method: 'GET', path: '/v2/catalog', headers: { Authorization: 'Bearer abc' }, status: 401 },
  { name: 'auth before body', method: 'PUT', path: '/v2/service_instances/x', rawBody: '{nope', headers: { Authorization: undefined }, status: 401 },
  {
    name: 'rotated credential pair accepted',
    method: 'GET',
    path: '/v2/catalog',
    headers: { Authorization: 'Basic ' + Buffer.from(`${ROTATED.username}:${ROTATED.password}`).toString('base64') },
    status: 200,
  },
  // Catalog and version gating of its fields.
  {
    name: 'catalog at 2.17',
    method: 'GET',
    path: '/v2/catalog',
    status: 200,
    check: (r) => {
      const gated = r.body.services.find((s: any) => s.id === 'svc-gated');
      const fast = gated.plans.find((p: any) => p.id === 'plan-fast');
      assert.equal(fast.binding_rotatable, true);
      assert.deepEqual(fast.maintenance_info, { version: '1.0.0' });
      assert.equal(gated.allow_context_updates, true);
      for (const s of r.body.services) for (const p of s.plans) assert.equal(p.provisioner, undefined, 'provisioner blocks are never published');
    },
  },
  {
    name: 'catalog at 2.13 leaves out newer fields',
    method: 'GET',
    path: '/v2/catalog',
    headers: { 'X-Broker-API-Version': '2.13' },
    status: 200,
    check: (r) => {
      const fast = r.body.services.find((s: any) => s.id === 'svc-gated').plans.find((p: any) => p.id === 'plan-fast');
      assert.equal(fast.binding_rotatable, undefined);
      assert.equal(fast.maintenance_info, undefined);
      assert.equal(fast.maximum_polling_duration, undefined);
    },
  },
  // Body shape (400), before accepts_incomplete (422), before parameters (400).
  { name: 'malformed JSON', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', rawBody: '{"service_id": ', status: 400, description: /not valid JSON/ },
  { name: 'body is an array', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', body: [FAST], status: 400, description: /JSON object/ },
  { name: 'body is a string', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', rawBody: '"hello"', status: 400 },
  { name: 'service_id wrong type', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', body: { ...FAST, service_id: 7 }, status: 400, description: /service_id/ },
  { name: 'plan_id missing', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', body: { service_id: 'svc-gated' }, status: 400, description: /plan_id is required/ },
  { name: 'empty service_id', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', body: { ...FAST, service_id: '' }, status: 400 },
  { name: 'parameters not an object', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', body: { ...FAST, ...org, parameters: [1] }, status: 400, description: /parameters must be a JSON object/ },
  { name: 'context not an object', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', body: { ...FAST, context: 'k8s' }, status: 400 },
  { name: 'maintenance_info without version', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', body: { ...FAST, maintenance_info: {} }, status: 400 },
  { name: 'unknown service', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', body: { ...org, service_id: 'nope', plan_id: 'plan-fast' }, status: 400, description: /service_id "nope"/ },
  { name: 'unknown plan', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', body: { ...org, service_id: 'svc-gated', plan_id: 'nope' }, status: 400, description: /plan_id "nope"/ },
  { name: 'plan of another service', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', body: { ...org, service_id: 'svc-gated', plan_id: 'plan-ups' }, status: 400, description: /does not belong/ },
  { name: 'accepts_incomplete not boolean', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=yes', body: { ...FAST, ...org }, status: 400, description: /accepts_incomplete/ },
  { name: 'async plan without accepts_incomplete', method: 'PUT', path: '/v2/service_instances/bad-1', body: { ...FAST, ...org }, status: 422, error: 'AsyncRequired', description: ASYNC_REQUIRED_DESCRIPTION },
  { name: 'async plan with accepts_incomplete=false', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=false', body: { ...FAST, ...org }, status: 422, error: 'AsyncRequired' },
  { name: 'async required before parameter validation', method: 'PUT', path: '/v2/service_instances/bad-1', body: { ...FAST, ...org, parameters: { size: 99 } }, status: 422, error: 'AsyncRequired' },
  { name: 'parameter out of range', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', body: { ...FAST, ...org, parameters: { size: 99 } }, status: 400, description: /parameters\.size must be <= 10/ },
  { name: 'unknown parameter', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', body: { ...FAST, ...org, parameters: { colour: 'red' } }, status: 400, description: /unknown property "colour"/ },
  { name: 'user-provided without credentials', method: 'PUT', path: '/v2/service_instances/bad-1', body: { ...UPS, ...org, parameters: {} }, status: 400, description: /credentials/ },
  { name: 'maintenance_info mismatch', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', body: { ...FAST, ...org, maintenance_info: { version: '0.9.0' } }, status: 422, error: 'MaintenanceInfoConflict' },
  { name: 'maintenance_info on a plan without it', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', body: { ...HELD, ...org, maintenance_info: { version: '1.0.0' } }, status: 422, error: 'MaintenanceInfoConflict' },
  // Idempotency of provision against existing instances (set up in before()).
  { name: 'identical provision of a finished instance', method: 'PUT', path: '/v2/service_instances/ready-1?accepts_incomplete=true', body: { ...FAST, ...org, parameters: { size: 2 } }, status: 200, check: (r) => assert.match(r.body.dashboard_url, /ready-1/) },
  {
    name: 'identical provision at 2.15 carries the instance metadata (Cloud Foundry stores it)',
    method: 'PUT',
    path: '/v2/service_instances/ready-1?accepts_incomplete=true',
    headers: { 'X-Broker-API-Version': '2.15' },
    body: { ...FAST, ...org, parameters: { size: 2 } },
    status: 200,
    check: (r) => assert.deepEqual(r.body.metadata, { labels: { tier: 'fast' } }),
  },
  { name: 'identical provision at 2.14 has no metadata', method: 'PUT', path: '/v2/service_instances/ready-1?accepts_incomplete=true', headers: { 'X-Broker-API-Version': '2.14' }, body: { ...FAST, ...org, parameters: { size: 2 } }, status: 200, check: (r) => assert.equal(r.body.metadata, undefined) },
  { name: 'same id, different parameters', method: 'PUT', path: '/v2/service_instances/ready-1?accepts_incomplete=true', body: { ...FAST, ...org, parameters: { size: 3 } }, status: 409 },
  { name: 'same id, different plan', method: 'PUT', path: '/v2/service_instances/ready-1?accepts_incomplete=true', body: { ...HELD, ...org }, status: 409 },
  { name: 'same id, different space', method: 'PUT', path: '/v2/service_instances/ready-1?accepts_incomplete=true', body: { ...FAST, ...org, space_guid: 'other', parameters: { size: 2 } }, status: 409 },
  { name: 'identical sync provision', method: 'PUT', path: '/v2/service_instances/ups-1', body: { ...UPS, ...org, parameters: { credentials: { url: 'https://x' } } }, status: 200 },
  // Deprovision.
  { name: 'delete unknown instance', method: 'DELETE', path: '/v2/service_instances/never' + q({ service_id: 'svc-gated', plan_id: 'plan-fast', accepts_incomplete: 'true' }), status: 410, check: (r) => assert.deepEqual(r.body, {}) },
  { name: 'delete without service_id', method: 'DELETE', path: '/v2/service_instances/ready-1' + q({ plan_id: 'plan-fast', accepts_incomplete: 'true' }), status: 400, description: /service_id is required/ },
  { name: 'delete without plan_id', method: 'DELETE', path: '/v2/service_instances/ready-1' + q({ service_id: 'svc-gated', accepts_incomplete: 'true' }), status: 400, description: /plan_id is required/ },
  { name: 'delete with empty plan_id', method: 'DELETE', path: '/v2/service_instances/ready-1' + q({ service_id: 'svc-gated', plan_id: '', accepts_incomplete: 'true' }), status: 400 },
  { name: 'delete with unknown service', method: 'DELETE', path: '/v2/service_instances/ready-1' + q({ service_id: 'nope', plan_id: 'plan-fast', accepts_incomplete: 'true' }), status: 400 },
  { name: 'delete async plan synchronously', method: 'DELETE', path: '/v2/service_instances/ready-1' + q({ service_id: 'svc-gated', plan_id: 'plan-fast' }), status: 422, error: 'AsyncRequired' },
  // Fetching an instance (2.14+).
  {
    name: 'fetch instance at 2.17',
    method: 'GET',
    path: '/v2/service_instances/ready-1',
    status: 200,
    check: (r) => {
      assert.equal(r.body.service_id, 'svc-gated');
      assert.equal(r.body.plan_id, 'plan-fast');
      assert.deepEqual(r.body.parameters, { size: 2 });
      assert.deepEqual(r.body.maintenance_info, { version: '1.0.0' });
      assert.deepEqual(r.body.metadata, { labels: { tier: 'fast' } });
    },
  },
  { name: 'fetch instance at 2.16 has no metadata', method: 'GET', path: '/v2/service_instances/ready-1', headers: { 'X-Broker-API-Version': '2.16' }, status: 200, check: (r) => assert.equal(r.body.metadata, undefined) },
  { name: 'fetch instance at 2.13', method: 'GET', path: '/v2/service_instances/ready-1', headers: { 'X-Broker-API-Version': '2.13' }, status: 412, description: /2\.14/ },
  { name: 'fetch unknown instance', method: 'GET', path: '/v2/service_instances/never', status: 404 },
  { name: 'fetch instance with empty plan_id hint', method: 'GET', path: '/v2/service_instances/ready-1?plan_id=', status: 400 },
  { name: 'user-provided parameters are not echoed', method: 'GET', path: '/v2/service_instances/ups-1', status: 200, check: (r) => assert.equal(r.body.parameters, undefined) },
  // last_operation.
  { name: 'last_operation of unknown instance', method: 'GET', path: '/v2/service_instances/never/last_operation', status: 404 },
  { name: 'last_operation succeeded', method: 'GET', path: '/v2/service_instances/ready-1/last_operation', status: 200, check: (r) => assert.deepEqual(r.body, { state: 'succeeded', description: 'Provisioned' }) },
  { name: 'last_operation with empty operation', method: 'GET', path: '/v2/service_instances/ready-1/last_operation?operation=', status: 400 },
  { name: 'last_operation with foreign operation', method: 'GET', path: '/v2/service_instances/ready-1/last_operation?operation=nope', status: 400 },
  // Update.
  { name: 'update unknown instance', method: 'PATCH', path: '/v2/service_instances/never?accepts_incomplete=true', body: { service_id: 'svc-gated' }, status: 404 },
  { name: 'update without service_id', method: 'PATCH', path: '/v2/service_instances/ready-1?accepts_incomplete=true', body: {}, status: 400, description: /service_id is required/ },
  { name: 'update with nothing to change', method: 'PATCH', path: '/v2/service_instances/ready-1?accepts_incomplete=true', body: { service_id: 'svc-gated', plan_id: 'plan-fast', parameters: { size: 2 } }, status: 200, check: (r) => assert.match(r.body.dashboard_url, /ready-1/) },
  { name: 'update with invalid parameters', method: 'PATCH', path: '/v2/service_instances/ready-1?accepts_incomplete=true', body: { service_id: 'svc-gated', parameters: { size: 0 } }, status: 400 },
  { name: 'update async without accepts_incomplete', method: 'PATCH', path: '/v2/service_instances/ready-1', body: { service_id: 'svc-gated', parameters: { size: 4 } }, status: 422, error: 'AsyncRequired' },
  { name: 'update maintenance mismatch', method: 'PATCH', path: '/v2/service_instances/ready-1?accepts_incomplete=true', body: { service_id: 'svc-gated', maintenance_info: { version: '2.0.0' } }, status: 422, error: 'MaintenanceInfoConflict' },
  { name: 'update to a plan of another service', method: 'PATCH', path: '/v2/service_instances/ready-1?accepts_incomplete=true', body: { service_id: 'svc-gated', plan_id: 'plan-ups' }, status: 400 },
  { name: 'plan change where plan_updateable is false', method: 'PATCH', path: '/v2/service_instances/fixed-1?accepts_incomplete=true', body: { service_id: 'svc-gated', plan_id: 'plan-fast' }, status: 422, check: (r) => assert.equal(r.body.update_repeatable, false) },
  // Bindings.
  { name: 'bind to unknown instance', method: 'PUT', path: '/v2/service_instances/never/service_bindings/b?accepts_incomplete=true', body: FAST, status: 404 },
  { name: 'bind with another plan', method: 'PUT', path: '/v2/service_instances/ready-1/service_bindings/b-x?accepts_incomplete=true', body: HELD, status: 400 },
  { name: 'bind unbindable plan', method: 'PUT', path: '/v2/service_instances/ready-1/service_bindings/b-x?accepts_incomplete=true', body: { service_id: 'svc-unbindable', plan_id: 'plan-unbindable' }, status: 400, description: /not bindable/ },
  { name: 'bind without accepts_incomplete', method: 'PUT', path: '/v2/service_instances/ready-1/service_bindings/b-x', body: FAST, status: 422, error: 'AsyncRequired' },
  { name: 'bind with invalid parameters', method: 'PUT', path: '/v2/service_instances/ready-1/service_bindings/b-x?accepts_incomplete=true', body: { ...FAST, parameters: { role: 'admin' } }, status: 400 },
  { name: 'bind with bad bind_resource', method: 'PUT', path: '/v2/service_instances/ready-1/service_bindings/b-x?accepts_incomplete=true', body: { ...FAST, bind_resource: { app_guid: 5 } }, status: 400 },
  { name: 'bind without app where required', method: 'PUT', path: '/v2/service_instances/app-1/service_bindings/b-x?accepts_incomplete=true', body: { service_id: 'svc-gated', plan_id: 'plan-app' }, status: 422, error: 'RequiresApp' },
  {
    name: 'identical bind of a finished binding',
    method: 'PUT',
    path: '/v2/service_instances/ready-1/service_bindings/b-1?accepts_incomplete=true',
    body: { ...FAST, parameters: { role: 'reader' } },
    status: 200,
    check: (r) => assert.equal(r.body.credentials.username, 'user-b-1'),
  },
  { name: 'same binding id, different parameters', method: 'PUT', path: '/v2/service_instances/ready-1/service_bindings/b-1?accepts_incomplete=true', body: { ...FAST, parameters: { role: 'writer' } }, status: 409 },
  {
    name: 'fetch binding',
    method: 'GET',
    path: '/v2/service_instances/ready-1/service_bindings/b-1',
    status: 200,
    check: (r) => {
      assert.equal(r.body.credentials.password, 'secret');
      assert.deepEqual(r.body.endpoints, [{ host: 'gated.example', ports: ['443'] }]);
      assert.deepEqual(r.body.parameters, { role: 'reader' });
    },
  },
  { name: 'fetch binding at 2.13', method: 'GET', path: '/v2/service_instances/ready-1/service_bindings/b-1', headers: { 'X-Broker-API-Version': '2.13' }, status: 412 },
  { name: 'fetch unknown binding', method: 'GET', path: '/v2/service_instances/ready-1/service_bindings/never', status: 404 },
  { name: 'binding last_operation', method: 'GET', path: '/v2/service_instances/ready-1/service_bindings/b-1/last_operation', status: 200, check: (r) => assert.equal(r.body.state, 'succeeded') },
  { name: 'binding last_operation of unknown binding', method: 'GET', path: '/v2/service_instances/ready-1/service_bindings/never/last_operation', status: 404 },
  { name: 'unbind unknown binding', method: 'DELETE', path: '/v2/service_instances/ready-1/service_bindings/never' + q({ ...FAST, accepts_incomplete: 'true' }), status: 410 },
  { name: 'unbind without plan_id', method: 'DELETE', path: '/v2/service_instances/ready-1/service_bindings/b-1' + q({ service_id: 'svc-gated', accepts_incomplete: 'true' }), status: 400 },
  { name: 'rotation from an unknown predecessor', method: 'PUT', path: '/v2/service_instances/ready-1/service_bindings/b-r?accepts_incomplete=true', body: { ...FAST, predecessor_binding_id: 'never' }, status: 400 },
  { name: 'rotation before 2.17', method: 'PUT', path: '/v2/service_instances/ready-1/service_bindings/b-r?accepts_incomplete=true', headers: { 'X-Broker-API-Version': '2.16' }, body: { ...FAST, predecessor_binding_id: 'b-1' }, status: 412 },
  // Input the database could not store is refused up front, never a 5xx.
  { name: 'NUL in organization_guid', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', body: { ...FAST, organization_guid: 'a\u0000b', space_guid: 's' }, status: 400 },
  { name: 'lone surrogate in context', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', rawBody: `{"service_id":"svc-gated","plan_id":"plan-fast","context":{"name":"\\ud800"}}`, status: 400 },
  { name: 'NUL in a parameter key', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', rawBody: `{"service_id":"svc-gated","plan_id":"plan-fast","parameters":{"a\\u0000":1}}`, status: 400 },
  { name: 'deeply nested context', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', rawBody: `{"service_id":"svc-gated","plan_id":"plan-fast","context":${'{"a":'.repeat(200)}1${'}'.repeat(200)}}`, status: 400 },
  { name: 'NUL in an instance id', method: 'PUT', path: '/v2/service_instances/a%00b?accepts_incomplete=true', body: FAST, status: 400 },
  { name: 'NUL in an instance id (last_operation)', method: 'GET', path: '/v2/service_instances/a%00b/last_operation', status: 400 },
  { name: 'id over 1024 bytes', method: 'GET', path: `/v2/service_instances/${encodeURIComponent('é'.repeat(600))}/last_operation`, status: 400 },
  { name: 'NUL in operation', method: 'GET', path: '/v2/service_instances/ready-1/last_operation?operation=a%00b', status: 400 },
  { name: 'NUL in originating identity', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', body: FAST, headers: { 'X-Broker-API-Originating-Identity': `kubernetes ${b64({ username: 'a\u0000' })}` }, status: 400 },
  { name: 'asynchronous bind for a 2.13 platform', method: 'PUT', path: '/v2/service_instances/ready-1/service_bindings/b-old?accepts_incomplete=true', headers: { 'X-Broker-API-Version': '2.13' }, body: FAST, status: 412, description: /2\.14/ },
  { name: 'delete with a plan the catalog no longer has', method: 'DELETE', path: '/v2/service_instances/never' + q({ service_id: 'svc-gated', plan_id: 'retired-plan', accepts_incomplete: 'true' }), status: 410 },
  // Headers and routing.
  { name: 'request identity is echoed', method: 'GET', path: '/v2/catalog', headers: { 'X-Broker-API-Request-Identity': 'req-123' }, status: 200, check: (r) => assert.equal(r.headers.get('x-broker-api-request-identity'), 'req-123') },
  { name: 'malformed originating identity', method: 'GET', path: '/v2/catalog', headers: { 'X-Broker-API-Originating-Identity': 'kubernetes not-base64!' }, status: 400 },
  { name: 'originating identity that is not an object', method: 'GET', path: '/v2/catalog', headers: { 'X-Broker-API-Originating-Identity': `kubernetes ${b64([1])}` }, status: 400 },
  { name: 'unknown route', method: 'GET', path: '/v2/nothing-here', status: 404 },
  { name: 'unknown method on a route', method: 'POST', path: '/v2/catalog', status: 404 },
  // organization_guid and space_guid are REQUIRED on provision (OSB spec).
  { name: 'provision without organization_guid', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', body: { ...FAST, space_guid: 's' }, status: 400, error: 'BadRequest', description: /^organization_guid is required/ },
  { name: 'provision without space_guid', method: 'PUT', path: '/v2/service_instances/bad-1?accepts_incomplete=true', body: { ...FAST, organization_guid: 'o' }, status: 400, error: 'BadRequest', description: /^space_guid is required/ },
];

export function conformanceSuite(label: string, databaseUrl: () => Promise<{ url?: string; drop?: () => Promise<void> }>): void {
  describe(`OSB conformance (${label})`, () => {
    let t: TestBerth;
    let client: OsbClient;
    let cleanup: (() => Promise<void>) | undefined;
    const seen: Reply[] = [];

    const call = async (method: string, path: string, opts: Parameters<OsbClient['request']>[2] = {}) => {
      const r = await client.request(method, path, opts);
      seen.push(r);
      return r;
    };

    before(async () => {
      const db = await databaseUrl();
      cleanup = db.drop;
      t = await startTestBerth({
        databaseUrl: db.url,
        catalogPath: CATALOG,
        env: { BERTH_PROVISIONER_MODULES: MODULES, BROKER_CREDENTIALS: JSON.stringify([ROTATED]) },
      });
      client = t.client;
      const p = await call('PUT', '/v2/service_instances/ready-1?accepts_incomplete=true', { body: { ...FAST, ...org, parameters: { size: 2 } } });
      assert.equal(p.status, 202, p.text);
      await client.waitForInstance('ready-1', p.body.operation);
      const ups = await call('PUT', '/v2/service_instances/ups-1', { body: { ...UPS, ...org, parameters: { credentials: { url: 'https://x' } } } });
      assert.equal(ups.status, 201, ups.text);
      for (const [id, plan] of [['fixed-1', 'plan-fixed'], ['app-1', 'plan-app']] as const) {
        const r = await call('PUT', `/v2/service_instances/${id}?accepts_incomplete=true`, { body: { service_id: 'svc-gated', plan_id: plan, ...org } });
        await client.waitForInstance(id, r.body.operation);
      }
      const bnd = await call('PUT', '/v2/service_instances/ready-1/service_bindings/b-1?accepts_incomplete=true', { body: { ...FAST, parameters: { role: 'reader' } } });
      assert.equal(bnd.status, 202, bnd.text);
      await client.waitForBinding('ready-1', 'b-1', bnd.body.operation);
    });

    // After whichever tests ran (all, or one picked with --test-name-pattern): no request got a 5xx.
    after(async () => {
      try {
        const bad = seen.filter((r) => r.status >= 500);
        assert.equal(bad.length, 0, bad.map((r) => r.text).join('\n'));
      } finally {
        release();
        await t?.stop();
        await cleanup?.();
      }
    });

    for (const c of cases) {
      test(c.name, async () => {
        const r = await call(c.method, c.path, { body: c.body, rawBody: c.rawBody, headers: c.headers });
        assert.equal(r.status, c.status, `${c.method} ${c.path}: ${r.text}`);
        assert.equal(r.headers.get('content-type')?.startsWith('application/json'), true, 'every response is JSON');
        assert.equal(typeof r.body, 'object', 'every response has a JSON body');
        if (c.status >= 400 && c.status !== 410) assert.equal(typeof r.body.description, 'string', 'errors carry a description');
        if (c.error) assert.equal(r.body.error, c.error);
        if (typeof c.description === 'string') assert.equal(r.body.description, c.description);
        else if (c.description) assert.match(r.body.description, c.description);
        c.check?.(r);
      });
    }

    test('a 1 MB body is refused with 413 and changes nothing', async () => {
      const big = { ...FAST, parameters: { name: 'x'.repeat(1024 * 1024) } };
      const r = await call('PUT', '/v2/service_instances/big-1?accepts_incomplete=true', { body: big });
      assert.equal(r.status, 413);
      assert.equal(r.body.error, 'PayloadTooLarge');
      assert.equal((await call('GET', '/v2/service_instances/big-1/last_operation')).status, 404);
    });

    test('percent-encoded ids round-trip', async () => {
      const id = 'a b/c%d?é';
      const r = await call('PUT', `/v2/service_instances/${encodeURIComponent(id)}?accepts_incomplete=true`, { body: { ...FAST, ...org } });
      assert.equal(r.status, 202, r.text);
      const done = await client.waitForInstance(id, r.body.operation);
      assert.equal(done.body.state, 'succeeded');
      const g = await call('GET', `/v2/service_instances/${encodeURIComponent(id)}`);
      assert.equal(g.status, 200);
      assert.match(g.body.dashboard_url, new RegExp(encodeURIComponent(id).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    });

    test('asynchronous provision: repeats, concurrency and polling while in progress', async () => {
      const body = { ...HELD, ...org };
      const first = await call('PUT', '/v2/service_instances/held-1?accepts_incomplete=true', { body });
      assert.equal(first.status, 202);
      assert.equal(typeof first.body.operation, 'string');
      const again = await call('PUT', '/v2/service_instances/held-1?accepts_incomplete=true', { body });
      assert.equal(again.status, 202);
      assert.equal(again.body.operation, first.body.operation, 'a repeat while in progress returns the same operation');
      const poll = await call('GET', `/v2/service_instances/held-1/last_operation?operation=${first.body.operation}`);
      assert.equal(poll.body.state, 'in progress');
      assert.ok(Number(poll.headers.get('retry-after')) > 0, 'Retry-After is sent while in progress');
      assert.equal((await call('GET', '/v2/service_instances/held-1')).status, 404, 'not fetchable while provisioning');
      const patch = await call('PATCH', '/v2/service_instances/held-1?accepts_incomplete=true', { body: { service_id: 'svc-gated', parameters: {} } });
      assert.equal(patch.status, 422);
      assert.equal(patch.body.error, 'ConcurrencyError');
      assert.equal(patch.body.description, CONCURRENCY_DESCRIPTION);
      // A bind while provisioning is queued behind the provision (a platform that can poll gets 202).
      const bindEarly = await call('PUT', '/v2/service_instances/held-1/service_bindings/b?accepts_incomplete=true', { body: HELD });
      assert.equal(bindEarly.status, 202, bindEarly.text);
      const bindPoll = await call('GET', `/v2/service_instances/held-1/service_bindings/b/last_operation?operation=${bindEarly.body.operation}`);
      assert.equal(bindPoll.body.state, 'in progress');
      const bindSync = await call('PUT', '/v2/service_instances/held-1/service_bindings/b2', { body: HELD });
      assert.equal(bindSync.status, 422, 'without accepts_incomplete it is still refused');
      release('held-1');
      const done = await client.waitForInstance('held-1', first.body.operation);
      assert.equal(done.body.state, 'succeeded');
      const bound = await client.waitForBinding('held-1', 'b', bindEarly.body.operation);
      assert.equal(bound.body.state, 'succeeded', bound.text);
      assert.equal((await call('GET', `/v2/service_instances/held-1/last_operation?operation=${first.body.operation}`)).body.state, 'succeeded', 'finished states are remembered');
    });

    test('a delete during provisioning halts the creation and deletes', async () => {
      const p = await call('PUT', '/v2/service_instances/halt-1?accepts_incomplete=true', { body: { ...HELD, ...org } });
      assert.equal(p.status, 202);
      const d = await call('DELETE', '/v2/service_instances/halt-1' + q({ ...HELD, accepts_incomplete: 'true' }));
      assert.equal(d.status, 202, d.text);
      assert.notEqual(d.body.operation, p.body.operation);
      const halted = await call('GET', `/v2/service_instances/halt-1/last_operation?operation=${p.body.operation}`);
      assert.equal(halted.body.state, 'failed');
      assert.match(halted.body.description, /halted/);
      const deleted = await client.waitForInstance('halt-1', d.body.operation);
      assert.equal(deleted.body.state, 'succeeded');
      assert.equal((await call('GET', '/v2/service_instances/halt-1/last_operation')).status, 410);
      assert.equal((await call('DELETE', '/v2/service_instances/halt-1' + q({ ...HELD, accepts_incomplete: 'true' }))).status, 410);
    });

    test('a failed provision reports why, and a delete cleans it up', async () => {
      const p = await call('PUT', '/v2/service_instances/fail-1?accepts_incomplete=true', { body: { service_id: 'svc-gated', plan_id: 'plan-failing', ...org } });
      const done = await client.waitForInstance('fail-1', p.body.operation);
      assert.equal(done.body.state, 'failed');
      assert.match(done.body.description, /refused/);
      assert.equal(done.body.instance_usable, undefined, 'instance_usable is only for update and deprovision');
      const bindFailed = await call('PUT', '/v2/service_instances/fail-1/service_bindings/b?accepts_incomplete=true', { body: { service_id: 'svc-gated', plan_id: 'plan-failing' } });
      assert.equal(bindFailed.status, 422);
      const d = await call('DELETE', '/v2/service_instances/fail-1' + q({ service_id: 'svc-gated', plan_id: 'plan-failing', accepts_incomplete: 'true' }));
      assert.equal(d.status, 202);
      assert.equal((await client.waitForInstance('fail-1', d.body.operation)).body.state, 'succeeded');
    });

    test("an operation past the plan's maximum_polling_duration fails with a description", async () => {
      const p = await call('PUT', '/v2/service_instances/slow-1?accepts_incomplete=true', { body: { service_id: 'svc-gated', plan_id: 'plan-timeout', ...org } });
      const done = await client.waitForInstance('slow-1', p.body.operation, 30_000);
      assert.equal(done.body.state, 'failed');
      assert.match(done.body.description, /maximum_polling_duration of 1 s/);
    });

    test('plan and parameter update, then a context-only update', async () => {
      const p = await call('PUT', '/v2/service_instances/upd-1?accepts_incomplete=true', { body: { ...FAST, ...org, parameters: { size: 1 } } });
      await client.waitForInstance('upd-1', p.body.operation);
      const u = await call('PATCH', '/v2/service_instances/upd-1?accepts_incomplete=true', {
        body: { service_id: 'svc-gated', plan_id: 'plan-held', previous_values: { plan_id: 'plan-fast' } },
      });
      assert.equal(u.status, 202, u.text);
      const same = await call('PATCH', '/v2/service_instances/upd-1?accepts_incomplete=true', { body: { service_id: 'svc-gated', plan_id: 'plan-held' } });
      assert.equal(same.status, 202);
      assert.equal(same.body.operation, u.body.operation);
      const fetchDuring = await call('GET', '/v2/service_instances/upd-1');
      assert.equal(fetchDuring.status, 422, 'fetch during an update is a ConcurrencyError');
      assert.equal(fetchDuring.body.error, 'ConcurrencyError');
      // The update to the held plan holds until now, so the fetch above met it running (it raced the worker before).
      release('upd-1');
      assert.equal((await client.waitForInstance('upd-1', u.body.operation)).body.state, 'succeeded');
      const g = await call('GET', '/v2/service_instances/upd-1');
      assert.equal(g.body.plan_id, 'plan-held');
      assert.deepEqual(g.body.parameters, { size: 1 });
      const ctx = await call('PATCH', '/v2/service_instances/upd-1?accepts_incomplete=true', { body: { service_id: 'svc-gated', context: { platform: 'cloudfoundry', instance_name: 'renamed' } } });
      assert.equal(ctx.status, 200);
    });

    test('a failed update says the instance is still usable and the update repeatable', async () => {
      const p = await call('PUT', '/v2/service_instances/updfail-1?accepts_incomplete=true', { body: { ...FAST, ...org } });
      await client.waitForInstance('updfail-1', p.body.operation);
      const u = await call('PATCH', '/v2/service_instances/updfail-1?accepts_incomplete=true', { body: { service_id: 'svc-gated', plan_id: 'plan-failing' } });
      assert.equal(u.status, 202);
      const done = await client.waitForInstance('updfail-1', u.body.operation);
      assert.equal(done.body.state, 'failed');
      assert.equal(done.body.instance_usable, true);
      assert.equal(done.body.update_repeatable, true);
      assert.equal((await call('GET', '/v2/service_instances/updfail-1')).body.plan_id, 'plan-fast', 'a failed update changes nothing');
    });

    test('binding rotation copies the predecessor and keeps both valid', async () => {
      const r = await call('PUT', '/v2/service_instances/ready-1/service_bindings/b-rot?accepts_incomplete=true', { body: { ...FAST, predecessor_binding_id: 'b-1' } });
      assert.equal(r.status, 202, r.text);
      assert.equal((await client.waitForBinding('ready-1', 'b-rot', r.body.operation)).body.state, 'succeeded');
      const g = await call('GET', '/v2/service_instances/ready-1/service_bindings/b-rot');
      assert.deepEqual(g.body.parameters, { role: 'reader' });
      assert.equal((await call('GET', '/v2/service_instances/ready-1/service_bindings/b-1')).status, 200);
    });

    test('an unbind during binding halts it; deprovision then succeeds', async () => {
      const p = await call('PUT', '/v2/service_instances/ub-1?accepts_incomplete=true', { body: { ...HELD, ...org } });
      release('ub-1');
      await client.waitForInstance('ub-1', p.body.operation);
      rearm('ub-1');
      const b = await call('PUT', '/v2/service_instances/ub-1/service_bindings/b?accepts_incomplete=true', { body: HELD });
      assert.equal(b.status, 202);
      const busy = await call('DELETE', '/v2/service_instances/ub-1' + q({ ...HELD, accepts_incomplete: 'true' }));
      assert.equal(busy.status, 422, 'deprovision waits for binding operations');
      const u = await call('DELETE', '/v2/service_instances/ub-1/service_bindings/b' + q({ ...HELD, accepts_incomplete: 'true' }));
      assert.equal(u.status, 202);
      assert.equal((await call('GET', `/v2/service_instances/ub-1/service_bindings/b/last_operation?operation=${b.body.operation}`)).body.state, 'failed');
      assert.equal((await client.waitForBinding('ub-1', 'b', u.body.operation)).body.state, 'succeeded');
      assert.equal((await call('GET', '/v2/service_instances/ub-1/service_bindings/b')).status, 404);
      const d = await call('DELETE', '/v2/service_instances/ub-1' + q({ ...HELD, accepts_incomplete: 'true' }));
      assert.equal(d.status, 202);
      assert.equal((await client.waitForInstance('ub-1', d.body.operation)).body.state, 'succeeded');
    });

    test('synchronous lifecycle of a user-provided service', async () => {
      const creds = { uri: 'smtp://mail.example:587', password: 'hunter2' };
      const p = await call('PUT', '/v2/service_instances/ups-2', { body: { ...UPS, ...org, parameters: { credentials: creds } } });
      assert.equal(p.status, 201);
      const b = await call('PUT', '/v2/service_instances/ups-2/service_bindings/b', { body: UPS });
      assert.equal(b.status, 201);
      assert.deepEqual(b.body.credentials, creds);
      const u = await call('PATCH', '/v2/service_instances/ups-2', { body: { service_id: 'svc-ups', parameters: { credentials: { ...creds, password: 'new' } } } });
      assert.equal(u.status, 200);
      assert.equal((await call('DELETE', '/v2/service_instances/ups-2/service_bindings/b' + q(UPS))).status, 200);
      assert.equal((await call('DELETE', '/v2/service_instances/ups-2/service_bindings/b' + q(UPS))).status, 410);
      assert.equal((await call('DELETE', '/v2/service_instances/ups-2' + q(UPS))).status, 200);
      assert.equal((await call('DELETE', '/v2/service_instances/ups-2' + q(UPS))).status, 410);
    });

    test('new user-provided credentials make existing bindings stale (2.16+ metadata); a rotation is current', async () => {
      const UPS_PLAN = q(UPS);
      const creds = { uri: 'smtp://mail.example:587', password: 'hunter2' };
      assert.equal((await call('PUT', '/v2/service_instances/ups-stale', { body: { ...UPS, ...org, parameters: { credentials: creds } } })).status, 201);
      assert.equal((await call('PUT', '/v2/service_instances/ups-stale/service_bindings/old', { body: UPS })).status, 201);
      // An update that leaves the credentials as they were marks nothing.
      assert.equal((await call('PATCH', '/v2/service_instances/ups-stale', { body: { service_id: 'svc-ups', parameters: { credentials: creds } } })).status, 200);
      assert.equal((await call('GET', '/v2/service_instances/ups-stale/service_bindings/old')).body.metadata, undefined);

      const moved = { ...creds, uri: 'smtp://mail2.example:587' };
      assert.equal((await call('PATCH', '/v2/service_instances/ups-stale', { body: { service_id: 'svc-ups', parameters: { credentials: moved } } })).status, 200);
      const stale = await call('GET', '/v2/service_instances/ups-stale/service_bindings/old', { headers: { 'X-Broker-API-Version': '2.16' } });
      assert.equal(stale.status, 200);
      assert.deepEqual(stale.body.credentials, creds, 'the binding still holds what it was given');
      const flag = stale.body.metadata.berth_credentials_stale;
      assert.match(flag.reason, /credentials \(uri\)/);
      assert.doesNotMatch(flag.reason, /mail2/, 'the reason names entries, never values');
      assert.ok(!Number.isNaN(Date.parse(flag.since)));
      assert.equal(stale.body.metadata.expires_at, undefined);
      const old = await call('GET', '/v2/service_instances/ups-stale/service_bindings/old', { headers: { 'X-Broker-API-Version': '2.15' } });
      assert.equal(old.body.metadata, undefined, 'binding metadata is 2.16+');

      // A second change keeps the first `since`.
      assert.equal((await call('PATCH', '/v2/service_instances/ups-stale', { body: { service_id: 'svc-ups', parameters: { credentials: { ...moved, password: 'p2' } } } })).status, 200);
      const again = (await call('GET', '/v2/service_instances/ups-stale/service_bindings/old')).body.metadata.berth_credentials_stale;
      assert.equal(again.since, flag.since);
      assert.match(again.reason, /credentials \(password\)/);

      const rotated = await call('PUT', '/v2/service_instances/ups-stale/service_bindings/new', { body: { ...UPS, predecessor_binding_id: 'old' } });
      assert.equal(rotated.status, 201, rotated.text);
      assert.deepEqual(rotated.body.credentials, { ...moved, password: 'p2' });
      assert.equal(rotated.body.metadata, undefined, 'the successor is current');
      assert.equal((await call('GET', '/v2/service_instances/ups-stale/service_bindings/new')).body.metadata, undefined);
      assert.ok((await call('GET', '/v2/service_instances/ups-stale/service_bindings/old')).body.metadata.berth_credentials_stale, 'the predecessor stays stale until unbound');
      assert.equal((await call('DELETE', '/v2/service_instances/ups-stale/service_bindings/old' + UPS_PLAN)).status, 200);
      assert.equal((await call('DELETE', '/v2/service_instances/ups-stale/service_bindings/new' + UPS_PLAN)).status, 200);
      assert.equal((await call('DELETE', '/v2/service_instances/ups-stale' + UPS_PLAN)).status, 200);
    });

    test('instance metadata stays within 4,096 bytes: the oversized attribute is left out, the rest kept', async () => {
      const SYNC = { service_id: 'svc-gated', plan_id: 'plan-sync' };
      const r = await call('PUT', '/v2/service_instances/meta-big', { body: { ...SYNC, ...org, parameters: { metadata_filler: 5000 } }, headers: { 'X-Broker-API-Version': '2.15' } });
      assert.equal(r.status, 201, r.text);
      assert.deepEqual(r.body.metadata, { labels: { tier: 'sync' }, attributes: { 'berth.test/note': 'kept' } });
      const small = await call('PUT', '/v2/service_instances/meta-small', { body: { ...SYNC, ...org, parameters: { metadata_filler: 3000 } } });
      assert.equal(small.body.metadata.attributes['berth.test/filler'].length, 3000, 'within the bound nothing is cut');
      assert.ok(Buffer.byteLength(JSON.stringify(small.body.metadata)) <= 4096);
      const g = await call('GET', '/v2/service_instances/meta-big');
      assert.deepEqual(g.body.metadata, r.body.metadata, 'what is stored is what was answered');
      for (const id of ['meta-big', 'meta-small']) assert.equal((await call('DELETE', `/v2/service_instances/${id}` + q(SYNC))).status, 200);
    });

    test('100 concurrent identical PUTs create one instance with consistent answers', async () => {
      const body = { ...HELD, ...org, parameters: {} };
      const replies = await Promise.all(Array.from({ length: 100 }, () => call('PUT', '/v2/service_instances/race-1?accepts_incomplete=true', { body })));
      const statuses = new Set(replies.map((r) => r.status));
      assert.deepEqual([...statuses], [202], replies.map((r) => r.status + r.text).join('\n'));
      assert.equal(new Set(replies.map((r) => r.body.operation)).size, 1, 'one operation for all');
      const rows = await t.berth.stores.knex('instances').where({ id: 'race-1' }).count({ n: '*' });
      assert.equal(Number(rows[0]!.n), 1);
      const ops = await t.berth.stores.knex('operations').where({ instance_id: 'race-1' }).count({ n: '*' });
      assert.equal(Number(ops[0]!.n), 1);
      release('race-1');
      await client.waitForInstance('race-1', replies[0]!.body.operation);
      const after = await Promise.all(Array.from({ length: 20 }, () => call('PUT', '/v2/service_instances/race-1?accepts_incomplete=true', { body })));
      assert.deepEqual([...new Set(after.map((r) => r.status))], [200]);
    });

    test('100 concurrent PUTs with different attributes: one wins, the rest get 409', async () => {
      const replies = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          call('PUT', '/v2/service_instances/race-2?accepts_incomplete=true', {
            body: { ...(i % 2 ? FAST : HELD), ...org, parameters: i % 2 ? { name: `n${i}` } : undefined, space_guid: `space-${i}` },
          }),
        ),
      );
      const accepted = replies.filter((r) => r.status === 202);
      const conflicts = replies.filter((r) => r.status === 409);
      assert.equal(accepted.length, 1, replies.map((r) => r.status).join(','));
      assert.equal(conflicts.length, 99);
      release('race-2');
      await client.waitForInstance('race-2', accepted[0]!.body.operation);
    });

    test('the audit trail records who asked, from which platform', async () => {
      const identity = { username: 'jane', uid: 'u-1', groups: ['devs'] };
      const r = await call('PUT', '/v2/service_instances/audit-1?accepts_incomplete=true', {
        body: { ...FAST, ...org },
        headers: { 'X-Broker-API-Originating-Identity': `kubernetes ${b64(identity)}`, 'X-Broker-API-Request-Identity': 'req-audit-1' },
      });
      assert.equal(r.status, 202);
      await client.waitForInstance('audit-1', r.body.operation);
      const events = await t.berth.stores.audit.forInstance('audit-1');
      const accepted = events.find((e) => e.outcome === 'accepted')!;
      assert.equal(accepted.platform, 'kubernetes');
      assert.deepEqual(accepted.originatingIdentity, identity);
      assert.equal(accepted.requestIdentity, 'req-audit-1');
      assert.equal(accepted.operationId, r.body.operation);
      assert.ok(events.some((e) => e.outcome === 'succeeded'));
    });

    test('secrets are encrypted at rest', async () => {
      const row = await t.berth.stores.knex('instances').where({ id: 'ups-1' }).first();
      assert.doesNotMatch(JSON.stringify(row), /https:\/\/x/);
      const binding = await t.berth.stores.knex('bindings').where({ instance_id: 'ready-1', id: 'b-1' }).first();
      assert.match(binding.credentials_enc, /^v2:test:/);
      assert.doesNotMatch(binding.credentials_enc, /secret/);
    });
  });
}

export { TEST_CREDENTIALS };
