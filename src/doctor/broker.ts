// `berth doctor --broker URL`: conformance checks against any running Open Service Broker.
// Everything goes through the typed OSB client (src/osb-client); what a platform must never
// send (a malformed body, no version header) goes through its `send`. Every instance and
// binding the checks create is recorded in the context before the request that creates it,
// so the last check removes them whatever happened in between.
import { randomUUID } from 'node:crypto';
import { checkPublishedCatalog } from './catalog.ts';
import { fail, line, pass, skip, warn, type Check, type Outcome } from './check.ts';
import { API_VERSIONS, CONTEXT, ORG, provisionBody, type BrokerContext } from './broker-context.ts';
import { bind, cleanup, deprovision, provision, unbind } from './round-trip.ts';

export { API_VERSIONS, brokerContext, type BrokerContext } from './broker-context.ts';
export { cleanup } from './round-trip.ts';

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

export const BROKER_CHECKS: Check<BrokerContext>[] = [versionNegotiation, catalogValidity, provision, bind, unbind, deprovision, errorCodes, cleanup];
