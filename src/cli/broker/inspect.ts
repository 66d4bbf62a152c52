// berth marketplace | get | describe | trace, in broker mode: reading, never changing.
import { OsbError, type CatalogPlan, type CatalogService, type ProvisionedResources } from '../../osb-client/index.ts';
import { CliError, EXIT, usageError } from '../errors.ts';
import { age, formatOf, render, table } from '../output.ts';
import type { Options } from '../program.ts';
import { bindingObject, instanceObject, refuseKubernetesFlags, withSession } from './common.ts';
import type { Session } from './session.ts';
import { drawTree, provisionedNode, resourceNode, splitByBinding, type ProvisionedView, type TreeNode } from '../tree.ts';
import { checkName } from './instances.ts';
import { bindingView, instanceView, offeringView, planView, readiness, type PlanRow } from './views.ts';

type Obj = Record<string, any>;

export async function marketplace(_: string[], opts: Options): Promise<number> {
  const format = formatOf(opts.output);
  return withSession(opts, async (s) => {
    const { services } = await s.catalog();
    if (opts.offering === undefined) {
      const rows: PlanRow[] = services.flatMap((service) => service.plans.map((plan) => ({ service, plan })));
      process.stdout.write(await render(rows, planView, format));
      if (rows.length === 0) process.stderr.write(`the broker at ${s.url} offers nothing\n`);
      return EXIT.ok;
    }
    const service = services.find((x) => x.name === opts.offering) ?? services.find((x) => x.id === opts.offering);
    if (!service) throw usageError(`the broker has no offering "${opts.offering}"; it offers ${services.map((x) => x.name).join(', ') || 'nothing'}`);
    if (format !== 'table' && format !== 'wide') {
      process.stdout.write(await render([service], offeringView, format, { single: true }));
      return EXIT.ok;
    }
    process.stdout.write(describeOffering(service));
    return EXIT.ok;
  });
}

/** An offering's plans with the parameters each takes, readable without knowing JSON Schema. */
export function describeOffering(service: CatalogService): string {
  const out = [`${service.name}: ${service.description}`, `  bindable: ${service.bindable ? 'yes' : 'no'}${service.tags?.length ? `; tags: ${service.tags.join(', ')}` : ''}`];
  for (const plan of service.plans) {
    out.push('', `plan ${plan.name} (${plan.free === false ? 'paid' : 'free'}): ${plan.description}`);
    if (plan.maintenance_info) out.push(`  maintenance version: ${plan.maintenance_info.version}`);
    const create = plan.schemas?.service_instance?.create?.parameters;
    const updateSchema = plan.schemas?.service_instance?.update?.parameters;
    const bindSchema = plan.schemas?.service_binding?.create?.parameters;
    out.push(...schemaSection('provision parameters', create));
    if (updateSchema) out.push(...(JSON.stringify(updateSchema) === JSON.stringify(create) ? ['  update parameters: the same'] : schemaSection('update parameters', updateSchema)));
    if (bindSchema) out.push(...schemaSection('bind parameters', bindSchema));
  }
  return `${out.join('\n')}\n`;
}

function schemaSection(title: string, schema: Obj | undefined): string[] {
  if (!schema) return [`  ${title}: not described by the broker`];
  const props = (schema.properties ?? {}) as Obj;
  if (Object.keys(props).length === 0) return [`  ${title}: none${schema.additionalProperties === false ? ' (any given are refused)' : ''}`];
  const rows: string[][] = [];
  const walk = (p: Obj, required: string[], prefix: string) => {
    for (const [key, sub] of Object.entries(p) as [string, Obj][]) {
      rows.push([`${prefix}${key}`, typeOf(sub), required.includes(key) ? 'required' : '', sub.description ?? '']);
      if (sub.type === 'object' && sub.properties) walk(sub.properties, sub.required ?? [], `${prefix}${key}.`);
    }
  };
  walk(props, (schema.required ?? []) as string[], '');
  return [`  ${title} (-p key=value):`, ...table(rows).trimEnd().split('\n').map((l) => `    ${l}`)];
}

function typeOf(s: Obj): string {
  if (s.enum) return `one of ${s.enum.map((v: unknown) => JSON.stringify(v)).join('|')}`;
  if (s.type === 'array') return `array${s.items ? ` of ${typeOf(s.items)}` : ''}${s.uniqueItems ? ' (unique)' : ''}`;
  const extra = [s.format && `format ${s.format}`, s.pattern && `pattern ${s.pattern}`, s.minimum !== undefined && `≥ ${s.minimum}`, s.maximum !== undefined && `≤ ${s.maximum}`, s.default !== undefined && `default ${JSON.stringify(s.default)}`].filter(Boolean);
  return `${Array.isArray(s.type) ? s.type.join('|') : (s.type ?? 'any')}${extra.length ? ` (${extra.join(', ')})` : ''}`;
}

const KINDS: Record<string, 'instances' | 'bindings' | 'offerings' | 'plans'> = {
  instance: 'instances',
  instances: 'instances',
  bindings: 'bindings',
  binding: 'bindings',
  offering: 'offerings',
  offerings: 'offerings',
  plan: 'plans',
  plans: 'plans',
};

export async function get([kindWord, name]: string[], opts: Options): Promise<number> {
  const kind = KINDS[kindWord!];
  if (!kind) throw usageError(`cannot get "${kindWord}"; use instances, bindings, offerings or plans`);
  refuseKubernetesFlags(opts, ['namespace', 'allNamespaces']);
  const format = formatOf(opts.output);
  return withSession(opts, async (s) => {
    if (kind === 'offerings' || kind === 'plans') {
      const { services } = await s.catalog();
      if (kind === 'offerings') {
        const items = name ? services.filter((x) => x.name === name || x.id === name) : services;
        if (name && items.length === 0) throw new CliError(EXIT.failed, `offering "${name}" not found; the broker offers ${services.map((x) => x.name).join(', ')}`);
        process.stdout.write(await render(items, offeringView, format, { single: Boolean(name) }));
      } else {
        const rows = services.flatMap((service) => service.plans.map((plan: CatalogPlan) => ({ service, plan }))).filter((r) => !name || r.plan.name === name || r.plan.id === name);
        if (name && rows.length === 0) throw new CliError(EXIT.failed, `plan "${name}" not found (see berth get plans)`);
        process.stdout.write(await render(rows, planView, format, { single: Boolean(name) && rows.length === 1 }));
      }
      return EXIT.ok;
    }
    const section = s.state.section();
    if (kind === 'instances') {
      if (name) checkName(name, 'instance');
      const names = name ? [name] : Object.keys(section.instances).sort();
      const items = await Promise.all(names.map((n) => instanceObject(s, n, section.instances[n], false)));
      if (name && items[0]!.exists === false) throw new CliError(EXIT.failed, `instance ${name} does not exist at ${s.url}`);
      process.stdout.write(await render(items, instanceView, format, { single: Boolean(name) }));
      if (items.length === 0 && (format === 'table' || format === 'wide')) process.stderr.write(`No instances known for ${s.url} (berth lists the ones provisioned from this machine).\n`);
    } else {
      if (name && !section.bindings[name]) throw new CliError(EXIT.failed, `binding ${name} is not known for ${s.url} (see berth get bindings)`);
      const names = name ? [name] : Object.keys(section.bindings).sort();
      const items = await Promise.all(names.map((n) => bindingObject(s, n, section.bindings[n]!, false)));
      process.stdout.write(await render(items, bindingView, format, { single: Boolean(name) }));
      if (items.length === 0 && (format === 'table' || format === 'wide')) process.stderr.write(`No bindings known for ${s.url}.\n`);
    }
    return EXIT.ok;
  });
}

const field = (label: string, value: unknown) => (value === undefined || value === null || value === '' ? [] : [`${`${label}:`.padEnd(16)}${typeof value === 'string' ? value : JSON.stringify(value)}`]);

function operationLines(op: Obj | undefined): string[] {
  if (!op) return ['Last operation:  none recorded'];
  return [
    'Last operation:',
    ...[...field('Type', op.type), ...field('State', op.state), ...field('Description', op.description), ...field('Started', op.started_at), ...field('Finished', op.finished_at)].map((l) => `  ${l}`),
  ];
}

export async function describe([kindWord, name]: string[], opts: Options): Promise<number> {
  const kind = KINDS[kindWord!];
  if (kind !== 'instances' && kind !== 'bindings') throw usageError(`cannot describe "${kindWord}"; use instance or binding (offerings: berth marketplace --offering NAME)`);
  checkName(name!, kind === 'instances' ? 'instance' : 'binding');
  const format = opts.output === undefined ? undefined : formatOf(opts.output);
  const showSecrets = Boolean(opts.showSecrets);
  return withSession(opts, async (s) => {
    const section = s.state.section();
    let object: Obj;
    if (kind === 'instances') {
      object = await instanceObject(s, name!, section.instances[name!], showSecrets);
      if (object.exists === false) throw new CliError(EXIT.failed, `instance ${name} does not exist at ${s.url}${object.message ? ` (${object.message})` : ''}`);
    } else {
      const entry = section.bindings[name!];
      if (!entry) throw new CliError(EXIT.failed, `binding ${name} is not known for ${s.url} (see berth get bindings)`);
      object = await bindingObject(s, name!, entry, showSecrets);
    }
    if (format !== undefined && format !== 'table' && format !== 'wide') {
      process.stdout.write(await render([object], kind === 'instances' ? instanceView : bindingView, format, { single: true }));
      return EXIT.ok;
    }
    const r = readiness(object);
    const lines: string[] = [];
    if (kind === 'instances') {
      const i = (object.instance ?? {}) as Obj;
      lines.push(
        ...field('Name', object.name),
        ...field('Instance ID', object.instance_id),
        ...field('Broker', s.url),
        ...field('Offering', object.offering ? `${object.offering} (${object.service_id})` : object.service_id),
        ...field('Plan', object.plan ? `${object.plan} (${object.plan_id})` : object.plan_id),
        ...field('Ready', `${r.ready}${r.reason ? ` (${r.reason})` : ''}`),
        ...field('Created', object.created_at ? `${object.created_at} (${age(object.created_at)} ago)` : undefined),
        ...field('Dashboard URL', i.dashboard_url),
        ...field('Maintenance', i.maintenance_info?.version),
        ...field('Parameters', i.parameters),
        ...operationLines(object.last_operation),
        object.bindings.length ? 'Bindings:' : 'Bindings:        none',
        ...(object.bindings.length ? table([['NAME', 'BINDING-ID', 'AGE'], ...object.bindings.map((b: Obj) => [b.name, b.binding_id, age(b.created_at)])]).trimEnd().split('\n').map((l) => `  ${l}`) : []),
      );
      if (!object.instance) lines.push('(the broker does not return this instance: it may not support fetching instances, or it is still being provisioned)');
    } else {
      const b = (object.binding ?? {}) as Obj;
      lines.push(
        ...field('Name', object.name),
        ...field('Binding ID', object.binding_id),
        ...field('Instance', `${object.instance} (${object.instance_id})`),
        ...field('Ready', `${r.ready}${r.reason ? ` (${r.reason})` : ''}`),
        ...field('Created', object.created_at ? `${object.created_at} (${age(object.created_at)} ago)` : undefined),
        ...operationLines(object.last_operation),
      );
      if (b.credentials) {
        lines.push(showSecrets ? 'Credentials:' : 'Credentials:     (values hidden; add --show-secrets)');
        for (const [k, v] of Object.entries(b.credentials as Obj)) lines.push(`  ${`${k}:`.padEnd(14)}${typeof v === 'string' ? v : JSON.stringify(v)}`);
      }
      lines.push(...field('Syslog drain', b.syslog_drain_url), ...field('Route service', b.route_service_url), ...field('Endpoints', b.endpoints), ...field('Volume mounts', b.volume_mounts), ...field('Expires', b.metadata?.expires_at));
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    return EXIT.ok;
  });
}

export async function trace([name]: string[], opts: Options): Promise<number> {
  checkName(name!, 'instance');
  const format = opts.output === undefined ? undefined : formatOf(opts.output);
  return withSession(opts, async (s) => {
    const section = s.state.section();
    const instance = await instanceObject(s, name!, section.instances[name!], false);
    if (instance.exists === false) throw new CliError(EXIT.failed, `instance ${name} does not exist at ${s.url}`);
    const bindings = await Promise.all(
      Object.entries(section.bindings)
        .filter(([, b]) => b.instance_id === instance.instance_id)
        .map(([n, b]) => bindingObject(s, n, b, false)),
    );
    const provisioned = await provisionedAt(s, String(instance.instance_id), name!);
    if (format === 'json' || format === 'yaml') {
      const tree = { ...instance, bindings, provisioned: provisioned.exposed ? provisioned.body : null };
      process.stdout.write(format === 'json' ? `${JSON.stringify(tree, null, 2)}\n` : (await import('yaml')).stringify(tree));
      return EXIT.ok;
    }
    const line = (o: Obj, kind: string) => {
      const r = readiness(o);
      const op = o.last_operation as Obj | undefined;
      return `${kind}/${o.name}  ready=${r.ready}${r.reason ? ` reason=${r.reason}` : ''}${op?.state ? `  last operation: ${op.type ?? ''} ${op.state}` : ''}`;
    };
    const { byBinding, rest } = splitByBinding(provisioned.view.resources, bindings.map((b) => String(b.binding_id)));
    const root: TreeNode = {
      text: `${line(instance, 'instance')}  (${instance.offering ?? instance.service_id}/${instance.plan ?? instance.plan_id}, instance id ${instance.instance_id})`,
      ...(readiness(instance).message ? { detail: readiness(instance).message } : {}),
      children: [
        ...bindings.map((b): TreeNode => {
          const credentials = (b.binding as Obj | null)?.credentials as Obj | undefined;
          const keys = credentials ? Object.keys(credentials) : [];
          return {
            text: line(b, 'binding'),
            ...(readiness(b).message ? { detail: readiness(b).message } : {}),
            children: [
              ...(keys.length ? [{ text: `credentials: ${keys.join(', ')}`, detail: `values: berth describe binding ${b.name} --show-secrets` }] : []),
              ...(byBinding.get(String(b.binding_id)) ?? []).map(resourceNode),
            ],
          };
        }),
        provisionedNode({ ...provisioned.view, resources: rest }),
      ],
    };
    process.stdout.write(drawTree(root));
    return EXIT.ok;
  });
}

/** What the broker's provisioner made, from Berth's own endpoint; a broker without it is said so, not an error. */
async function provisionedAt(s: Session, instanceId: string, name: string): Promise<{ exposed: boolean; body: ProvisionedResources | undefined; view: ProvisionedView }> {
  let body: ProvisionedResources | undefined;
  try {
    body = await s.client.provisionedResources(instanceId);
  } catch (err) {
    if (err instanceof OsbError && err.status !== 401 && err.status !== 403) {
      const view: ProvisionedView = { exposed: true, source: 'broker', resources: [], problem: `The broker could not say what it provisioned for ${name}: ${err.brokerMessage}` };
      return { exposed: true, body: undefined, view };
    }
    throw s.explain(err, `reading what the broker provisioned for ${name}`);
  }
  if (!body) return { exposed: false, body, view: { exposed: false, source: 'broker', resources: [] } };
  return { exposed: true, body, view: { exposed: true, source: 'broker', kind: body.kind, takenAt: body.taken_at, resources: body.resources, ...(body.problem ? { problem: body.problem } : {}) } };
}
