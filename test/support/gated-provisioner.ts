// A test seam that drives the operation engine: kind `gated`, asynchronous,
// whose operations finish at once, hold until a test releases them, or fail,
// as the plan says. Loaded through BERTH_PROVISIONER_MODULES.
import { setTimeout as sleep } from 'node:timers/promises';
import { PermanentError, type BindResult, type JsonObject, type Provisioner } from '../../src/provisioners/provisioner.ts';

type Behaviour = 'succeed' | 'hold' | 'fail';

interface GateConfig {
  behaviour: Behaviour;
  bindBehaviour: Behaviour;
  /** Updates to this plan: by default they fail when `behaviour` is fail and succeed otherwise. */
  updateBehaviour: Behaviour;
  sync: boolean;
  /** Provisions take this long (a slow but steady service, for timing benchmarks). */
  delayMs: number;
}

const waiters = new Map<string, Array<() => void>>();
const released = new Set<string>();
let releasedAll = false;
export const calls: Array<{ kind: string; instanceId: string; bindingId?: string }> = [];

/** Lets held operations on `instanceId` (or all, without an id) finish, now and from now on. */
export function release(instanceId?: string): void {
  if (instanceId === undefined) releasedAll = true;
  else released.add(instanceId);
  for (const [id, list] of waiters) {
    if (instanceId === undefined || id === instanceId) {
      for (const w of list) w();
      waiters.delete(id);
    }
  }
}

const refusedDeletes = new Set<string>();

/** Makes deprovisions of `instanceId` fail (a backend that refuses the delete) until called with false. */
export function refuseDeletes(instanceId: string, refuse = true): void {
  if (refuse) refusedDeletes.add(instanceId);
  else refusedDeletes.delete(instanceId);
}

/** Makes later operations on `instanceId` hold again until the next release. */
export function rearm(instanceId: string): void {
  released.delete(instanceId);
}

function hold(instanceId: string, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (releasedAll || released.has(instanceId)) return resolve();
    // Halted (aborted) before it got here: an abort listener added now would never fire.
    if (signal.aborted) return reject(signal.reason ?? new Error('aborted'));
    const list = waiters.get(instanceId) ?? [];
    list.push(resolve);
    waiters.set(instanceId, list);
    signal.addEventListener('abort', () => reject(signal.reason ?? new Error('aborted')), { once: true });
  });
}

async function act(behaviour: Behaviour, instanceId: string, signal: AbortSignal): Promise<void> {
  if (behaviour === 'hold') await hold(instanceId, signal);
  if (behaviour === 'fail') throw new PermanentError('The gated test service refused this operation.');
}

class GatedProvisioner implements Provisioner {
  readonly kind = 'gated';

  parsePlanConfig(block: JsonObject) {
    const allowed: Behaviour[] = ['succeed', 'hold', 'fail'];
    const behaviour = (block.behaviour ?? 'succeed') as Behaviour;
    const bindBehaviour = (block.bind_behaviour ?? 'succeed') as Behaviour;
    if (!allowed.includes(behaviour)) return { problems: [{ path: 'behaviour', message: `must be one of ${allowed.join(', ')}` }] };
    if (!allowed.includes(bindBehaviour)) return { problems: [{ path: 'bind_behaviour', message: `must be one of ${allowed.join(', ')}` }] };
    const updateBehaviour = (block.update_behaviour ?? (behaviour === 'fail' ? 'fail' : 'succeed')) as Behaviour;
    if (!allowed.includes(updateBehaviour)) return { problems: [{ path: 'update_behaviour', message: `must be one of ${allowed.join(', ')}` }] };
    const delayMs = typeof block.delay_ms === 'number' ? block.delay_ms : 0;
    return { config: { behaviour, bindBehaviour, updateBehaviour, sync: block.sync === true, delayMs } satisfies GateConfig };
  }

  isAsync(_kind: string, plan: { provisioner: { config: unknown } }): boolean {
    return !(plan.provisioner.config as GateConfig).sync;
  }

  async provision(op: Parameters<Provisioner['provision']>[0]) {
    calls.push({ kind: 'provision', instanceId: op.instance.id });
    const { delayMs } = op.instance.plan.provisioner.config as GateConfig;
    if (delayMs > 0) await sleep(delayMs, undefined, { signal: op.signal });
    await act((op.instance.plan.provisioner.config as GateConfig).behaviour, op.instance.id, op.signal);
    // `metadata_filler: N` (plans without a parameter schema) adds an N-byte attribute, to test the 4,096-byte bound.
    const filler = op.instance.parameters.metadata_filler;
    const attributes = typeof filler === 'number' ? { 'berth.test/filler': 'x'.repeat(filler), 'berth.test/note': 'kept' } : undefined;
    return {
      dashboardUrl: `https://dashboard.example/${encodeURIComponent(op.instance.id)}`,
      metadata: { labels: { tier: op.instance.plan.name }, ...(attributes ? { attributes } : {}) },
    };
  }

  async update(op: Parameters<Provisioner['update']>[0]) {
    calls.push({ kind: 'update', instanceId: op.instance.id });
    await act((op.instance.plan.provisioner.config as GateConfig).updateBehaviour, op.instance.id, op.signal);
  }

  async deprovision(op: Parameters<Provisioner['deprovision']>[0]) {
    calls.push({ kind: 'deprovision', instanceId: op.instance.id });
    if (refusedDeletes.has(op.instance.id)) throw new PermanentError('The gated test service refused to delete this instance.');
  }

  async bind(op: Parameters<Provisioner['bind']>[0]): Promise<BindResult> {
    calls.push({ kind: 'bind', instanceId: op.instance.id, bindingId: op.binding.id });
    await act((op.instance.plan.provisioner.config as GateConfig).bindBehaviour, op.instance.id, op.signal);
    return {
      credentials: { username: `user-${op.binding.id}`, password: 'secret', uri: `gated://${op.instance.id}` },
      endpoints: [{ host: 'gated.example', ports: ['443'] }],
    };
  }

  async unbind(op: Parameters<Provisioner['unbind']>[0]) {
    calls.push({ kind: 'unbind', instanceId: op.instance.id, bindingId: op.binding.id });
  }
}

export function createProvisioners(): Provisioner[] {
  return [new GatedProvisioner()];
}
