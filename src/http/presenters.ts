// The broker's answers as OSB response bodies, shaped by the caller's API
// version (osb/versions.ts), and when to poll again.
import type { FetchedBinding, FetchedInstance, InstanceAnswer, OperationStatus } from '../broker/types.ts';
import type { JsonObject } from '../osb/model.ts';
import { since } from '../osb/versions.ts';
import type { BindingRecord } from '../store/bindings.ts';
import type { Reply } from './reply.ts';

/** The provision/update response body. */
export function instanceBody(answer: InstanceAnswer, apiMinor: number): JsonObject {
  const body: JsonObject = {};
  if (answer.dashboardUrl) body.dashboard_url = answer.dashboardUrl;
  if (answer.status === 202) body.operation = answer.operation;
  else if (answer.metadata && apiMinor >= since.instanceMetadata) body.metadata = answer.metadata;
  return body;
}

/** A fetched instance (GET). */
export function fetchedInstanceBody({ instance, parametersShown }: FetchedInstance, apiMinor: number): JsonObject {
  const body: JsonObject = { service_id: instance.serviceId, plan_id: instance.planId };
  if (instance.dashboardUrl) body.dashboard_url = instance.dashboardUrl;
  if (parametersShown) body.parameters = instance.parameters;
  if (instance.maintenanceVersion && apiMinor >= since.fetchedMaintenanceInfo) body.maintenance_info = { version: instance.maintenanceVersion };
  if (apiMinor >= since.fetchedInstanceMetadata && instance.metadata) body.metadata = instance.metadata;
  return body;
}

/** Binding metadata's Berth field saying an instance update made the credentials out of date: `{since, reason}`. */
export const STALE_CREDENTIALS_FIELD = 'berth_credentials_stale';

/** A binding as bind and GET answer it: what the bind returned, and what the caller's version knows of. */
export function bindingBody(binding: BindingRecord, apiMinor: number): JsonObject {
  const stored = binding.bindResponse ?? {};
  const out: JsonObject = {};
  if (stored.credentials) out.credentials = stored.credentials;
  if (stored.syslog_drain_url) out.syslog_drain_url = stored.syslog_drain_url;
  if (stored.route_service_url) out.route_service_url = stored.route_service_url;
  if (stored.volume_mounts) out.volume_mounts = stored.volume_mounts;
  if (binding.endpoints && apiMinor >= since.bindingEndpoints) out.endpoints = binding.endpoints;
  if (apiMinor >= since.metadata) {
    // Berth's own field beside the spec's expires_at/renew_before (a vendor extension field, which receivers
    // ignore when they do not know it): present only while an instance update has made these credentials stale.
    const metadata: JsonObject = { ...binding.metadata };
    if (binding.credentialsStale) metadata[STALE_CREDENTIALS_FIELD] = { since: binding.credentialsStale.since, reason: binding.credentialsStale.reason };
    if (Object.keys(metadata).length > 0) out.metadata = metadata;
  }
  return out;
}

export function fetchedBindingBody({ binding, parametersShown }: FetchedBinding, apiMinor: number): JsonObject {
  const body = bindingBody(binding, apiMinor);
  if (parametersShown) body.parameters = binding.parameters;
  return body;
}

/** A 202's body, or `{}`. */
export function deleteBody(answer: { status: 200 } | { status: 202; operation: string }): JsonObject {
  return answer.status === 202 ? { operation: answer.operation } : {};
}

const FLOOR_SECONDS = 1;
const CEILING_SECONDS = 15;

/**
 * Seconds a platform should wait before polling an unfinished operation again.
 * Most operations end within a second or two, so a fresh one is polled after
 * the 1 s floor; the longer one has run (a Helm install waiting for its pods,
 * a retry backing off), the longer the wait: a quarter of its age, so a poll
 * lands at most ~25 % after the end, capped at 15 s and never past the plan's
 * deadline (maximum_polling_duration), when the outcome is certain to be known.
 */
export function retryAfterSeconds(op: { startedAt: Date; deadlineAt: Date | undefined }, now = Date.now()): number {
  const ageSeconds = Math.max(0, now - op.startedAt.getTime()) / 1000;
  let seconds = Math.min(CEILING_SECONDS, Math.ceil(ageSeconds / 4));
  if (op.deadlineAt) seconds = Math.min(seconds, Math.ceil((op.deadlineAt.getTime() - now) / 1000));
  return Math.max(FLOOR_SECONDS, seconds);
}

/** A last_operation answer (200 with Retry-After while in progress); a 410 is thrown by the route. */
export function lastOperationReply(status: OperationStatus): Reply {
  const body: JsonObject = { state: status.state, description: status.description };
  if (status.instanceUsable !== undefined) body.instance_usable = status.instanceUsable;
  if (status.updateRepeatable !== undefined) body.update_repeatable = status.updateRepeatable;
  return { status: 200, body, headers: status.state === 'in progress' ? { 'Retry-After': String(retryAfterSeconds(status)) } : {} };
}
