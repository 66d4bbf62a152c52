// `berth doctor --broker URL`: conformance checks against any running Open Service Broker.
// Everything goes through the typed OSB client (src/osb-client); what a platform must never
// send (a malformed body, no version header) goes through its `send`. Every instance and
// binding the checks create is recorded in the context before the request that creates it,
// so the last check removes them whatever happened in between.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { OsbClient, OsbError, type CatalogPlan, type CatalogService, type LastOperation, type OsbClientOptions } from '../osb-client/index.ts';
import { checkPublishedCatalog } from './catalog.ts';
import { fail, line, pass, skip, warn, type Check, type Outcome } from './check.ts';
import { timing } from './report.ts';

/** The versions Berth speaks; a broker is asked about each. */
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

const CONTEXT = { platform: 'berth-doctor' };
const ORG = { organization_guid: 'berth-doctor', space_guid: 'berth-doctor' };

interface Waited {
  final: LastOperation | undefined;
  polls: number;
  retryAfter: number[];
  elapsedMs: number;
  timedOut: boolean;
}

/** Polls until the operation leaves "in progress", at the broker's Retry-After (else the interval), up to the timeout. */
async function waitFor(ctx: BrokerContext, poll: () => Promise<LastOperation>): Promise<Waited> {
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
function pollingOutcome(what: string, w: Waited, maxPollingSeconds: number | undefined): Outcome {
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
const settle = <T>(p: Promise<T>): Promise<T | Error> => p.catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
const statusOf = (err: unknown) => (err instanceof OsbError ? err.status : undefined);
const said = (err: OsbError) => `HTTP ${err.status}${err.error ? ` ${err.error}` : ''}${err.description ? `: ${err.description}` : ''}`;

// ---- checks ------------------------------------------------------------------------------

const versionNegotiation: Check<BrokerContext> = {
  id: 'api-version',
  title: 'API version negotiation',
  async run(ctx) {
    const accepted: string[] = [];
    const refused: string[] = [];
    for (const v of API_VERSIONS) {
      const a = await ctx.clientFor(v).send('GET', 'v2/catalog');
      if (a.status === 200) accepted.push(v);
      else refused.push(`${v} (HTTP ${a.status})`);
    }
    const lines: Outcome[] = [];
    if (accepted.length === 0) {
      lines.push(fail(`the broker accepts none of X-Broker-API-Version ${API_VERSIONS.join(', ')}: ${refused.join(', ')}; platforms cannot talk to it`));
    } else {
      ctx.client = ctx.clientFor(accepted.at(-1)!);
      const note = accepted.includes('2.13') ? '' : '; Kubernetes Service Catalog sends 2.13 and will be refused';
      lines.push((note ? warn : pass)(`accepts ${accepted.join(', ')}${refused.length ? `; refuses ${refused.join(', ')}` : ''}${note}; the remaining checks speak ${accepted.at(-1)}`, { accepted }));
    }
    const unsupported = await ctx.client.send('GET', 'v2/catalog', undefined, { headers: { 'X-Broker-API-Version': '1.0' } });
    lines.push(
      line(
        'api-version-unsupported',
        'Unsupported API version refused',
        unsupported.status === 412
          ? pass('X-Broker-API-Version: 1.0 is answered 412 Precondition Failed')
          : fail(`X-Broker-API-Version: 1.0 is answered HTTP ${unsupported.status}, not 412 Precondition Failed: a platform speaking a version the broker does not know is never told so`),
      ),
    );
    const missing = await ctx.client.send('GET', 'v2/catalog', undefined, { headers: { 'X-Broker-API-Version': undefined } });
    lines.push(
      line(
        'api-version-missing',
        'Request without a version header refused',
        missing.status === 412 || missing.status === 400
          ? pass(`a request without X-Broker-API-Version is answered ${missing.status}`)
          : warn(`a request without X-Broker-API-Version is answered HTTP ${missing.status}; the spec asks for 412 Precondition Failed`),
      ),
    );
    return lines;
  },
};

const catalogValidity: Check<BrokerContext> = {
  id: 'catalog',
  title: 'Catalog',
  async run(ctx) {
    const a = await ctx.client.send('GET', 'v2/catalog');
    if (a.status !== 200) return fail(`GET /v2/catalog answered HTTP ${a.status}`);
    if (a.body === undefined) return fail(`GET /v2/catalog is not a JSON object: ${a.text.slice(0, 120)}`);
    const f = checkPublishedCatalog(a.body);
    const counts = `${f.services} offering${f.services === 1 ? '' : 's'}, ${f.plans} plan${f.plans === 1 ? '' : 's'}`;
    const details = { services: f.services, plans: f.plans, problems: f.problems, warnings: f.warnings };
    if (f.problems.length > 0) return fail(`${counts}; platforms reject this catalog:\n${f.problems.join('\n')}${f.warnings.length ? `\n${f.warnings.join('\n')}` : ''}`, details);
    if (f.warnings.length > 0) return warn(`${counts}; valid OSB, but:\n${f.warnings.join('\n')}`, details);
    return pass(`${counts}, valid (required fields, unique ids and names, parameter schemas, maintenance_info)`, details);
  },
};

function provisionBody(ctx: BrokerContext, overrides: Record<string, unknown> = {}) {
  const { service, plan } = ctx.target!;
  return { service_id: service.id, plan_id: plan.id, ...ORG, context: CONTEXT, parameters: ctx.parameters, ...overrides };
}

const provision: Check<BrokerContext> = {
  id: 'provision',
  title: 'Provision',
  async run(ctx) {
    if (!ctx.target) return skip('pass --plan OFFERING/PLAN (and -c parameters) to provision, bind, unbind and deprovision a test instance');
    const { service, plan } = ctx.target;
    const id = randomUUID();
    ctx.created.instances.set(id, { service_id: service.id, plan_id: plan.id });
    const lines: Outcome[] = [];
    const started = Date.now();
    const first = await settle(ctx.client.provision(id, provisionBody(ctx)));
    if (first instanceof Error) return fail(`${first instanceof OsbError ? said(first) : first.message}; a platform's provision of this plan fails the same way${statusOf(first) === 400 ? ' (are the -c/-p parameters right for the plan?)' : ''}`);
    const answered = Date.now() - started;
    ctx.planIsAsync = first.outcome === 'accepted';
    const poll = () => ctx.client.instanceLastOperation(id, { service_id: service.id, plan_id: plan.id, ...(first.operation ? { operation: first.operation } : {}) });

    if (first.outcome === 'accepted') {
      // Repeated at once, while the create runs: the same operation (or 200 if it already finished).
      const again = await ctx.client.provision(id, provisionBody(ctx));
      lines.push(
        line(
          'provision-repeat-in-progress',
          'Identical provision while in progress',
          again.outcome === 'accepted' && again.operation === first.operation
            ? pass(`202 Accepted with the same operation${first.operation ? ` (${first.operation})` : ''}`)
            : again.outcome === 'exists'
              ? pass('200 OK (the instance was already provisioned)')
              : fail(
                  again.outcome === 'accepted'
                    ? `202 Accepted with another operation ("${again.operation}", first "${first.operation}"): a platform that repeats a timed-out request would poll the wrong operation`
                    : `HTTP ${again.status}: a repeat of an identical request must be 202 with the same operation, or 200`,
                ),
        ),
      );
      const w = await waitFor(ctx, poll);
      const total = Date.now() - started;
      if (w.timedOut || w.final?.state !== 'succeeded') {
        lines.unshift(
          fail(
            w.timedOut
              ? `accepted (202) but not finished after ${timing(w.elapsedMs)}`
              : `the asynchronous provision ${w.final?.state === 'gone' ? 'disappeared (last_operation 410)' : 'failed'}${w.final?.description ? `: ${w.final.description}` : ''}`,
            { instanceId: id, durationMs: total },
          ),
        );
        lines.push(line('async-polling', 'Asynchronous polling (provision)', pollingOutcome('provision', w, plan.maximum_polling_duration)));
        return lines;
      }
      ctx.provisioned = id;
      lines.unshift(pass(`202 Accepted in ${timing(answered)}, succeeded after ${timing(total)}`, { instanceId: id, durationMs: total, async: true }));
      lines.push(line('async-polling', 'Asynchronous polling (provision)', pollingOutcome('provision', w, plan.maximum_polling_duration)));
    } else if (first.outcome === 'created') {
      ctx.provisioned = id;
      lines.unshift(pass(`201 Created in ${timing(answered)} (synchronous)`, { instanceId: id, durationMs: answered, async: false }));
    } else {
      ctx.provisioned = id;
      lines.unshift(warn(`answered 200 OK for a new instance in ${timing(answered)}; the spec says 201 Created (200 means "already existed"), so platforms may treat it as someone else's`, { instanceId: id, durationMs: answered }));
    }

    const repeat = await settle(ctx.client.provision(id, provisionBody(ctx)));
    lines.push(
      line(
        'provision-repeat',
        'Identical provision repeated',
        repeat instanceof Error
          ? fail(`${repeat instanceof OsbError ? said(repeat) : repeat.message}; an identical repeat of a finished provision must be 200 OK`)
          : repeat.status === 200
            ? pass('200 OK')
            : fail(`HTTP ${repeat.status}; an identical repeat of a finished provision must be 200 OK (platforms repeat requests whose answer they lost)`),
      ),
    );

    // A conflicting repeat: another plan of the offering when there is one, else another space (no schema can refuse
    // that), else other parameters; a 400 (the changed request is invalid before the broker compares) tries the next.
    const otherPlan = service.plans.find((p) => p.id !== plan.id);
    const candidates: Array<[string, ReturnType<typeof provisionBody>]> = [
      ...(otherPlan ? [[`plan "${otherPlan.name}"`, provisionBody(ctx, { plan_id: otherPlan.id })] as [string, ReturnType<typeof provisionBody>]] : []),
      ['another space_guid', provisionBody(ctx, { space_guid: `berth-doctor-${randomUUID()}` })],
      ['other parameters', provisionBody(ctx, { parameters: { ...ctx.parameters, berth_doctor_conflict: randomUUID() } })],
    ];
    let conflictOutcome: Outcome | undefined;
    const tried: string[] = [];
    for (const [differs, body] of candidates) {
      const conflict = await settle(ctx.client.provision(id, body));
      if (statusOf(conflict) === 409) {
        conflictOutcome = pass(`409 Conflict for the same instance id with ${differs}`);
        break;
      }
      const got = conflict instanceof OsbError ? said(conflict) : conflict instanceof Error ? conflict.message : `HTTP ${conflict.status}`;
      tried.push(`${differs}: ${got}`);
      if (statusOf(conflict) === 400) continue;
      if (differs === 'another space_guid' && !(conflict instanceof Error)) continue; // a broker may not keep org/space
      conflictOutcome = fail(`${got} for the same instance id with ${differs}; it must be 409 Conflict, or a platform believes the other request succeeded`);
      break;
    }
    conflictOutcome ??= tried.every((t) => / 400|HTTP 400/.test(t))
      ? warn(`every conflicting repeat was refused with 400 before the broker compared it with the instance, so 409 was not tested (${tried.join('; ')})`)
      : fail(`no conflicting repeat was answered 409 Conflict: ${tried.join('; ')}`);
    lines.push(line('provision-conflict', 'Conflicting provision refused', conflictOutcome));

    if (service.instances_retrievable) {
      const fetched = await settle(ctx.client.fetchInstance(id, { service_id: service.id, plan_id: plan.id }));
      lines.push(
        line(
          'fetch-instance',
          'Fetch instance (instances_retrievable)',
          fetched instanceof OsbError ? fail(`GET the instance: ${said(fetched)}; the catalog says instances_retrievable`) : fetched instanceof Error ? fail(fetched.message) : pass('200 OK'),
        ),
      );
    }
    return lines;
  },
};

const bind: Check<BrokerContext> = {
  id: 'bind',
  title: 'Bind',
  async run(ctx) {
    if (!ctx.target) return skip('needs --plan');
    const { service, plan } = ctx.target;
    const instanceId = ctx.provisioned;
    if (!instanceId) return skip('no instance was provisioned');
    if (!(plan.bindable ?? service.bindable)) return skip(`plan "${plan.name}" is not bindable`);
    const id = randomUUID();
    ctx.created.bindings.set(id, { instanceId });
    const body = { service_id: service.id, plan_id: plan.id, bind_resource: { app_guid: 'berth-doctor' }, context: CONTEXT };
    const started = Date.now();
    const first = await settle(ctx.client.bind(instanceId, id, body));
    if (first instanceof Error) return fail(`${first instanceof OsbError ? said(first) : first.message}; a platform's bind fails the same way`);
    const lines: Outcome[] = [];
    let credentials = first.credentials;
    if (first.outcome === 'accepted') {
      const w = await waitFor(ctx, () => ctx.client.bindingLastOperation(instanceId, id, { service_id: service.id, plan_id: plan.id, ...(first.operation ? { operation: first.operation } : {}) }));
      lines.push(line('async-polling-bind', 'Asynchronous polling (bind)', pollingOutcome('bind', w, plan.maximum_polling_duration)));
      if (w.timedOut || w.final?.state !== 'succeeded') {
        lines.unshift(fail(`the asynchronous bind ${w.timedOut ? 'did not finish' : 'failed'}${w.final?.description ? `: ${w.final.description}` : ''}`, { durationMs: Date.now() - started }));
        return lines;
      }
      if (!service.bindings_retrievable) {
        lines.unshift(pass(`202 Accepted, succeeded after ${timing(Date.now() - started)} (the offering is not bindings_retrievable, so its credentials cannot be read back to check)`, { durationMs: Date.now() - started, async: true }));
        return lines;
      }
      credentials = (await ctx.client.fetchBinding(instanceId, id, { service_id: service.id, plan_id: plan.id })).credentials;
    }
    const total = Date.now() - started;
    const kind = first.outcome === 'accepted' ? '202 Accepted, succeeded' : first.outcome === 'created' ? '201 Created' : '200 OK';
    const hasCredentials = credentials && typeof credentials === 'object' && Object.keys(credentials).length > 0;
    lines.unshift(
      first.outcome === 'exists'
        ? warn(`answered 200 OK for a new binding in ${timing(total)}; the spec says 201 Created`, { durationMs: total })
        : hasCredentials
          ? pass(`${kind} in ${timing(total)} with credentials (${Object.keys(credentials!).length} keys)`, { durationMs: total, async: first.outcome === 'accepted' })
          : warn(`${kind} in ${timing(total)} but without credentials; apps get nothing to connect with`, { durationMs: total }),
    );
    if (first.outcome !== 'accepted') {
      const repeat = await settle(ctx.client.bind(instanceId, id, body));
      lines.push(
        line(
          'bind-repeat',
          'Identical bind repeated',
          repeat instanceof Error
            ? fail(`${repeat instanceof OsbError ? said(repeat) : repeat.message}; an identical repeat must be 200 OK with the same credentials`)
            : repeat.status === 200
              ? pass('200 OK')
              : fail(`HTTP ${repeat.status}; an identical repeat of a finished bind must be 200 OK`),
        ),
      );
    }
    return lines;
  },
};

async function remove(ctx: BrokerContext, kind: 'unbind' | 'deprovision', call: () => Promise<{ outcome: string; status: number; operation?: string }>, poll: (operation?: string) => Promise<LastOperation>, maxPolling?: number): Promise<Outcome[]> {
  const started = Date.now();
  const first = await call();
  const lines: Outcome[] = [];
  if (first.outcome === 'accepted') {
    const w = await waitFor(ctx, () => poll(first.operation));
    lines.push(line(`async-polling-${kind}`, `Asynchronous polling (${kind})`, pollingOutcome(kind, w, maxPolling)));
    if (w.timedOut || w.final?.state === 'failed') {
      lines.unshift(fail(`the asynchronous ${kind} ${w.timedOut ? 'did not finish' : 'failed'}${w.final?.description ? `: ${w.final.description}` : ''}`, { durationMs: Date.now() - started }));
      return lines;
    }
    lines.unshift(pass(`202 Accepted, ${w.final?.state === 'gone' ? 'gone (410)' : 'succeeded'} after ${timing(Date.now() - started)}`, { durationMs: Date.now() - started, async: true }));
  } else if (first.outcome === 'deleted') {
    lines.unshift(pass(`200 OK in ${timing(Date.now() - started)} (synchronous)`, { durationMs: Date.now() - started, async: false }));
  } else {
    lines.unshift(fail(`410 Gone for something that existed: the broker lost it`));
    return lines;
  }
  const repeat = await call();
  lines.push(
    line(
      `${kind}-repeat`,
      `${kind === 'unbind' ? 'Unbind' : 'Deprovision'} repeated`,
      repeat.status === 410 ? pass('410 Gone') : warn(`HTTP ${repeat.status} for something already removed; the spec says 410 Gone (platforms accept both)`),
    ),
  );
  return lines;
}

const unbind: Check<BrokerContext> = {
  id: 'unbind',
  title: 'Unbind',
  async run(ctx) {
    const [id, b] = [...ctx.created.bindings.entries()][0] ?? [];
    if (!id || !b || !ctx.target) return skip('no binding was made');
    const ids = { service_id: ctx.target.service.id, plan_id: ctx.target.plan.id };
    const lines = await remove(
      ctx,
      'unbind',
      () => ctx.client.unbind(b.instanceId, id, ids),
      (operation) => ctx.client.bindingLastOperation(b.instanceId, id, { ...ids, ...(operation ? { operation } : {}) }),
      ctx.target.plan.maximum_polling_duration,
    );
    if (lines[0]?.status !== 'fail') ctx.created.bindings.delete(id);
    return lines;
  },
};

const deprovision: Check<BrokerContext> = {
  id: 'deprovision',
  title: 'Deprovision',
  async run(ctx) {
    const [id, ids] = [...ctx.created.instances.entries()][0] ?? [];
    if (!id || !ids || !ctx.target) return skip('no instance was provisioned');
    if (ctx.created.bindings.size > 0) return fail('skipped: its binding could not be removed (see unbind)');
    const lines = await remove(
      ctx,
      'deprovision',
      () => ctx.client.deprovision(id, ids),
      (operation) => ctx.client.instanceLastOperation(id, { ...ids, ...(operation ? { operation } : {}) }),
      ctx.target.plan.maximum_polling_duration,
    );
    if (lines[0]?.status !== 'fail') ctx.created.instances.delete(id);
    return lines;
  },
};

const errorCodes: Check<BrokerContext> = {
  id: 'error-codes',
  title: 'Error codes',
  async run(ctx) {
    const lines: Outcome[] = [];
    const unknown = randomUUID();
    const lo = await ctx.client.send('GET', `v2/service_instances/${unknown}/last_operation`);
    lines.push(
      line(
        'error-unknown-last-operation',
        'last_operation of an unknown instance',
        lo.status === 404 || lo.status === 410
          ? pass(`${lo.status}`)
          : fail(`HTTP ${lo.status}${lo.status === 200 ? ` (state "${String(lo.body?.state)}")` : ''}; it must be 404 Not Found (or 410 Gone): a platform polling a lost instance would wait forever or believe it exists`),
      ),
    );

    const service = ctx.target?.service;
    const plan = ctx.target?.plan;
    const bad = randomUUID();
    const malformed = await ctx.client.send('PUT', `v2/service_instances/${bad}?accepts_incomplete=true`, '{"service_id": ', { headers: { 'Content-Type': 'application/json' } });
    lines.push(
      line(
        'error-malformed-body',
        'Malformed JSON body',
        malformed.status === 400 ? pass('400 Bad Request') : fail(`HTTP ${malformed.status} to a provision whose body is not JSON; it must be 400 Bad Request`),
      ),
    );
    const missingIds = await ctx.client.send('PUT', `v2/service_instances/${bad}?accepts_incomplete=true`, { ...ORG, context: CONTEXT });
    lines.push(
      line(
        'error-missing-fields',
        'Provision without service_id and plan_id',
        missingIds.status === 400 ? pass('400 Bad Request') : fail(`HTTP ${missingIds.status} to a provision without service_id and plan_id; it must be 400 Bad Request`),
      ),
    );
    const unknownPlan = await ctx.client.send('PUT', `v2/service_instances/${bad}?accepts_incomplete=true`, { service_id: service?.id ?? randomUUID(), plan_id: randomUUID(), ...ORG, context: CONTEXT });
    lines.push(
      line(
        'error-unknown-plan',
        'Provision of an unknown plan',
        unknownPlan.status === 400 ? pass('400 Bad Request') : fail(`HTTP ${unknownPlan.status} to a provision naming a plan id not in the catalog; it must be 400 Bad Request`),
      ),
    );
    for (const a of [malformed, missingIds, unknownPlan]) {
      if (a.status >= 200 && a.status < 300) ctx.created.instances.set(bad, { service_id: service?.id ?? '', plan_id: plan?.id ?? '' });
    }

    if (ctx.target && ctx.planIsAsync) {
      const id = randomUUID();
      const sync = await ctx.client.send('PUT', `v2/service_instances/${id}`, provisionBody(ctx));
      if (sync.status >= 200 && sync.status < 300) ctx.created.instances.set(id, { service_id: service!.id, plan_id: plan!.id });
      lines.push(
        line(
          'error-async-required',
          'Asynchronous plan without accepts_incomplete',
          sync.status === 422 && sync.body?.error === 'AsyncRequired'
            ? pass('422 AsyncRequired')
            : sync.status === 422
              ? warn(`422 but error "${String(sync.body?.error)}", not "AsyncRequired"; platforms look at the error code to retry with accepts_incomplete=true`)
              : sync.status === 201
                ? pass('201 Created: the broker can provision this plan synchronously when asked to')
                : fail(`HTTP ${sync.status}; a broker that can only provision this plan asynchronously must answer 422 AsyncRequired when accepts_incomplete is missing${sync.status === 202 ? ' (it answered 202 to a platform that said it cannot poll)' : ''}`),
        ),
      );
    } else if (ctx.target) {
      lines.push(line('error-async-required', 'Asynchronous plan without accepts_incomplete', skip(`plan "${ctx.target.plan.name}" provisions synchronously`)));
    }
    return lines;
  },
};

/** Always last: removes whatever the checks made and could not remove. */
export const cleanup: Check<BrokerContext> = {
  id: 'cleanup',
  title: 'Clean-up',
  async run(ctx) {
    if (ctx.created.instances.size === 0 && ctx.created.bindings.size === 0) return ctx.target ? pass('nothing left behind') : skip('nothing was created');
    const found = `${ctx.created.instances.size} instance(s) and ${ctx.created.bindings.size} binding(s)`;
    const left: string[] = [];
    for (const [bindingId, b] of ctx.created.bindings) {
      const ids = ctx.created.instances.get(b.instanceId)!;
      try {
        const r = await ctx.client.unbind(b.instanceId, bindingId, ids);
        if (r.outcome === 'accepted') await waitFor(ctx, () => ctx.client.bindingLastOperation(b.instanceId, bindingId, { ...ids, ...(r.operation ? { operation: r.operation } : {}) }));
        ctx.created.bindings.delete(bindingId);
      } catch (err) {
        left.push(`binding ${bindingId} of instance ${b.instanceId} (${err instanceof Error ? err.message : String(err)})`);
      }
    }
    for (const [instanceId, ids] of ctx.created.instances) {
      try {
        const r = await ctx.client.deprovision(instanceId, ids);
        if (r.outcome === 'accepted') {
          const w = await waitFor(ctx, () => ctx.client.instanceLastOperation(instanceId, { ...ids, ...(r.operation ? { operation: r.operation } : {}) }));
          if (w.timedOut || w.final?.state === 'failed') throw new Error(`deprovision ${w.timedOut ? 'did not finish' : `failed: ${w.final?.description ?? ''}`}`);
        }
        ctx.created.instances.delete(instanceId);
      } catch (err) {
        left.push(`instance ${instanceId} (${err instanceof Error ? err.message : String(err)})`);
      }
    }
    if (left.length > 0) return fail(`could not remove what the checks created; remove it by hand:\n${left.join('\n')}`, { left });
    return pass(`removed the ${found} earlier checks left behind`);
  },
};

/** The checks of `berth doctor --broker`, in order (cleanup last). */
export const BROKER_CHECKS: Check<BrokerContext>[] = [versionNegotiation, catalogValidity, provision, bind, unbind, deprovision, errorCodes, cleanup];
