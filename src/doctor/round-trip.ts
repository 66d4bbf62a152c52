// The round trip on the plan under test (--plan): provision, bind, unbind and deprovision, each
// with its repeats (identical: 200 or the same operation; conflicting: 409), its asynchronous
// polling and its timings; and the clean-up that removes whatever the run left behind.
import { randomUUID } from 'node:crypto';
import { OsbError, type LastOperation } from '../osb-client/index.ts';
import { fail, line, pass, skip, warn, type Check, type Outcome } from './check.ts';
import { timing } from './report.ts';
import { CONTEXT, pollingOutcome, provisionBody, said, settle, statusOf, waitFor, type BrokerContext } from './broker-context.ts';

export const provision: Check<BrokerContext> = {
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

export const bind: Check<BrokerContext> = {
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

export const unbind: Check<BrokerContext> = {
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

export const deprovision: Check<BrokerContext> = {
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
