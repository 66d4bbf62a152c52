// Request shapes (http/schemas.ts): the first problem, in field order, with a
// description that names the field; the broker's request types come out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { objectBody, parse, schemas } from '../../../src/http/schemas.ts';
import { OsbError } from '../../../src/osb/errors.ts';

function problem(schema: Parameters<typeof parse>[0], value: unknown): string | undefined {
  try {
    parse(schema, value);
    return undefined;
  } catch (err) {
    assert.ok(err instanceof OsbError);
    assert.equal(err.status, 400);
    return err.description;
  }
}

const ORG = { organization_guid: 'o', space_guid: 's' };

test('provision bodies', () => {
  assert.equal(problem(schemas.provisionBody, { service_id: 's' }), 'plan_id is required.');
  assert.equal(problem(schemas.provisionBody, { service_id: 7, plan_id: 'p' }), 'service_id must be a non-empty string.');
  assert.equal(problem(schemas.provisionBody, { service_id: '', plan_id: 'p' }), 'service_id must be a non-empty string.');
  assert.match(problem(schemas.provisionBody, { service_id: 's', plan_id: 'p' })!, /^organization_guid is required when provisioning/);
  assert.match(problem(schemas.provisionBody, { service_id: 's', plan_id: 'p', organization_guid: 'o' })!, /^space_guid is required when provisioning/);
  assert.equal(problem(schemas.provisionBody, { service_id: 's', plan_id: 'p', ...ORG, parameters: [1] }), 'parameters must be a JSON object.');
  assert.equal(problem(schemas.provisionBody, { service_id: 's', plan_id: 'p', ...ORG, maintenance_info: {} }), 'version is required.');
  assert.deepEqual(parse(schemas.provisionBody, { service_id: 's', plan_id: 'p', ...ORG, parameters: { a: 1 }, maintenance_info: { version: '1.0' }, vendor: 'x' }), {
    serviceId: 's',
    planId: 'p',
    context: undefined,
    organizationGuid: 'o',
    spaceGuid: 's',
    parameters: { a: 1 },
    maintenanceVersion: '1.0',
  });
});

test('update and bind bodies', () => {
  assert.equal(problem(schemas.updateBody, { previous_values: 'x', service_id: 's' }), 'previous_values must be a JSON object.');
  assert.equal(problem(schemas.updateBody, {}), 'service_id is required.');
  assert.equal(parse(schemas.updateBody, { service_id: 's' }).planId, undefined);
  assert.equal(problem(schemas.bindBody, { bind_resource: { app_guid: '' }, service_id: 's', plan_id: 'p' }), 'app_guid must be a non-empty string.');
  assert.deepEqual(parse(schemas.bindBody, { bind_resource: { app_guid: 'a', extra: 1 }, service_id: 's', plan_id: 'p' }).bindResource, { app_guid: 'a', extra: 1 });
});

test('ids and queries', () => {
  assert.equal(problem(schemas.instanceParams, { instance_id: 'a\u0000b' }), 'instance_id contains a NUL character or invalid Unicode.');
  assert.equal(problem(schemas.instanceParams, { instance_id: 'x'.repeat(1025) }), 'instance_id is longer than 1024 bytes.');
  assert.equal(problem(schemas.asyncQuery, { accepts_incomplete: 'yes' }), 'Query parameter accepts_incomplete must be "true" or "false".');
  assert.equal(parse(schemas.asyncQuery, {}).accepts_incomplete, false);
  assert.equal(parse(schemas.asyncQuery, { accepts_incomplete: 'true' }).accepts_incomplete, true);
  assert.equal(problem(schemas.deleteQuery, { plan_id: 'p' }), 'Query parameter service_id is required.');
  assert.equal(problem(schemas.lastOperationQuery, { operation: ['a', 'b'] }), 'Query parameter operation must be a non-empty string.');
  assert.deepEqual(parse(schemas.lastOperationQuery, { operation: 'op', plan_id: 'p', service_id: 's' }), { operation: 'op', plan_id: 'p', service_id: 's' });
});

test('a body must be a storable JSON object', () => {
  assert.deepEqual(objectBody(undefined), {});
  assert.throws(() => objectBody([1]), /must be a JSON object/);
  assert.throws(() => objectBody({ a: 'x\u0000' }), /NUL/);
});
