// Reading a ServiceInstance's or ServiceBinding's state the way the controller writes it
// (conditions Ready, Synced, Progressing with observedGeneration; status.lastOperation), and
// waiting for it with the same progress display broker mode uses.
import { setTimeout as sleep } from 'node:timers/promises';
import { API_VERSION, GROUP, PLURALS, VERSION, type Condition, type ServiceBinding, type ServiceInstance } from '../../controller/resources.ts';
import { statusOf } from '../../kubernetes/errors.ts';
import { CliError, EXIT } from '../errors.ts';
import { Progress } from '../progress.ts';
import { durationText } from '../broker/wait.ts';
import type { Options } from '../program.ts';
import { waitSettings } from '../broker/common.ts';
import { isMissingObject, openKubeSession, type KubeSession } from './session.ts';

export type Kind = 'ServiceInstance' | 'ServiceBinding';
export type Resource = ServiceInstance | ServiceBinding;

/** Reasons the controller sets when waiting longer will not help until someone changes something. */
const TERMINAL = new Set(['BrokerRefused', 'PlanNotFound', 'MaintenanceVersionUnavailable', 'ParametersFromNotFound', 'CreateFailed', 'UpdateFailed', 'DeleteFailed', 'BindFailed', 'SecretNameTaken', 'InvalidCredentials']);

export const conditionOf = (o: Resource, type: string): Condition | undefined => o.status?.conditions?.find((c) => c.type === type);

export interface Verdict {
  state: 'ready' | 'failed' | 'progress';
  reason: string;
  message: string;
}

export function verdictOf(o: Resource): Verdict {
  const generation = o.metadata.generation ?? 0;
  const current = (c: Condition | undefined): c is Condition => c !== undefined && (c.observedGeneration === undefined || c.observedGeneration >= generation);
  const ready = conditionOf(o, 'Ready');
  const synced = conditionOf(o, 'Synced');
  const progressing = conditionOf(o, 'Progressing');
  if (current(synced) && synced.status === 'False' && TERMINAL.has(synced.reason)) return { state: 'failed', reason: synced.reason, message: synced.message };
  if (current(ready) && ready.status === 'False' && TERMINAL.has(ready.reason)) return { state: 'failed', reason: ready.reason, message: ready.message };
  if (current(ready) && ready.status === 'True' && progressing?.status !== 'True') {
    if (TERMINAL.has(ready.reason)) return { state: 'failed', reason: ready.reason, message: ready.message };
    return { state: 'ready', reason: ready.reason, message: ready.message };
  }
  const say = [progressing, ready, synced].find((c) => c?.message);
  return { state: 'progress', reason: progressing?.status === 'True' ? progressing.reason : (ready?.reason ?? 'Pending'), message: say?.message ?? 'Waiting for the controller.' };
}

export function plural(kind: Kind): string {
  return PLURALS[kind];
}

export async function getResource(s: KubeSession, kind: Kind, namespace: string, name: string): Promise<Resource | undefined> {
  try {
    return (await s.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: plural(kind), namespace, name })) as Resource;
  } catch (err) {
    if (isMissingObject(err)) return undefined;
    throw s.explain(err, `reading ${kind} ${namespace}/${name}`);
  }
}

export interface KubeWait {
  label: string;
  timeoutMs: number;
  intervalMs: number;
  checkHint: string;
}

/** Waits until the resource is Ready (`until: 'ready'`) or deleted (`'gone'`); throws exit 1 on a terminal failure, exit 3 at the timeout. */
export async function waitForResource(s: KubeSession, kind: Kind, namespace: string, name: string, until: 'ready' | 'gone', w: KubeWait): Promise<Resource | undefined> {
  const progress = new Progress(w.label);
  const deadline = Date.now() + w.timeoutMs;
  const onInterrupt = () => {
    progress.stop(`${w.label}: stopped waiting`);
    process.stderr.write(`berth: the controller goes on; check with \`${w.checkHint}\`.\n`);
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  let last: Verdict | undefined;
  try {
    for (;;) {
      let o: Resource | undefined;
      try {
        o = await getResource(s, kind, namespace, name);
      } catch (err) {
        progress.stop(`${w.label}: could not read its state`);
        throw err;
      }
      if (!o) {
        if (until === 'gone') {
          progress.stop(`${w.label}: done`);
          return undefined;
        }
        progress.stop(`${w.label}: deleted meanwhile`);
        throw new CliError(EXIT.failed, `${kind} ${namespace}/${name} was deleted while berth waited for it.`);
      }
      last = verdictOf(o);
      if (until === 'ready' && last.state === 'ready') {
        progress.stop(`${w.label}: ready`);
        return o;
      }
      if (last.state === 'failed' && (until === 'ready' || last.reason === 'DeleteFailed')) {
        progress.stop(`${w.label}: failed`);
        const m = last.message.trim();
        throw new CliError(EXIT.failed, `${w.label} failed (${last.reason}): ${/[.!?]$/.test(m) ? m : `${m}.`} See \`${w.checkHint}\`.`);
      }
      progress.update(last.message);
      const left = deadline - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(w.intervalMs, left));
    }
  } finally {
    process.off('SIGINT', onInterrupt);
  }
  progress.stop(`${w.label}: still in progress`);
  throw new CliError(
    EXIT.timedOut,
    `timed out after ${durationText(w.timeoutMs)} while ${w.label} is still in progress${last?.message ? ` (${last.message})` : ''}; the controller goes on: check with \`${w.checkHint}\`.`,
  );
}

/**
 * berth deprovision | unbind: deletes the resource (the controller's finalizer asks the broker), then, unless --async,
 * waits until it is gone. A resource that is not there is nothing to delete, not an error.
 */
export async function deleteResource(kind: Kind, name: string, opts: Options, words: { noun: 'instance' | 'binding'; doing: string }): Promise<number> {
  const wait = waitSettings(opts);
  const s = await openKubeSession(opts);
  const ref = `${kind.toLowerCase()}/${name}`;
  try {
    await s.custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: s.namespace, plural: plural(kind), name });
  } catch (err) {
    if (isMissingObject(err)) {
      process.stdout.write(`${ref} does not exist (nothing to delete)\n`);
      return EXIT.ok;
    }
    throw s.explain(err, `deleting ${kind} ${s.namespace}/${name}`);
  }
  if (wait.async) {
    process.stdout.write(`${ref} ${words.doing}\n`);
    return EXIT.ok;
  }
  await waitForResource(s, kind, s.namespace, name, 'gone', { label: `${words.doing} ${name}`, ...wait, checkHint: `berth describe ${words.noun} ${name} -n ${s.namespace}` });
  process.stdout.write(`${ref} deleted\n`);
  return EXIT.ok;
}

/**
 * berth provision | bind: creates the resource. One of that name already there is fine when it asks for the same
 * (then the sentence says so): `conflict` names what differs and what to do about it, or returns undefined.
 */
export async function createResource<R extends Resource>(
  s: KubeSession,
  kind: Kind,
  name: string,
  labels: Record<string, string> | undefined,
  spec: R['spec'],
  conflict: (existing: R) => string | undefined,
): Promise<'created' | 'already exists (unchanged)'> {
  const body = { apiVersion: API_VERSION, kind, metadata: { name, namespace: s.namespace, ...(labels ? { labels } : {}) }, spec };
  try {
    await s.custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: s.namespace, plural: plural(kind), body });
    return 'created';
  } catch (err) {
    if (statusOf(err) !== 409) throw s.explain(err, `creating ${kind} ${s.namespace}/${name}`);
    const existing = (await getResource(s, kind, s.namespace, name)) as R | undefined;
    if (!existing) throw s.explain(err, `creating ${kind} ${s.namespace}/${name}`);
    const problem = conflict(existing);
    if (problem) throw new CliError(EXIT.failed, problem);
    return 'already exists (unchanged)';
  }
}
