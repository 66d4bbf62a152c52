// berth provision | update | deprovision in Kubernetes mode: ServiceInstance resources, which
// the controller (berth controller) provisions at the broker.
import { GROUP, VERSION, type ServiceInstance } from '../../controller/resources.ts';
import { checkName } from '../broker/instances.ts';
import { waitSettings } from '../broker/common.ts';
import { CliError, EXIT, usageError } from '../errors.ts';
import { formatOf, render } from '../output.ts';
import { firstDifference, parametersOf } from '../parameters.ts';
import type { Options } from '../program.ts';
import { createResource, deleteResource, getResource, waitForResource } from './objects.ts';
import { isMissingObject, openKubeSession } from './session.ts';
import { instanceView } from './views.ts';

/** `--label k=v` flags as metadata.labels. */
export function labelsOf(opts: Options): Record<string, string> | undefined {
  const pairs: string[] = opts.label ?? [];
  if (pairs.length === 0) return undefined;
  return Object.fromEntries(
    pairs.map((p) => {
      const eq = p.indexOf('=');
      if (eq <= 0) throw usageError(`--label ${p} is not key=value`);
      return [p.slice(0, eq), p.slice(eq + 1)];
    }),
  );
}

/** `--from-secret SECRET[/KEY]`: a Secret key holding a JSON object of parameters (KEY defaults to "parameters"). */
function parametersFrom(opts: Options): ServiceInstance['spec']['parametersFrom'] {
  if (!opts.fromSecret) return undefined;
  const [name, key = 'parameters', ...rest] = String(opts.fromSecret).split('/');
  if (!name || rest.length > 0) throw usageError(`--from-secret ${opts.fromSecret} is not SECRET or SECRET/KEY`);
  return [{ secretKeyRef: { name, key } }];
}

export async function printResource(o: ServiceInstance, opts: Options, sentence: string, view = instanceView, kind = 'serviceinstance'): Promise<void> {
  const format = opts.output === undefined ? undefined : formatOf(opts.output);
  if (format === undefined) process.stdout.write(`${kind}/${o.metadata.name} ${sentence}\n`);
  else process.stdout.write(await render([o as never], view as never, format, { single: true }));
}

export async function provision([name]: string[], opts: Options): Promise<number> {
  checkName(name!, 'instance');
  if (opts.output !== undefined) formatOf(opts.output);
  const wait = waitSettings(opts);
  const parameters = await parametersOf(opts);
  const labels = labelsOf(opts);
  const s = await openKubeSession(opts);
  const spec: ServiceInstance['spec'] = { offering: opts.offering, plan: opts.plan, ...(parameters ? { parameters } : {}), ...(parametersFrom(opts) ? { parametersFrom: parametersFrom(opts) } : {}) };
  const sentence = await createResource<ServiceInstance>(s, 'ServiceInstance', name!, labels, spec, (existing) => {
    const field = firstDifference(
      { offering: existing.spec.offering, plan: existing.spec.plan, parameters: existing.spec.parameters ?? {}, parametersFrom: existing.spec.parametersFrom ?? [] },
      { offering: spec.offering, plan: spec.plan, parameters: spec.parameters ?? {}, parametersFrom: spec.parametersFrom ?? [] },
      ['offering', 'plan', 'parameters', 'parametersFrom'],
    );
    if (!field) return undefined;
    const next = field.startsWith('plan ') || field.startsWith('parameters') ? `Change it with \`berth update ${name} …\`, or pick another name.` : 'Pick another name, or deprovision it first.';
    return `instance ${name} already exists in namespace ${s.namespace} with different settings: ${field}. ${next}`;
  });
  const check = `berth describe instance ${name} -n ${s.namespace}`;
  if (wait.async) {
    if (sentence === 'created') process.stderr.write(`Provisioning ${name} is in progress. Use \`${check}\` to check on it.\n`);
    await printResource((await getResource(s, 'ServiceInstance', s.namespace, name!)) as ServiceInstance, opts, sentence);
    return EXIT.ok;
  }
  const ready = (await waitForResource(s, 'ServiceInstance', s.namespace, name!, 'ready', { label: `provisioning ${name}`, ...wait, checkHint: check })) as ServiceInstance;
  await printResource(ready, opts, sentence);
  return EXIT.ok;
}

export async function update([name]: string[], opts: Options): Promise<number> {
  checkName(name!, 'instance');
  if (opts.output !== undefined) formatOf(opts.output);
  const wait = waitSettings(opts);
  const parameters = await parametersOf(opts);
  if (!opts.plan && !parameters && !opts.fromSecret) throw usageError('nothing to update: give --plan, -p key=value, -c or --from-secret (see berth update --help)');
  const s = await openKubeSession(opts);
  const patch = { spec: { ...(opts.plan ? { plan: opts.plan } : {}), ...(parameters ? { parameters } : {}), ...(opts.fromSecret ? { parametersFrom: parametersFrom(opts) } : {}) } };
  try {
    await s.custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: s.namespace, plural: 'serviceinstances', name: name!, body: patch }, s.mergePatch());
  } catch (err) {
    if (isMissingObject(err)) throw new CliError(EXIT.failed, `instance ${name} does not exist in namespace ${s.namespace} (see berth get instances).`);
    throw s.explain(err, `updating ServiceInstance ${s.namespace}/${name}`);
  }
  const check = `berth describe instance ${name} -n ${s.namespace}`;
  if (wait.async) {
    process.stderr.write(`Updating ${name} is in progress. Use \`${check}\` to check on it.\n`);
    return EXIT.ok;
  }
  const ready = (await waitForResource(s, 'ServiceInstance', s.namespace, name!, 'ready', { label: `updating ${name}`, ...wait, checkHint: check })) as ServiceInstance;
  await printResource(ready, opts, 'updated');
  return EXIT.ok;
}

/**
 * berth upgrade: has the controller read the broker's catalog again (a forced resync), compares the plan's current
 * maintenance version (its ServicePlan) with the one the instance is at (status.maintenanceInfo), and when they
 * differ sets spec.maintenanceInfo.version, which makes the controller send the update; then waits like update.
 */
export async function upgrade([name]: string[], opts: Options): Promise<number> {
  if (opts.all || opts.plan !== undefined || opts.dryRun || opts.concurrency !== undefined) {
    // The controller upgrades what spec.maintenanceInfo.version asks for; a rollout over every ServiceInstance is not built yet.
    throw usageError('--all, --plan, --dry-run and --concurrency work in broker mode (--broker URL); in Kubernetes mode upgrade each instance by name');
  }
  if (name === undefined) throw usageError('name the instance to upgrade (see berth upgrade --help)');
  checkName(name!, 'instance');
  if (opts.output !== undefined) formatOf(opts.output);
  const wait = waitSettings(opts);
  const s = await openKubeSession(opts);
  const { catalog, forceResync } = await import('./inspect.ts');
  let instance = (await getResource(s, 'ServiceInstance', s.namespace, name!)) as ServiceInstance | undefined;
  if (!instance) throw new CliError(EXIT.failed, `instance ${name} does not exist in namespace ${s.namespace} (see berth get instances).`);
  if (!instance.status?.provisioned) throw new CliError(EXIT.failed, `instance ${name} is not provisioned yet; wait for it (berth describe instance ${name}), then upgrade.`);
  instance = await forceResync(s, instance);
  const broker = instance.status?.brokerName ?? instance.spec.brokerRef?.name ?? 'berth';
  const services = await catalog(s);
  const plan = services.find((o) => o.name === instance.spec.offering && (o.metadata as { broker?: string } | undefined)?.broker === broker)?.plans.find((p) => p.name === instance.spec.plan);
  if (!plan) throw new CliError(EXIT.failed, `plan ${instance.spec.offering}/${instance.spec.plan} of broker "${broker}" is not published in the cluster (berth get plans); the controller may not have read the catalog yet.`);
  const target = plan.maintenance_info?.version;
  if (!target) {
    await printResource(instance, opts, `is up to date (plan ${plan.name} has no maintenance version to upgrade to)`);
    return EXIT.ok;
  }
  if (instance.status?.maintenanceInfo?.version === target) {
    await printResource(instance, opts, `is already at maintenance version ${target}`);
    return EXIT.ok;
  }
  try {
    await s.custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace: s.namespace, plural: 'serviceinstances', name: name!, body: { spec: { maintenanceInfo: { version: target } } } },
      s.mergePatch(),
    );
  } catch (err) {
    if (isMissingObject(err)) throw new CliError(EXIT.failed, `instance ${name} does not exist in namespace ${s.namespace} (see berth get instances).`);
    throw s.explain(err, `upgrading ServiceInstance ${s.namespace}/${name}`);
  }
  const from = instance.status?.maintenanceInfo?.version;
  const check = `berth describe instance ${name} -n ${s.namespace}`;
  if (wait.async) {
    process.stderr.write(`Upgrading ${name} to maintenance version ${target} is in progress. Use \`${check}\` to check on it.\n`);
    return EXIT.ok;
  }
  const ready = (await waitForResource(s, 'ServiceInstance', s.namespace, name!, 'ready', { label: `upgrading ${name}`, ...wait, checkHint: check })) as ServiceInstance;
  if (ready.status?.maintenanceInfo?.version !== target) {
    throw new CliError(EXIT.failed, `upgrading ${name}: the instance is ready but reports maintenance version ${ready.status?.maintenanceInfo?.version ?? 'none'}, not ${target}. See \`${check}\`.`);
  }
  await printResource(ready, opts, `upgraded to maintenance version ${target}${from ? ` (from ${from})` : ''}`);
  return EXIT.ok;
}

export async function deprovision([name]: string[], opts: Options): Promise<number> {
  checkName(name!, 'instance');
  return deleteResource('ServiceInstance', name!, opts, { noun: 'instance', doing: 'deprovisioning' });
}
