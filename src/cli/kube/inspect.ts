// berth marketplace | get | describe | trace in Kubernetes mode.
import type { CoreV1Event } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { recorded } from '../../controller/instance-facts.ts';
import { GROUP, RECONCILE_AT_ANNOTATION, VERSION, type RecordedResource, type ServiceBinding, type ServiceInstance } from '../../controller/resources.ts';
import { describeWorkload } from '../../provisioners/helm/describe.ts';
import { drawTree, provisionedNode, resourceNode, splitByBinding, type ProvisionedView, type TreeNode } from '../tree.ts';
import type { CatalogPlan, CatalogService } from '../../osb-client/index.ts';
import { describeOffering } from '../broker/inspect.ts';
import { hidden } from '../broker/common.ts';
import { checkName } from '../broker/instances.ts';
import { offeringView, planView, type PlanRow } from '../broker/views.ts';
import { CliError, EXIT, usageError } from '../errors.ts';
import { age, formatOf, render, table } from '../output.ts';
import type { Options } from '../program.ts';
import { conditionOf, getResource, verdictOf, type Kind, type Resource } from './objects.ts';
import { openKubeSession, type KubeSession } from './session.ts';
import { bindingView, instanceView, withNamespace } from './views.ts';

type Obj = Record<string, any>;

/** The published ServiceOfferings and ServicePlans as OSB catalog services, so both modes print them alike. */
export async function catalog(s: KubeSession): Promise<CatalogService[]> {
  let offerings: Obj, plans: Obj;
  try {
    offerings = await s.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'serviceofferings' });
    plans = await s.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'serviceplans' });
  } catch (err) {
    throw s.explain(err, 'listing the ServiceOfferings and ServicePlans');
  }
  return (offerings.items as Obj[])
    .map((o) => ({
      id: o.spec.id,
      name: o.spec.name,
      description: o.spec.description ?? '',
      bindable: o.spec.bindable ?? false,
      tags: o.spec.tags,
      plan_updateable: o.spec.planUpdateable,
      metadata: { broker: o.spec.broker },
      plans: (plans.items as Obj[])
        .filter((p) => p.spec.offering === o.spec.name && p.spec.broker === o.spec.broker)
        .map(
          (p): CatalogPlan => ({
            id: p.spec.id,
            name: p.spec.name,
            description: p.spec.description ?? '',
            free: p.spec.free,
            bindable: p.spec.bindable,
            maintenance_info: p.spec.maintenanceInfo,
            schemas: p.spec.schemas,
          }),
        ),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export async function marketplace(_: string[], opts: Options): Promise<number> {
  const format = formatOf(opts.output);
  const s = await openKubeSession(opts);
  const services = await catalog(s);
  if (opts.offering === undefined) {
    const rows: PlanRow[] = services.flatMap((service) => service.plans.map((plan) => ({ service, plan })));
    process.stdout.write(await render(rows, planView, format));
    if (rows.length === 0) process.stderr.write('No ServicePlans in the cluster: is the Berth controller running?\n');
    return EXIT.ok;
  }
  const service = services.find((x) => x.name === opts.offering);
  if (!service) throw usageError(`the cluster has no offering "${opts.offering}"; it has ${services.map((x) => x.name).join(', ') || 'none'}`);
  process.stdout.write(format === 'table' || format === 'wide' ? describeOffering(service) : await render([service], offeringView, format, { single: true }));
  return EXIT.ok;
}

const KINDS: Record<string, 'instances' | 'bindings' | 'offerings' | 'plans'> = {
  instance: 'instances',
  instances: 'instances',
  serviceinstance: 'instances',
  serviceinstances: 'instances',
  binding: 'bindings',
  bindings: 'bindings',
  servicebinding: 'bindings',
  servicebindings: 'bindings',
  offering: 'offerings',
  offerings: 'offerings',
  plan: 'plans',
  plans: 'plans',
};

async function list(s: KubeSession, plural: 'serviceinstances' | 'servicebindings'): Promise<Obj[]> {
  try {
    const result = (s.allNamespaces
      ? await s.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural })
      : await s.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: s.namespace, plural })) as Obj;
    return (result.items as Obj[]).sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
  } catch (err) {
    throw s.explain(err, `listing ${plural}`);
  }
}

export async function get([kindWord, name]: string[], opts: Options): Promise<number> {
  const kind = KINDS[kindWord!];
  if (!kind) throw usageError(`cannot get "${kindWord}"; use instances, bindings, offerings or plans`);
  const format = formatOf(opts.output);
  const s = await openKubeSession(opts);
  if (kind === 'offerings' || kind === 'plans') {
    const services = await catalog(s);
    if (kind === 'offerings') {
      const items = name ? services.filter((x) => x.name === name) : services;
      if (name && items.length === 0) throw new CliError(EXIT.failed, `offering "${name}" not found`);
      process.stdout.write(await render(items, offeringView, format, { single: Boolean(name) }));
    } else {
      const rows = services.flatMap((service) => service.plans.map((plan) => ({ service, plan }))).filter((r) => !name || r.plan.name === name);
      process.stdout.write(await render(rows, planView, format));
    }
    return EXIT.ok;
  }
  const view = kind === 'instances' ? instanceView : bindingView;
  const shown = s.allNamespaces ? withNamespace(view) : view;
  if (name) {
    checkName(name, kind === 'instances' ? 'instance' : 'binding');
    const o = await getResource(s, kind === 'instances' ? 'ServiceInstance' : 'ServiceBinding', s.namespace, name);
    if (!o) throw new CliError(EXIT.failed, `${kind === 'instances' ? 'instance' : 'binding'} ${name} does not exist in namespace ${s.namespace}`);
    process.stdout.write(await render([o as Obj], shown, format, { single: true }));
    return EXIT.ok;
  }
  const items = await list(s, kind === 'instances' ? 'serviceinstances' : 'servicebindings');
  process.stdout.write(await render(items, shown, format));
  if (items.length === 0 && (format === 'table' || format === 'wide')) process.stderr.write(`No ${kind} found${s.allNamespaces ? '' : ` in namespace ${s.namespace}`}.\n`);
  return EXIT.ok;
}

const field = (label: string, value: unknown) => (value === undefined || value === null || value === '' ? [] : [`${`${label}:`.padEnd(16)}${typeof value === 'string' ? value : JSON.stringify(value)}`]);
const indent = (text: string) => text.trimEnd().split('\n').map((l) => `  ${l}`);

async function eventsOf(s: KubeSession, kind: Kind, o: Resource): Promise<CoreV1Event[]> {
  try {
    const list = await s.core.listNamespacedEvent({ namespace: o.metadata.namespace!, fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${o.metadata.name}` });
    return list.items.sort((a, b) => String(a.lastTimestamp ?? a.eventTime ?? '').localeCompare(String(b.lastTimestamp ?? b.eventTime ?? '')));
  } catch {
    return []; // events are a help, not a need (a user may not be allowed to list them)
  }
}

/** The binding's Secret, decoded; undefined when it is not there (yet). */
async function credentialsOf(s: KubeSession, b: ServiceBinding): Promise<Record<string, string> | undefined> {
  try {
    const secret = await s.core.readNamespacedSecret({ namespace: b.metadata.namespace!, name: b.spec.secretName ?? b.metadata.name! });
    return Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
  } catch {
    return undefined;
  }
}

function conditionLines(o: Resource): string[] {
  const conditions = o.status?.conditions ?? [];
  if (conditions.length === 0) return ['Conditions:      none yet (is the Berth controller running?)'];
  return ['Conditions:', ...indent(table([['TYPE', 'STATUS', 'REASON', 'AGE', 'MESSAGE'], ...conditions.map((c) => [c.type, c.status, c.reason, age(c.lastTransitionTime), c.message])]))];
}

function lastOperationLines(o: Resource): string[] {
  const op = o.status?.lastOperation;
  if (!op) return ['Last operation:  none'];
  return ['Last operation:', ...[...field('Type', op.type), ...field('State', op.state), ...field('Description', op.description), ...field('Started', op.startTime), ...field('Finished', op.endTime)].map((l) => `  ${l}`)];
}

function eventLines(events: CoreV1Event[]): string[] {
  if (events.length === 0) return ['Events:          none'];
  return ['Events:', ...indent(table([['TYPE', 'REASON', 'AGE', 'MESSAGE'], ...events.map((e) => [e.type ?? '', e.reason ?? '', age(String(e.lastTimestamp ?? e.eventTime ?? '')), e.message ?? ''])]))];
}

export async function describe([kindWord, name]: string[], opts: Options): Promise<number> {
  const kind = KINDS[kindWord!];
  if (kind !== 'instances' && kind !== 'bindings') throw usageError(`cannot describe "${kindWord}"; use instance or binding`);
  checkName(name!, kind === 'instances' ? 'instance' : 'binding');
  const format = opts.output === undefined ? undefined : formatOf(opts.output);
  const s = await openKubeSession(opts);
  const k: Kind = kind === 'instances' ? 'ServiceInstance' : 'ServiceBinding';
  const o = await getResource(s, k, s.namespace, name!);
  if (!o) throw new CliError(EXIT.failed, `${kind === 'instances' ? 'instance' : 'binding'} ${name} does not exist in namespace ${s.namespace} (see berth get ${kind})`);
  const credentials = k === 'ServiceBinding' ? await credentialsOf(s, o as ServiceBinding) : undefined;
  if (format !== undefined && format !== 'table' && format !== 'wide') {
    // The resource itself; with --show-secrets also the credentials from its Secret.
    const object = k === 'ServiceBinding' && credentials ? { ...o, credentials: opts.showSecrets ? credentials : hidden(credentials) } : o;
    process.stdout.write(await render([object as Obj], { name: () => `${k.toLowerCase()}/${name}`, full: (x) => x, columns: [] }, format, { single: true }));
    return EXIT.ok;
  }
  const v = verdictOf(o);
  const lines = [...field('Name', o.metadata.name), ...field('Namespace', o.metadata.namespace), ...field('Created', `${o.metadata.creationTimestamp} (${age(String(o.metadata.creationTimestamp))} ago)`)];
  if (k === 'ServiceInstance') {
    const i = o as ServiceInstance;
    lines.push(
      ...field('Offering', i.spec.offering),
      ...field('Plan', i.spec.plan),
      ...field('Broker', i.status?.brokerName ?? i.spec.brokerRef?.name),
      ...field('Instance ID', i.status?.instanceID),
      ...field('State', `${v.state === 'ready' ? 'Ready' : v.state === 'failed' ? 'Failed' : 'In progress'} (${v.reason})`),
      ...field('Dashboard URL', i.status?.dashboardURL),
      ...field('Maintenance', i.status?.maintenanceInfo?.version),
      ...field('Parameters', i.spec.parameters),
      ...field('Parameters from', i.spec.parametersFrom?.map((p) => `${p.secretKeyRef.name}/${p.secretKeyRef.key}`).join(', ')),
      ...conditionLines(o),
      ...lastOperationLines(o),
    );
    const bindings = (await list({ ...s, allNamespaces: false, namespace: o.metadata.namespace! }, 'servicebindings')).filter((b) => b.spec.instanceRef?.name === name);
    lines.push(
      bindings.length ? 'Bindings:' : 'Bindings:        none',
      ...(bindings.length ? indent(table([['NAME', 'SECRET', 'READY', 'AGE'], ...bindings.map((b) => [b.metadata.name, b.spec.secretName ?? b.metadata.name, conditionOf(b as Resource, 'Ready')?.status ?? 'Unknown', age(b.metadata.creationTimestamp)])])) : []),
    );
  } else {
    const b = o as ServiceBinding;
    lines.push(
      ...field('Instance', b.spec.instanceRef.name),
      ...field('Secret', b.spec.secretName ?? b.metadata.name),
      ...field('Binding ID', b.status?.bindingID),
      ...field('State', `${v.state === 'ready' ? 'Ready' : v.state === 'failed' ? 'Failed' : 'In progress'} (${v.reason})`),
      ...conditionLines(o),
      ...lastOperationLines(o),
    );
    if (credentials) {
      lines.push(opts.showSecrets ? 'Credentials:' : 'Credentials:     (values hidden; add --show-secrets)');
      for (const [key, value] of Object.entries(credentials)) lines.push(`  ${`${key}:`.padEnd(14)}${opts.showSecrets ? value : '<hidden>'}`);
    }
  }
  lines.push(...eventLines(await eventsOf(s, k, o)));
  process.stdout.write(`${lines.join('\n')}\n`);
  return EXIT.ok;
}

export async function trace([name]: string[], opts: Options): Promise<number> {
  checkName(name!, 'instance');
  const format = opts.output === undefined ? undefined : formatOf(opts.output);
  const s = await openKubeSession(opts);
  let instance = (await getResource(s, 'ServiceInstance', s.namespace, name!)) as ServiceInstance | undefined;
  if (!instance) throw new CliError(EXIT.failed, `instance ${name} does not exist in namespace ${s.namespace}`);
  if (opts.refresh) instance = await forceResync(s, instance);
  const bindings = (await list({ ...s, allNamespaces: false }, 'servicebindings')).filter((b) => b.spec.instanceRef?.name === name) as ServiceBinding[];
  const view = await provisionedView(s, instance);
  if (format === 'json' || format === 'yaml') {
    const tree = { instance, bindings, provisioned: { ...instance.status?.provisionedResources, resources: view.resources } };
    process.stdout.write(format === 'json' ? `${JSON.stringify(tree, null, 2)}\n` : (await import('yaml')).stringify(tree));
    return EXIT.ok;
  }
  const node = (o: Resource, label: string): TreeNode => {
    const ready = conditionOf(o, 'Ready');
    const progressing = conditionOf(o, 'Progressing');
    const op = o.status?.lastOperation;
    // Messages in full: the point of trace is the whole story.
    const detail = [
      ...(ready?.message ? [ready.message] : []),
      ...(progressing?.status === 'True' ? [`progressing: ${progressing.message}`] : []),
      ...(op ? [`last operation: ${op.type} ${op.state}${op.description ? `: ${op.description}` : ''}`] : []),
    ];
    return { text: `${label}  Ready=${ready?.status ?? 'Unknown'}${ready?.reason ? ` ${ready.reason}` : ''}`, ...(detail.length ? { detail: detail.join('\n') } : {}) };
  };
  const { byBinding, rest } = splitByBinding(view.resources, bindings.map((b) => b.status?.bindingID).filter((id): id is string => Boolean(id)));
  const bindingNodes: TreeNode[] = [];
  for (const b of bindings) {
    const secretName = b.spec.secretName ?? b.metadata.name!;
    const credentials = await credentialsOf(s, b);
    bindingNodes.push({
      ...node(b, `ServiceBinding/${b.metadata.name}`),
      children: [
        { text: `Secret/${secretName}: ${credentials ? 'written' : 'not written'}`, ...(credentials ? { detail: `keys: ${Object.keys(credentials).join(', ')}` } : {}) },
        ...(byBinding.get(b.status?.bindingID ?? '') ?? []).map(resourceNode),
      ],
    });
  }
  const root: TreeNode = {
    ...node(instance, `ServiceInstance/${name}  (${instance.spec.offering}/${instance.spec.plan} at broker ${instance.status?.brokerName ?? 'berth'}, instance id ${instance.status?.instanceID ?? 'not yet'})`),
    children: [...bindingNodes, provisionedNode({ ...view, resources: rest })],
  };
  process.stdout.write(drawTree(root));
  process.stdout.write(`${eventLines(await eventsOf(s, 'ServiceInstance', instance)).join('\n')}\n`);
  return EXIT.ok;
}

/**
 * What the controller recorded in the instance's status, with the Kubernetes workloads in it read again now
 * where the developer's own account may read them (the record says when the broker looked).
 */
async function provisionedView(s: KubeSession, instance: ServiceInstance): Promise<ProvisionedView> {
  const p = instance.status?.provisionedResources;
  if (!p) {
    return {
      exposed: true,
      source: 'controller',
      resources: [],
      problem: `The controller has not recorded what the provisioner made yet (it does when an operation ends). Is the Berth controller running? \`berth trace ${instance.metadata.name} --refresh\` asks it to look now.`,
    };
  }
  const denied = new Set<string>();
  const live = async (r: RecordedResource, namespace: string | undefined): Promise<RecordedResource> => {
    if (namespace && (r.kind === 'Deployment' || r.kind === 'StatefulSet') && !denied.has(namespace)) {
      try {
        const now = await describeWorkload({ apps: s.apps, core: s.core }, namespace, { kind: r.kind, name: r.name });
        return { ...recorded(now), message: `read live now: ${now.message ?? ''}` };
      } catch (err) {
        denied.add(namespace); // not allowed (or unreachable): the controller's record stands
      }
    }
    const ns = r.kind === 'HelmRelease' ? r.name.split('/')[0] : namespace;
    return r.children ? { ...r, children: await Promise.all(r.children.map((c) => live(c, ns))) } : r;
  };
  const resources = await Promise.all((p.resources ?? []).map((r) => live(r, undefined)));
  const note = denied.size ? `Workloads in namespace ${[...denied].join(', ')} are shown as recorded: your account cannot read them live.` : undefined;
  return {
    exposed: p.exposed,
    source: 'controller',
    ...(p.kind ? { kind: p.kind } : {}),
    takenAt: p.takenAt,
    resources,
    ...(p.problem || note ? { problem: [p.problem, note].filter(Boolean).join(' ') } : {}),
  };
}

/**
 * Asks the controller for a forced resync (the reconcile-at annotation): it reads the broker's catalog, the
 * instance and what the provisioner made again. Waits until it did, up to `timeoutMs`; then goes on with what is there.
 */
export async function forceResync(s: KubeSession, instance: ServiceInstance, timeoutMs = 60_000): Promise<ServiceInstance> {
  const name = instance.metadata.name!;
  if (!instance.status?.provisioned) return instance; // nothing to read back yet
  const at = new Date().toISOString();
  try {
    await s.custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace: s.namespace, plural: 'serviceinstances', name, body: { metadata: { annotations: { [RECONCILE_AT_ANNOTATION]: at } } } },
      s.mergePatch(),
    );
  } catch (err) {
    throw s.explain(err, `asking the controller to resync ServiceInstance ${s.namespace}/${name}`);
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = (await getResource(s, 'ServiceInstance', s.namespace, name)) as ServiceInstance | undefined;
    if (!now) throw new CliError(EXIT.failed, `instance ${name} was deleted meanwhile`);
    if (now.status?.reconciledAt === at || now.status?.lastOperation?.state === 'in progress') return now;
    if (Date.now() > deadline) {
      process.stderr.write(`berth: the controller did not resync ${name} within ${timeoutMs / 1000} s; showing what it recorded before.\n`);
      return now;
    }
    await sleep(250);
  }
}
