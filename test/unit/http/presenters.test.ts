// OSB bodies by API version and Retry-After (http/presenters.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bindingBody, fetchedInstanceBody, instanceBody, lastOperationReply, retryAfterSeconds } from '../../../src/http/presenters.ts';
import type { BindingRecord } from '../../../src/store/bindings.ts';
import type { InstanceRecord } from '../../../src/store/instances.ts';

test('provision/update bodies: instance metadata from 2.15 (Cloud Foundry), the operation on 202', () => {
  assert.deepEqual(instanceBody({ status: 200, dashboardUrl: 'd', metadata: { labels: {} } }, 14), { dashboard_url: 'd' });
  assert.deepEqual(instanceBody({ status: 200, dashboardUrl: 'd', metadata: { labels: {} } }, 15), { dashboard_url: 'd', metadata: { labels: {} } });
  assert.deepEqual(instanceBody({ status: 200, metadata: { labels: {} } }, 16), { metadata: { labels: {} } });
  assert.deepEqual(instanceBody({ status: 202, operation: 'op', dashboardUrl: 'd' }, 17), { dashboard_url: 'd', operation: 'op' });
});

test('a fetched instance: maintenance_info from 2.15, metadata from 2.17, parameters only when shown', () => {
  const instance = { serviceId: 's', planId: 'p', dashboardUrl: undefined, parameters: { a: 1 }, maintenanceVersion: '1.0', metadata: { labels: {} } } as unknown as InstanceRecord;
  assert.deepEqual(fetchedInstanceBody({ instance, parametersShown: false }, 14), { service_id: 's', plan_id: 'p' });
  assert.deepEqual(fetchedInstanceBody({ instance, parametersShown: true }, 16), { service_id: 's', plan_id: 'p', parameters: { a: 1 }, maintenance_info: { version: '1.0' } });
  assert.deepEqual(fetchedInstanceBody({ instance, parametersShown: false }, 17), { service_id: 's', plan_id: 'p', maintenance_info: { version: '1.0' }, metadata: { labels: {} } });
});

test('a binding: what the bind answered; endpoints from 2.15, metadata from 2.16', () => {
  const binding = { bindResponse: { credentials: { u: 'x' }, syslog_drain_url: 's' }, endpoints: [{ host: 'h', ports: ['1'] }], metadata: { expires_at: 't' } } as unknown as BindingRecord;
  assert.deepEqual(bindingBody(binding, 14), { credentials: { u: 'x' }, syslog_drain_url: 's' });
  assert.deepEqual(bindingBody(binding, 16), { credentials: { u: 'x' }, syslog_drain_url: 's', endpoints: [{ host: 'h', ports: ['1'] }], metadata: { expires_at: 't' } });
});

test('Retry-After: 1 s for a fresh operation, a quarter of its age, at most 15 s, never past the deadline', () => {
  const now = 1_000_000;
  const at = (msAgo: number, deadlineIn?: number) => ({ startedAt: new Date(now - msAgo), deadlineAt: deadlineIn === undefined ? undefined : new Date(now + deadlineIn) });
  assert.equal(retryAfterSeconds(at(0), now), 1);
  assert.equal(retryAfterSeconds(at(20_000), now), 5);
  assert.equal(retryAfterSeconds(at(3_600_000), now), 15);
  assert.equal(retryAfterSeconds(at(3_600_000, 3_000), now), 3);
  assert.equal(retryAfterSeconds(at(3_600_000, -5_000), now), 1);
});

test('last_operation: Retry-After only while in progress; usability as the status says', () => {
  const started = { startedAt: new Date(), deadlineAt: undefined, kind: 'update' as const };
  const running = lastOperationReply({ ...started, state: 'in progress', description: 'Updating' });
  assert.deepEqual(running.body, { state: 'in progress', description: 'Updating' });
  assert.equal(running.headers?.['Retry-After'], '1');
  const failed = lastOperationReply({ ...started, state: 'failed', description: 'no', instanceUsable: true, updateRepeatable: false });
  assert.deepEqual(failed.body, { state: 'failed', description: 'no', instance_usable: true, update_repeatable: false });
  assert.deepEqual(failed.headers, {});
});
