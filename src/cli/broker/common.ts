// What the broker-mode commands share: opening the session, refusing Kubernetes-only flags,
// the objects -o json/yaml print, and hiding secrets unless --show-secrets.
import { OsbError, type DeleteResult, type LastOperation } from '../../osb-client/index.ts';
import { EXIT, usageError } from '../errors.ts';
import type { Options } from '../program.ts';
import type { BindingEntry, InstanceEntry, OperationEntry } from './state.ts';
import { openSession, type Session } from './session.ts';
import { parseDuration } from './wait.ts';

/** Opens the session, runs `body`, closes the sockets; failures become CliErrors with `doing` in their sentence. */
export async function withSession<T>(opts: Options, body: (s: Session) => Promise<T>): Promise<T> {
  const session = await openSession(opts);
  try {
    return await body(session);
  } finally {
    session.close();
  }
}

/** Flags that only mean something against a cluster. */
export function refuseKubernetesFlags(opts: Options, flags: string[]): void {
  const names: Record<string, string> = { namespace: '-n/--namespace', allNamespaces: '-A/--all-namespaces', secretName: '--secret-name', fromSecret: '--from-secret', kubeconfig: '--kubeconfig', label: '-l/--label' };
  const given = flags.filter((f) => opts[f] !== undefined && opts[f] !== false);
  if (given.length > 0) throw usageError(`${given.map((f) => names[f] ?? f).join(', ')} only apply in Kubernetes mode; in broker mode (--broker) leave ${given.length > 1 ? 'them' : 'it'} out`);
}

export function waitSettings(opts: Options): { async: boolean; timeoutMs: number; intervalMs: number } {
  return { async: Boolean(opts.async), timeoutMs: parseDuration(opts.timeout ?? '30m', '--timeout'), intervalMs: parseDuration(opts.interval ?? '1s', '--interval') };
}

/** Every leaf replaced by "<hidden>", keeping the shape (which keys exist) visible. */
export function hidden(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(hidden);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, hidden(v)]));
  return '<hidden>';
}

const isNotFound = (err: unknown) => err instanceof OsbError && (err.status === 404 || err.status === 410);

/** The broker's answer without the transport fields the client adds. */
function body<T extends { status?: number; retryAfterSeconds?: number }>(answer: T): Omit<T, 'status' | 'retryAfterSeconds'> {
  const { status: _s, retryAfterSeconds: _r, ...rest } = answer;
  return rest;
}

export function recordedOperation(op: OperationEntry | undefined, live?: LastOperation): Record<string, unknown> | undefined {
  if (!op && !live) return undefined;
  return {
    type: op?.type,
    state: live ? (live.state === 'gone' ? 'gone' : live.state) : op?.state,
    description: live ? live.description : op?.description,
    started_at: op?.started_at,
    finished_at: op?.finished_at,
  };
}

/** An instance as -o json/yaml and describe show it: the name and ids berth knows it by, and the broker's own JSON. */
export async function instanceObject(s: Session, name: string, entry: InstanceEntry | undefined, showSecrets: boolean): Promise<Record<string, unknown>> {
  const id = entry?.id ?? s.state.instanceId(name);
  const ids = entry ? { service_id: entry.service_id, plan_id: entry.plan_id } : {};
  let instance: Record<string, unknown> | null = null;
  let fetchError: string | undefined;
  try {
    instance = body(await s.client.fetchInstance(id, ids)) as Record<string, unknown>;
  } catch (err) {
    if (!isNotFound(err) && !(err instanceof OsbError && err.status === 422)) throw s.explain(err, `reading instance ${name}`);
    fetchError = err instanceof OsbError ? err.brokerMessage : undefined;
  }
  let live: LastOperation | undefined;
  try {
    live = await s.client.instanceLastOperation(id, { ...ids, ...(entry?.last_operation?.id ? { operation: entry.last_operation.id } : {}) });
  } catch (err) {
    if (!(err instanceof OsbError) || err.status >= 500) throw s.explain(err, `reading the last operation of instance ${name}`);
  }
  if (!entry && !instance && (!live || live.state === 'gone')) return { name, instance_id: id, exists: false, ...(fetchError ? { message: fetchError } : {}) };
  if (instance && !showSecrets && instance.parameters) instance.parameters = hidden(instance.parameters);
  const bindings = Object.entries(s.state.section().bindings)
    .filter(([, b]) => b.instance_id === id)
    .map(([bindingName, b]) => ({ name: bindingName, binding_id: b.id, created_at: b.created_at }));
  // Provisioned elsewhere under this name: the catalog gives the offering's and plan's names.
  let names = entry ? { offering: entry.offering, plan: entry.plan } : undefined;
  if (!names && instance?.service_id) {
    const service = (await s.catalog()).services.find((x) => x.id === instance!.service_id);
    names = { offering: service?.name as string, plan: service?.plans.find((p) => p.id === instance!.plan_id)?.name as string };
  }
  return {
    name,
    instance_id: id,
    offering: names?.offering,
    plan: names?.plan,
    service_id: entry?.service_id ?? instance?.service_id,
    plan_id: entry?.plan_id ?? instance?.plan_id,
    created_at: entry?.created_at,
    instance,
    last_operation: recordedOperation(entry?.last_operation, live),
    bindings,
  };
}

export async function bindingObject(s: Session, name: string, entry: BindingEntry, showSecrets: boolean): Promise<Record<string, unknown>> {
  const ids = { service_id: entry.service_id, plan_id: entry.plan_id };
  let binding: Record<string, unknown> | null = null;
  try {
    binding = body(await s.client.fetchBinding(entry.instance_id, entry.id, ids)) as Record<string, unknown>;
  } catch (err) {
    if (!isNotFound(err) && !(err instanceof OsbError && err.status === 422)) throw s.explain(err, `reading binding ${name}`);
  }
  let live: LastOperation | undefined;
  if (entry.last_operation?.id || entry.last_operation?.state === 'in progress') {
    try {
      live = await s.client.bindingLastOperation(entry.instance_id, entry.id, { ...ids, ...(entry.last_operation?.id ? { operation: entry.last_operation.id } : {}) });
    } catch (err) {
      if (!(err instanceof OsbError) || err.status >= 500) throw s.explain(err, `reading the last operation of binding ${name}`);
    }
  }
  if (binding && !showSecrets) {
    if (binding.credentials) binding.credentials = hidden(binding.credentials);
    if (binding.parameters) binding.parameters = hidden(binding.parameters);
  }
  return {
    name,
    binding_id: entry.id,
    instance: entry.instance,
    instance_id: entry.instance_id,
    created_at: entry.created_at,
    binding,
    last_operation: recordedOperation(entry.last_operation, live),
  };
}

export const now = () => new Date().toISOString();

/**
 * The end of berth deprovision | unbind: says what the broker's DELETE came to (`ref` is `instance/NAME` or
 * `binding/NAME`), following an accepted one with `settle`; the local entry is forgotten once the object is gone.
 */
export async function reportDelete(
  ref: string,
  doing: string,
  result: DeleteResult,
  settle: (operation: string | undefined) => Promise<'done' | 'async'>,
  forget: () => void,
): Promise<number> {
  if (result.outcome === 'gone') {
    forget();
    process.stdout.write(`${ref} does not exist (already deleted)\n`);
    return EXIT.ok;
  }
  if (result.outcome === 'accepted' && (await settle(result.operation)) === 'async') {
    process.stdout.write(`${ref} ${doing}\n`);
    return EXIT.ok;
  }
  forget();
  process.stdout.write(`${ref} deleted\n`);
  return EXIT.ok;
}
