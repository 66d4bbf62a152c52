// berth provision | update | upgrade | deprovision, in broker mode.
import { OsbError, type CatalogPlan, type CatalogService, type JsonObject, type LastOperation } from '../../osb-client/index.ts';
import { CliError, EXIT, usageError } from '../errors.ts';
import { formatOf, render } from '../output.ts';
import { firstDifference, parametersOf } from '../parameters.ts';
import type { Options } from '../program.ts';
import { instanceObject, now, refuseKubernetesFlags, reportDelete, waitSettings, withSession } from './common.ts';
import type { Session } from './session.ts';
import { parameterDigests, type InstanceEntry, type OperationEntry } from './state.ts';
import { instanceView } from './views.ts';
import { waitForOperation } from './wait.ts';
import type { ProgressStream } from '../progress.ts';
import { upgradeAll } from './upgrade-all.ts';

const NAME = /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/;

export function checkName(name: string, what: string): void {
  if (!NAME.test(name)) throw usageError(`${what} name "${name}" must be lower-case letters, digits, "-" or "." (at most 63, starting and ending with a letter or digit), as Kubernetes names are`);
}

// OSB requires an organization and space on every provision (older brokers read nothing else).
// The same fixed values from every machine, so a repeat from another machine is still identical.
const PLATFORM_IDS = { organization_guid: 'berth-cli', space_guid: 'berth-cli' };

type Verb = OperationEntry['type'];
const GERUND: Record<Verb, string> = { provision: 'provisioning', update: 'updating', upgrade: 'upgrading', deprovision: 'deprovisioning', bind: 'binding', unbind: 'unbinding' };

/** Prints the instance after a verb: `instance/NAME created` by default, or the object in the -o format. */
async function printInstance(s: Session, name: string, opts: Options, sentence: string): Promise<void> {
  const format = opts.output === undefined ? undefined : formatOf(opts.output);
  if (format === undefined) {
    process.stdout.write(`instance/${name} ${sentence}\n`);
    return;
  }
  const entry = s.state.section().instances[name];
  const object = await instanceObject(s, name, entry, Boolean(opts.showSecrets));
  process.stdout.write(await render([object], instanceView, format, { single: true }));
}

function recordOperation(s: Session, name: string, op: OperationEntry): void {
  s.state.update((section) => {
    const entry = section.instances[name];
    if (entry) entry.last_operation = op;
  });
}

/**
 * Waits for an accepted instance operation (unless --async); throws exit 1 with the broker's description when it
 * fails, exit 3 when --timeout ends first.
 */
async function settle(
  s: Session,
  name: string,
  verb: Verb,
  operation: string | undefined,
  opts: Options,
  ids: { service_id: string; plan_id: string },
  progress?: ProgressStream,
): Promise<'done' | 'async'> {
  const started = now();
  recordOperation(s, name, { type: verb, id: operation, started_at: started, state: 'in progress' });
  const wait = waitSettings(opts);
  if (wait.async) {
    process.stderr.write(`${GERUND[verb][0]!.toUpperCase()}${GERUND[verb].slice(1)} ${name} is in progress. Use \`berth describe instance ${name}\` to check on it.\n`);
    return 'async';
  }
  const id = s.state.instanceId(name);
  const last: LastOperation = await waitForOperation({
    label: `${GERUND[verb]} ${name}`,
    poll: () => s.client.instanceLastOperation(id, { ...ids, ...(operation ? { operation } : {}) }),
    timeoutMs: wait.timeoutMs,
    intervalMs: wait.intervalMs,
    checkHint: `berth describe instance ${name}`,
    explain: (err) => s.explain(err, `checking on ${GERUND[verb]} ${name}`),
    ...(progress ? { progress } : {}),
  });
  const state = last.state === 'gone' ? 'succeeded' : last.state === 'in progress' ? 'in progress' : last.state;
  if (verb === 'deprovision' && state === 'succeeded') {
    forget(s, name);
    return 'done';
  }
  recordOperation(s, name, { type: verb, id: operation, started_at: started, state, description: last.description, finished_at: now() });
  if (state === 'failed') {
    const next =
      verb === 'provision'
        ? `See \`berth describe instance ${name}\`; remove it with \`berth deprovision ${name}\` before trying again.`
        : verb === 'deprovision'
          ? `See \`berth describe instance ${name}\`; the instance still exists.`
          : `See \`berth describe instance ${name}\`${last.update_repeatable ? '; the broker says the update can be repeated' : ''}.`;
    throw new CliError(EXIT.failed, `${GERUND[verb]} ${name} failed: ${sentence(last.description)} ${next}`);
  }
  return 'done';
}

/** The broker's description as a sentence ending in one full stop. */
export function sentence(description: string | undefined): string {
  const d = (description ?? 'the broker gave no description').trim();
  return /[.!?]$/.test(d) ? d : `${d}.`;
}

function forget(s: Session, name: string): void {
  const id = s.state.instanceId(name);
  s.state.update((section) => {
    delete section.instances[name];
    for (const [b, entry] of Object.entries(section.bindings)) if (entry.instance_id === id) delete section.bindings[b];
  });
}

/** Offering and plan names for catalog ids (the ids themselves when the catalog no longer has them). */
async function namesOf(s: Session, serviceId: unknown, planId: unknown): Promise<{ offering: string; plan: string }> {
  const { services } = await s.catalog();
  const service = services.find((x) => x.id === serviceId);
  return { offering: service?.name ?? String(serviceId ?? ''), plan: service?.plans.find((p) => p.id === planId)?.name ?? String(planId ?? '') };
}

/** The sentence for a provision the broker refused with 409: which field differs from the existing instance. */
async function provisionConflict(s: Session, name: string, requested: { offering: string; plan: string; parameters: JsonObject }, brokerMessage: string): Promise<CliError> {
  let field: string | undefined;
  const known = s.state.section().instances[name];
  try {
    const existing = await s.client.fetchInstance(s.state.instanceId(name));
    const names = await namesOf(s, existing.service_id, existing.plan_id);
    field = firstDifference(names, requested, ['offering', 'plan']);
    if (!field && existing.parameters) field = firstDifference({ parameters: existing.parameters }, requested, ['parameters']);
  } catch {
    // the broker does not let instances be read: what this machine recorded, or the broker's own message
  }
  if (!field && known) field = firstDifference({ offering: known.offering, plan: known.plan }, requested, ['offering', 'plan']);
  if (!field && known?.parameter_digests) {
    const asked = parameterDigests(requested.parameters);
    const key = [...new Set([...Object.keys(known.parameter_digests), ...Object.keys(asked)])].sort().find((k) => known.parameter_digests![k] !== asked[k]);
    if (key) field = `parameters.${key} differs (${known.parameter_digests[key] === undefined ? 'not set on the existing one' : asked[key] === undefined ? 'not given now' : 'another value'})`;
  }
  if (!field && brokerMessage) field = `parameters differ from the existing instance's (${brokerMessage})`;
  const next = field?.startsWith('plan ')
    ? `Change it with \`berth update ${name} --plan ${requested.plan}\`, or pick another name.`
    : field?.startsWith('parameters')
      ? `Change them with \`berth update ${name} -p …\`, or pick another name.`
      : 'Pick another name, or deprovision it first.';
  return new CliError(EXIT.failed, `instance ${name} already exists with different settings: ${field ?? brokerMessage}. ${next}`);
}

export async function provision([name]: string[], opts: Options): Promise<number> {
  checkName(name!, 'instance');
  refuseKubernetesFlags(opts, ['namespace', 'allNamespaces', 'fromSecret', 'label']);
  if (opts.output !== undefined) formatOf(opts.output);
  waitSettings(opts);
  const parameters = await parametersOf(opts);
  return withSession(opts, async (s) => {
    const { service, plan } = await s.planOf(opts.offering, opts.plan);
    const id = s.state.instanceId(name!);
    const known = s.state.section().instances[name!];
    const entry: InstanceEntry = {
      id,
      service_id: service.id,
      plan_id: plan.id,
      offering: service.name,
      plan: plan.name,
      created_at: known?.created_at ?? now(),
      parameter_digests: parameterDigests(parameters ?? {}),
    };
    let result;
    try {
      result = await s.client.provision(id, { service_id: service.id, plan_id: plan.id, context: { platform: 'berth-cli', instance_name: name }, ...PLATFORM_IDS, ...(parameters ? { parameters } : {}) });
    } catch (err) {
      if (err instanceof OsbError && err.status === 409) {
        throw await provisionConflict(s, name!, { offering: service.name, plan: plan.name, parameters: parameters ?? {} }, err.brokerMessage);
      }
      throw s.explain(err, `provisioning ${name}`);
    }
    s.state.update((section) => {
      section.instances[name!] = { ...entry, last_operation: section.instances[name!]?.last_operation };
    });
    if (result.outcome === 'exists') {
      await printInstance(s, name!, opts, 'already exists (unchanged)');
      return EXIT.ok;
    }
    if (result.outcome === 'accepted' && (await settle(s, name!, 'provision', result.operation, opts, entry)) === 'async') {
      await printInstance(s, name!, opts, 'provisioning');
      return EXIT.ok;
    }
    if (result.outcome === 'created') recordOperation(s, name!, { type: 'provision', started_at: entry.created_at, state: 'succeeded', finished_at: now() });
    await printInstance(s, name!, opts, 'created');
    return EXIT.ok;
  });
}

/** The recorded entry, or one rebuilt from the broker (an instance provisioned elsewhere under the same name). */
async function instanceEntry(s: Session, name: string): Promise<InstanceEntry> {
  const known = s.state.section().instances[name];
  if (known) return known;
  const id = s.state.instanceId(name);
  let fetched;
  try {
    fetched = await s.client.fetchInstance(id);
  } catch (err) {
    if (err instanceof OsbError && (err.status === 404 || err.status === 410)) {
      throw new CliError(EXIT.failed, `instance ${name} does not exist at ${s.url} (see \`berth get instances\`).`);
    }
    if (err instanceof OsbError && err.status < 500 && err.status !== 401 && err.status !== 403 && err.status !== 429) {
      throw new CliError(EXIT.failed, `berth has no record of instance ${name} for ${s.url} and the broker does not let it be read (${err.brokerMessage}); it was not provisioned with berth from this machine.`);
    }
    throw s.explain(err, `reading instance ${name}`);
  }
  if (typeof fetched.service_id !== 'string' || typeof fetched.plan_id !== 'string') {
    throw new CliError(EXIT.failed, `the broker's answer for instance ${name} names no service_id and plan_id, which berth needs to change or delete it.`);
  }
  const names = await namesOf(s, fetched.service_id, fetched.plan_id);
  const entry: InstanceEntry = { id, service_id: fetched.service_id, plan_id: fetched.plan_id, ...names, created_at: now() };
  s.state.update((section) => {
    section.instances[name] = entry;
  });
  return entry;
}

export async function update([name]: string[], opts: Options): Promise<number> {
  checkName(name!, 'instance');
  if (opts.output !== undefined) formatOf(opts.output);
  waitSettings(opts);
  const parameters = await parametersOf(opts);
  if (!opts.plan && !parameters) throw usageError(`nothing to update: give --plan, -p key=value or -c (see berth update --help)`);
  return withSession(opts, async (s) => {
    const entry = await instanceEntry(s, name!);
    let target: { service: CatalogService; plan: CatalogPlan } | undefined;
    if (opts.plan) target = await s.planOf(entry.service_id, opts.plan);
    const planId = target?.plan.id ?? entry.plan_id;
    let result;
    try {
      result = await s.client.update(entry.id, {
        service_id: entry.service_id,
        ...(target ? { plan_id: target.plan.id } : {}),
        ...(parameters ? { parameters } : {}),
        previous_values: { service_id: entry.service_id, plan_id: entry.plan_id },
      });
    } catch (err) {
      throw s.explain(err, `updating ${name}`);
    }
    const ids = { service_id: entry.service_id, plan_id: planId };
    if (result.outcome === 'accepted' && (await settle(s, name!, 'update', result.operation, opts, ids)) === 'async') {
      await printInstance(s, name!, opts, 'updating');
      return EXIT.ok;
    }
    s.state.update((section) => {
      const e = section.instances[name!];
      if (e && target) Object.assign(e, { plan_id: target.plan.id, plan: target.plan.name });
      if (e && parameters) e.parameter_digests = { ...e.parameter_digests, ...parameterDigests(parameters) };
      if (e && result.outcome === 'updated') e.last_operation = { type: 'update', started_at: now(), state: 'succeeded', finished_at: now() };
    });
    await printInstance(s, name!, opts, 'updated');
    return EXIT.ok;
  });
}

export async function upgrade([name]: string[], opts: Options): Promise<number> {
  if (opts.all) {
    if (name !== undefined) throw usageError('give an instance name or --all, not both');
    return withSession(opts, (s) => upgradeAll(s, opts, upgradeOne));
  }
  if (name === undefined) throw usageError('name the instance to upgrade, or give --all (see berth upgrade --help)');
  for (const flag of ['plan', 'dryRun', 'concurrency'] as const) {
    if (opts[flag] !== undefined && opts[flag] !== false) throw usageError(`--${flag === 'dryRun' ? 'dry-run' : flag} goes with --all`);
  }
  checkName(name!, 'instance');
  if (opts.output !== undefined) formatOf(opts.output);
  waitSettings(opts);
  return withSession(opts, async (s) => {
    const entry = await instanceEntry(s, name!);
    const { plan } = await s.planOf(entry.service_id, entry.plan_id);
    const target = plan.maintenance_info;
    if (!target) {
      await printInstance(s, name!, opts, `is up to date (plan ${plan.name} has no maintenance version to upgrade to)`);
      return EXIT.ok;
    }
    let current;
    try {
      current = (await s.client.fetchInstance(entry.id, { service_id: entry.service_id, plan_id: entry.plan_id })).maintenance_info;
    } catch (err) {
      if (!(err instanceof OsbError) || err.status === 401 || err.status === 403) throw s.explain(err, `reading instance ${name}`);
    }
    if (current?.version === target.version) {
      await printInstance(s, name!, opts, `is already at maintenance version ${target.version}`);
      return EXIT.ok;
    }
    let result;
    try {
      result = await s.client.update(entry.id, {
        service_id: entry.service_id,
        plan_id: entry.plan_id,
        maintenance_info: target,
        previous_values: { service_id: entry.service_id, plan_id: entry.plan_id, ...(current ? { maintenance_info: current } : {}) },
      });
    } catch (err) {
      throw s.explain(err, `upgrading ${name}`);
    }
    if (result.outcome === 'accepted' && (await settle(s, name!, 'upgrade', result.operation, opts, entry)) === 'async') {
      await printInstance(s, name!, opts, 'upgrading');
      return EXIT.ok;
    }
    await printInstance(s, name!, opts, `upgraded to maintenance version ${target.version}`);
    return EXIT.ok;
  });
}

export async function deprovision([name]: string[], opts: Options): Promise<number> {
  checkName(name!, 'instance');
  waitSettings(opts);
  return withSession(opts, async (s) => {
    let entry: InstanceEntry;
    try {
      entry = await instanceEntry(s, name!);
    } catch (err) {
      if (err instanceof CliError && /does not exist/.test(err.message)) {
        process.stdout.write(`instance/${name} does not exist (nothing to delete)\n`);
        return EXIT.ok;
      }
      throw err;
    }
    let result;
    try {
      result = await s.client.deprovision(entry.id, { service_id: entry.service_id, plan_id: entry.plan_id });
    } catch (err) {
      throw s.explain(err, `deprovisioning ${name}`);
    }
    return reportDelete(`instance/${name}`, 'deprovisioning', result, (operation) => settle(s, name!, 'deprovision', operation, opts, entry), () => forget(s, name!));
  });
}

/**
 * One instance of `upgrade --all`: sends the update with the plan's maintenance_info and waits (progress as whole
 * lines, several run at once). Returns how it ended; the reason is a sentence.
 */
async function upgradeOne(
  s: Session,
  name: string,
  entry: InstanceEntry,
  target: { version: string; description?: string },
  current: string | undefined,
  opts: Options,
): Promise<'upgraded' | 'in progress'> {
  let result;
  try {
    result = await s.client.update(entry.id, {
      service_id: entry.service_id,
      plan_id: entry.plan_id,
      maintenance_info: target,
      previous_values: { service_id: entry.service_id, plan_id: entry.plan_id, ...(current ? { maintenance_info: { version: current } } : {}) },
    });
  } catch (err) {
    throw s.explain(err, `upgrading ${name}`);
  }
  if (result.outcome !== 'accepted') return 'upgraded';
  const lines: ProgressStream = { write: (chunk: string) => process.stderr.write(chunk) };
  return (await settle(s, name, 'upgrade', result.operation, opts, entry, lines)) === 'async' ? 'in progress' : 'upgraded';
}
