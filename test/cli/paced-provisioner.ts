// A test seam for the CLI's progress display: kind `paced`, asynchronous, whose operations take
// `steps` × `step_ms` and report a progress description at every step, so a waiting `berth`
// has something to draw and replace; `fail: true` makes provisions fail with a description,
// and the instance parameter `refuse_changes: true` its updates.
// Loaded by the Berth the CLI tests start, through BERTH_PROVISIONER_MODULES.
import { setTimeout as sleep } from 'node:timers/promises';
import { PermanentError, type JsonObject, type OperationContext, type Provisioner } from '../../src/provisioners/provisioner.ts';

interface PacedConfig {
  steps: number;
  stepMs: number;
  fail: boolean;
}

const configOf = (op: { instance: { plan: { provisioner: { config: unknown } } } }) => op.instance.plan.provisioner.config as PacedConfig;

async function pace(op: OperationContext, config: PacedConfig, verb: string): Promise<void> {
  for (let step = 1; step <= config.steps; step++) {
    await op.progress(`${verb}: step ${step} of ${config.steps}`);
    await sleep(config.stepMs, undefined, { signal: op.signal });
  }
}

class PacedProvisioner implements Provisioner {
  readonly kind = 'paced';

  parsePlanConfig(block: JsonObject) {
    const steps = block.steps ?? 3;
    const stepMs = block.step_ms ?? 1000;
    if (typeof steps !== 'number' || typeof stepMs !== 'number') return { problems: [{ path: 'steps', message: 'steps and step_ms must be numbers' }] };
    return { config: { steps, stepMs, fail: block.fail === true } satisfies PacedConfig };
  }

  isAsync(): boolean {
    return true;
  }

  async provision(op: Parameters<Provisioner['provision']>[0]) {
    const config = configOf(op);
    await pace(op, config, 'Creating the paced service');
    if (config.fail) throw new PermanentError('The paced test service refused to start: its quota is used up (raise it or pick another plan).');
  }

  async update(op: Parameters<Provisioner['update']>[0]) {
    await pace(op, configOf(op), 'Changing the paced service');
    // The instance parameter `refuse_changes: true` makes its updates fail (test/cli/upgrade-all.test.ts).
    if (op.instance.parameters.refuse_changes === true) throw new PermanentError('The paced test service refused the change: it is locked (set refuse_changes to false).');
  }

  async deprovision(op: Parameters<Provisioner['deprovision']>[0]) {
    await pace(op, { ...configOf(op), steps: 1 }, 'Removing the paced service');
  }

  async bind(op: Parameters<Provisioner['bind']>[0]) {
    await pace(op, { ...configOf(op), steps: 1 }, 'Issuing a token');
    return { credentials: { token: `token-${op.binding.id.slice(0, 8)}` } };
  }

  async unbind(op: Parameters<Provisioner['unbind']>[0]) {
    await pace(op, { ...configOf(op), steps: 1 }, 'Revoking the token');
  }
}

export function createProvisioners(): Provisioner[] {
  return [new PacedProvisioner()];
}
