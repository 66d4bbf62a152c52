// berth bind | unbind, in broker mode.
import { OsbError, type JsonObject, type LastOperation } from '../../osb-client/index.ts';
import { CliError, EXIT } from '../errors.ts';
import { formatOf, render } from '../output.ts';
import { firstDifference, parametersOf } from '../parameters.ts';
import type { Options } from '../program.ts';
import { bindingObject, now, refuseKubernetesFlags, reportDelete, waitSettings, withSession } from './common.ts';
import { checkName, sentence } from './instances.ts';
import type { Session } from './session.ts';
import type { BindingEntry, InstanceEntry, OperationEntry } from './state.ts';
import { bindingView } from './views.ts';
import { waitForOperation } from './wait.ts';

async function printBinding(s: Session, name: string, opts: Options, sentence: string): Promise<void> {
  const format = opts.output === undefined ? undefined : formatOf(opts.output);
  if (format === undefined) {
    process.stdout.write(`binding/${name} ${sentence}\n`);
    return;
  }
  const entry = s.state.section().bindings[name]!;
  process.stdout.write(await render([await bindingObject(s, name, entry, Boolean(opts.showSecrets))], bindingView, format, { single: true }));
}

function recordOperation(s: Session, name: string, op: OperationEntry): void {
  s.state.update((section) => {
    const entry = section.bindings[name];
    if (entry) entry.last_operation = op;
  });
}

async function settle(s: Session, name: string, entry: BindingEntry, verb: 'bind' | 'unbind', operation: string | undefined, opts: Options): Promise<'done' | 'async'> {
  const started = now();
  const gerund = verb === 'bind' ? 'binding' : 'unbinding';
  recordOperation(s, name, { type: verb, id: operation, started_at: started, state: 'in progress' });
  const wait = waitSettings(opts);
  if (wait.async) {
    process.stderr.write(`${verb === 'bind' ? 'Binding' : 'Unbinding'} ${name} is in progress. Use \`berth describe binding ${name}\` to check on it.\n`);
    return 'async';
  }
  const last: LastOperation = await waitForOperation({
    label: `${gerund} ${name}`,
    poll: () => s.client.bindingLastOperation(entry.instance_id, entry.id, { service_id: entry.service_id, plan_id: entry.plan_id, ...(operation ? { operation } : {}) }),
    timeoutMs: wait.timeoutMs,
    intervalMs: wait.intervalMs,
    checkHint: `berth describe binding ${name}`,
    explain: (err) => s.explain(err, `checking on ${gerund} ${name}`),
  });
  if (verb === 'unbind' && (last.state === 'succeeded' || last.state === 'gone')) {
    forget(s, name);
    return 'done';
  }
  const state = last.state === 'gone' ? 'failed' : last.state === 'in progress' ? 'in progress' : last.state;
  recordOperation(s, name, { type: verb, id: operation, started_at: started, state, description: last.description, finished_at: now() });
  if (state === 'failed') {
    throw new CliError(EXIT.failed, `${gerund} ${name} failed: ${sentence(last.description)} See \`berth describe binding ${name}\`.`);
  }
  return 'done';
}

function forget(s: Session, name: string): void {
  s.state.update((section) => {
    delete section.bindings[name];
  });
}

export async function bind([instance]: string[], opts: Options): Promise<number> {
  checkName(instance!, 'instance');
  const name: string = opts.name ?? instance!;
  checkName(name, 'binding');
  refuseKubernetesFlags(opts, ['namespace', 'allNamespaces', 'secretName', 'label']);
  if (opts.output !== undefined) formatOf(opts.output);
  waitSettings(opts);
  const parameters = await parametersOf(opts);
  return withSession(opts, async (s) => {
    const inst: InstanceEntry | undefined = s.state.section().instances[instance!];
    let ids: { service_id: string; plan_id: string };
    if (inst) ids = { service_id: inst.service_id, plan_id: inst.plan_id };
    else {
      try {
        const fetched = await s.client.fetchInstance(s.state.instanceId(instance!));
        ids = { service_id: String(fetched.service_id), plan_id: String(fetched.plan_id) };
      } catch (err) {
        if (err instanceof OsbError && (err.status === 404 || err.status === 410)) throw new CliError(EXIT.failed, `instance ${instance} does not exist at ${s.url}; provision it first (berth provision ${instance} --offering … --plan …).`);
        throw s.explain(err, `reading instance ${instance}`);
      }
    }
    const known = s.state.section().bindings[name];
    if (known && known.instance !== instance) {
      throw new CliError(EXIT.failed, `binding ${name} already exists with different settings: instance is "${known.instance}", not "${instance}". Pick another name with --name.`);
    }
    const entry: BindingEntry = { id: s.state.bindingId(name), instance: instance!, instance_id: s.state.instanceId(instance!), ...ids, created_at: known?.created_at ?? now() };
    let result;
    try {
      result = await s.client.bind(entry.instance_id, entry.id, { ...ids, context: { platform: 'berth-cli', binding_name: name, instance_name: instance }, ...(parameters ? { parameters } : {}) });
    } catch (err) {
      if (err instanceof OsbError && err.status === 409) throw await bindConflict(s, name, entry, parameters ?? {}, err.brokerMessage);
      throw s.explain(err, `binding ${name}`);
    }
    s.state.update((section) => {
      section.bindings[name] = { ...entry, last_operation: section.bindings[name]?.last_operation };
    });
    if (result.outcome === 'exists') {
      await printBinding(s, name, opts, 'already exists (unchanged)');
      return EXIT.ok;
    }
    if (result.outcome === 'accepted' && (await settle(s, name, entry, 'bind', result.operation, opts)) === 'async') {
      await printBinding(s, name, opts, 'binding');
      return EXIT.ok;
    }
    if (result.outcome === 'created') recordOperation(s, name, { type: 'bind', started_at: entry.created_at, state: 'succeeded', finished_at: now() });
    await printBinding(s, name, opts, 'created');
    return EXIT.ok;
  });
}

async function bindConflict(s: Session, name: string, entry: BindingEntry, parameters: JsonObject, brokerMessage: string): Promise<CliError> {
  let field: string | undefined;
  try {
    const existing = await s.client.fetchBinding(entry.instance_id, entry.id, { service_id: entry.service_id, plan_id: entry.plan_id });
    field = firstDifference({ parameters: existing.parameters ?? {} }, { parameters }, ['parameters']);
  } catch {
    // not retrievable: the broker's message is all there is
  }
  return new CliError(EXIT.failed, `binding ${name} already exists with different settings: ${field ?? brokerMessage}. Unbind it first, or pick another name with --name.`);
}

export async function unbind([name]: string[], opts: Options): Promise<number> {
  checkName(name!, 'binding');
  waitSettings(opts);
  return withSession(opts, async (s) => {
    const entry = s.state.section().bindings[name!];
    if (!entry) {
      process.stdout.write(`binding/${name} does not exist (nothing to delete; \`berth get bindings\` lists the bindings berth knows at ${s.url})\n`);
      return EXIT.ok;
    }
    let result;
    try {
      result = await s.client.unbind(entry.instance_id, entry.id, { service_id: entry.service_id, plan_id: entry.plan_id });
    } catch (err) {
      throw s.explain(err, `unbinding ${name}`);
    }
    return reportDelete(`binding/${name}`, 'unbinding', result, (operation) => settle(s, name!, entry, 'unbind', operation, opts), () => forget(s, name!));
  });
}
