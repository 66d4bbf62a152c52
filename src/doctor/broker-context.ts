// What the broker checks share: the context (clients per API version, the plan under test,
// what was created and must be removed), polling an operation to its end, and the verdict on
// how that polling went.
import { setTimeout as sleep } from 'node:timers/promises';
import { OsbClient, OsbError, type CatalogPlan, type CatalogService, type LastOperation, type OsbClientOptions } from '../osb-client/index.ts';
import { fail, pass, type Outcome } from './check.ts';
import { timing } from './report.ts';

export const API_VERSIONS = ['2.13', '2.14', '2.15', '2.16', '2.17'] as const;

export interface BrokerContext {
  /** How to make a client for one API version (same URL, credentials and CA). */
  clientFor(apiVersion: string): OsbClient;
  /** The client of the highest version the broker accepts (set by the version check; 2.17 until then). */
  client: OsbClient;
  /** --plan, resolved against the catalog; undefined: no round trip. */
  target?: { service: CatalogService; plan: CatalogPlan };
  parameters: Record<string, unknown>;
  /** How long one asynchronous operation may take before the check fails. */
  timeoutMs: number;
  /** Poll interval when the broker sends no Retry-After. */
  intervalMs: number;
  /** Set by the provision check: the plan answered 202. */
  planIsAsync?: boolean;
  /** The instance the provision check made and saw succeed (what bind uses). */
  provisioned?: string;
  /** What the checks made and must remove: instance id → ids; binding ids by instance. */
  created: { instances: Map<string, { service_id: string; plan_id: string }>; bindings: Map<string, { instanceId: string }> };
}

export function brokerContext(base: Omit<OsbClientOptions, 'apiVersion'>, opts: Pick<BrokerContext, 'target' | 'parameters' | 'timeoutMs' | 'intervalMs'>): BrokerContext & { close(): void } {
  const clients = new Map<string, OsbClient>();
  const clientFor = (apiVersion: string) => {
    let c = clients.get(apiVersion);
    if (!c) clients.set(apiVersion, (c = new OsbClient({ ...base, apiVersion })));
    return c;
  };
  return {
    clientFor,
    client: clientFor('2.17'),
    ...opts,
    created: { instances: new Map(), bindings: new Map() },
    close: () => clients.forEach((c) => c.close()),
  };
}

export const CONTEXT = { platform: 'berth-doctor' };
export const ORG = { organization_guid: 'berth-doctor', space_guid: 'berth-doctor' };

export interface Waited {
  final: LastOperation | undefined;
  polls: number;
  retryAfter: number[];
  elapsedMs: number;
  timedOut: boolean;
}

/** Polls until the operation leaves "in progress", at the broker's Retry-After (else the interval), up to the timeout. */
export async function waitFor(ctx: BrokerContext, poll: () => Promise<LastOperation>): Promise<Waited> {
  const started = Date.now();
  const retryAfter: number[] = [];
  let polls = 0;
  let last: LastOperation | undefined;
  for (;;) {
    last = await poll();
    polls++;
    if (last.retryAfterSeconds !== undefined) retryAfter.push(last.retryAfterSeconds);
    if (last.state !== 'in progress') return { final: last, polls, retryAfter, elapsedMs: Date.now() - started, timedOut: false };
    const left = started + ctx.timeoutMs - Date.now();
    if (left <= 0) return { final: last, polls, retryAfter, elapsedMs: Date.now() - started, timedOut: true };
    const pause = last.retryAfterSeconds !== undefined ? last.retryAfterSeconds * 1000 : ctx.intervalMs;
    await sleep(Math.min(Math.max(pause, 50), left));
  }
}

/** The async-polling line for one waited-for operation. */
export function pollingOutcome(what: string, w: Waited, maxPollingSeconds: number | undefined): Outcome {
  const polled = `${w.polls} poll${w.polls === 1 ? '' : 's'} over ${timing(w.elapsedMs)}`;
  const ra = w.retryAfter.length > 0 ? `Retry-After ${[...new Set(w.retryAfter)].join('/')} s` : 'no Retry-After (platforms poll at their own interval)';
  const details = { polls: w.polls, elapsedMs: w.elapsedMs, retryAfterSeconds: [...new Set(w.retryAfter)] };
  if (w.timedOut) {
    return fail(
      `last_operation of the ${what} still says "in progress" after ${timing(w.elapsedMs)} (${polled}${w.final?.description ? `, "${w.final.description}"` : ''}); the operation never finishes, so a platform would give up and clean up. Raise --timeout if it is merely slow.`,
      details,
    );
  }
  if (maxPollingSeconds !== undefined && w.elapsedMs > maxPollingSeconds * 1000) {
    return fail(`the ${what} took ${timing(w.elapsedMs)}, longer than the plan's maximum_polling_duration (${maxPollingSeconds} s): platforms stop polling and fail it before it ends`, details);
  }
  return pass(`${polled}, ${ra}`, details);
}

/** The answer, or the error it failed with (checks judge both). */
export const settle = <T>(p: Promise<T>): Promise<T | Error> => p.catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
export const statusOf = (err: unknown) => (err instanceof OsbError ? err.status : undefined);
export const said = (err: OsbError) => `HTTP ${err.status}${err.error ? ` ${err.error}` : ''}${err.description ? `: ${err.description}` : ''}`;

export function provisionBody(ctx: BrokerContext, overrides: Record<string, unknown> = {}) {
  const { service, plan } = ctx.target!;
  return { service_id: service.id, plan_id: plan.id, ...ORG, context: CONTEXT, parameters: ctx.parameters, ...overrides };
}
