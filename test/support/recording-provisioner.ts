// The `recording` provisioner kind, for durability tests and the replica bench.
// Berth loads it through BERTH_PROVISIONER_MODULES (it exports
// createProvisioners(config, log)).
//
// It pretends to build a service out of resources (a volume and a server per
// instance, a credential per binding) and records, in a Postgres database named
// by BERTH_RECORDING_DATABASE_URL, every step it runs and every resource it
// creates or deletes. It follows the provisioner contract (provisioner.ts): each
// step checks reality before acting (check-before-create, delete-if-present),
// random values are checkpointed before use, and waits observe op.signal. So a
// step re-run after a crash finds what the earlier run did and does not do it
// again, and a test can prove it:
//
// - `resources` has no unique constraint: a create that ran twice leaves two
//   live rows for the same (instance, binding, kind). Each step waits between
//   its check and its create (step_delay_ms), the window in which a second
//   worker running the same operation at the same time would also decide to
//   create.
// - `step_runs` has one row per step *execution* (started, then its outcome),
//   so tests can count attempts separately from creations.
// - `violations` gets a row when two processes run steps of the same instance
//   at once, detected with a session-level advisory lock in the recording
//   database (a killed process's session ends, so its lock goes with it).
//
// Plan config (the plan's `provisioner:` block):
//   step_delay_ms  number   pause inside every step (default 0)
//   async          boolean  operations complete asynchronously (default true)
//   record         boolean  false: a zero-cost provisioner that does nothing at all (the bench)
// Steps: provision = create-volume, create-server (with the checkpointed password);
// deprovision = delete-server, delete-volume; bind = create-credential (with its own
// checkpointed password), create-grant; unbind = delete-grant, delete-credential;
// update = resize-volume. Bindings use their parameters, else the instance's delay.
// Instance or binding parameters (all optional):
//   step_delay_ms  number   overrides the plan's delay for this instance/binding
//   step_delays    object   per-step delays, e.g. {"create-server": 10000}
//   fail_step      string   a step name: create-volume, create-server, resize-volume,
//                           delete-server, delete-volume, create-credential, create-grant,
//                           delete-grant, delete-credential
//   fail_mode      "permanent" | "transient"
//   fail_times     number   transient failures before the step succeeds (default 1)
// A permanent failure is thrown after the step created its resource, so the
// instance or binding is left half-made (what a later DELETE must clean up).
// A transient one is thrown after the create too (the reply was "lost"), so the
// retry must find the resource instead of creating it again. step_runs.outcome
// then reads e.g. "created, then transient-failure".
// Crash points (BERTH_FAILPOINTS, src/failpoints.ts): `recording.after-<step>`
// kills the process right after a create step made its resource, before the
// step's outcome is recorded.
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../../src/config.ts';
import { failpoint } from '../../src/failpoints.ts';
import type { CatalogPlan } from '../../src/catalog/catalog.ts';
import {
  PermanentError,
  type BindingOperation,
  type BindResult,
  type InstanceOperation,
  type JsonObject,
  type OperationContext,
  type OperationKind,
  type Provisioner,
} from '../../src/provisioners/provisioner.ts';

export const RECORDING_MODULE = resolve(import.meta.dirname, 'recording-provisioner.ts');
export const RECORDING_CATALOG = resolve(import.meta.dirname, '../fixtures/catalog-recording.yaml');
export const RECORDING_ENV = 'BERTH_RECORDING_DATABASE_URL';

export const RECORDING_SERVICE_ID = '7d3c1a52-5f0e-4b8e-9a51-2c6f3f0b9a01';
export const RECORDING_PLANS = {
  async: '7d3c1a52-5f0e-4b8e-9a51-2c6f3f0b9a11',
  slow: '7d3c1a52-5f0e-4b8e-9a51-2c6f3f0b9a12',
  sync: '7d3c1a52-5f0e-4b8e-9a51-2c6f3f0b9a13',
  deadline: '7d3c1a52-5f0e-4b8e-9a51-2c6f3f0b9a14',
  zero: '7d3c1a52-5f0e-4b8e-9a51-2c6f3f0b9a15',
} as const;

export const RECORDING_SCHEMA = `
CREATE TABLE IF NOT EXISTS step_runs (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  ended_at timestamptz,
  pid integer NOT NULL,
  operation_id text NOT NULL,
  attempt integer NOT NULL,
  instance_id text NOT NULL,
  binding_id text NOT NULL DEFAULT '',
  step text NOT NULL,
  outcome text NOT NULL DEFAULT 'started'
);
CREATE INDEX IF NOT EXISTS step_runs_instance ON step_runs (instance_id, step, outcome);
CREATE TABLE IF NOT EXISTS resources (
  id bigserial PRIMARY KEY,
  instance_id text NOT NULL,
  binding_id text NOT NULL DEFAULT '',
  kind text NOT NULL,
  secret text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  created_by_operation text NOT NULL,
  created_by_pid integer NOT NULL,
  deleted_at timestamptz,
  deleted_by_operation text
);
CREATE INDEX IF NOT EXISTS resources_key ON resources (instance_id, binding_id, kind);
CREATE TABLE IF NOT EXISTS violations (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  pid integer NOT NULL,
  instance_id text NOT NULL,
  detail text NOT NULL
);`;

/** Creates the recording tables (tests call this before starting Berth). */
export async function prepareRecordingDatabase(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(RECORDING_SCHEMA);
  } finally {
    await c.end();
  }
}

interface PlanConfig {
  stepDelayMs: number;
  async: boolean;
  record: boolean;
}

interface Injection {
  delayMs: number;
  delays: Record<string, number>;
  failStep: string | undefined;
  failMode: 'permanent' | 'transient' | undefined;
  failTimes: number;
}

class StepAborted extends Error {}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(new StepAborted(`aborted: ${String((signal.reason as Error | undefined)?.message ?? signal.reason)}`));
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolveSleep, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(new StepAborted(`aborted: ${String((signal.reason as Error | undefined)?.message ?? signal.reason)}`));
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolveSleep();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** The side of the recording that talks to the database; a no-op when recording is off. */
interface Recorder {
  /** Runs `body` for one operation while holding the instance's advisory lock (noting a violation if another process holds it). */
  guard<T>(instanceId: string, body: () => Promise<T>): Promise<T>;
  stepStarted(op: OperationContext, instanceId: string, bindingId: string, step: string): Promise<number>;
  stepEnded(runId: number, outcome: string): Promise<void>;
  liveResource(instanceId: string, bindingId: string, kind: string): Promise<{ id: number; secret: string | null } | undefined>;
  createResource(op: OperationContext, instanceId: string, bindingId: string, kind: string, secret: string | undefined): Promise<void>;
  deleteResource(op: OperationContext, id: number): Promise<void>;
  failuresSoFar(instanceId: string, bindingId: string, step: string): Promise<number>;
  violation(instanceId: string, detail: string): Promise<void>;
}

const noRecorder: Recorder = {
  guard: (_i, body) => body(),
  stepStarted: async () => 0,
  stepEnded: async () => {},
  liveResource: async () => undefined,
  createResource: async () => {},
  deleteResource: async () => {},
  failuresSoFar: async () => 0,
  violation: async () => {},
};

class PgRecorder implements Recorder {
  readonly #pool: pg.Pool;
  constructor(url: string, log: Logger) {
    this.#pool = new pg.Pool({ connectionString: url, max: 12 });
    this.#pool.on('error', (err) => log.warn({ err }, 'recording database connection failed'));
  }

  async guard<T>(instanceId: string, body: () => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let locked: boolean;
    try {
      const { rows } = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtext($1)) AS ok`, [instanceId]);
      locked = rows[0]!.ok;
    } catch (err) {
      client.release(true);
      throw err;
    }
    try {
      if (!locked) await this.violation(instanceId, 'another process was running steps of this instance at the same time');
      return await body();
    } finally {
      let healthy = true;
      if (locked) {
        try {
          await client.query(`SELECT pg_advisory_unlock(hashtext($1))`, [instanceId]);
        } catch {
          healthy = false;
        }
      }
      client.release(!healthy);
    }
  }

  async stepStarted(op: OperationContext, instanceId: string, bindingId: string, step: string): Promise<number> {
    const { rows } = await this.#pool.query<{ id: number }>(
      `INSERT INTO step_runs (pid, operation_id, attempt, instance_id, binding_id, step) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
      [process.pid, op.operationId, op.attempt, instanceId, bindingId, step],
    );
    return Number(rows[0]!.id);
  }

  async stepEnded(runId: number, outcome: string): Promise<void> {
    await this.#pool.query(`UPDATE step_runs SET outcome = $2, ended_at = clock_timestamp() WHERE id = $1`, [runId, outcome]);
  }

  async liveResource(instanceId: string, bindingId: string, kind: string) {
    const { rows } = await this.#pool.query<{ id: string; secret: string | null }>(
      `SELECT id, secret FROM resources WHERE instance_id = $1 AND binding_id = $2 AND kind = $3 AND deleted_at IS NULL ORDER BY id LIMIT 1`,
      [instanceId, bindingId, kind],
    );
    return rows[0] ? { id: Number(rows[0].id), secret: rows[0].secret } : undefined;
  }

  async createResource(op: OperationContext, instanceId: string, bindingId: string, kind: string, secret: string | undefined): Promise<void> {
    await this.#pool.query(
      `INSERT INTO resources (instance_id, binding_id, kind, secret, created_by_operation, created_by_pid) VALUES ($1, $2, $3, $4, $5, $6)`,
      [instanceId, bindingId, kind, secret ?? null, op.operationId, process.pid],
    );
  }

  async deleteResource(op: OperationContext, id: number): Promise<void> {
    await this.#pool.query(`UPDATE resources SET deleted_at = clock_timestamp(), deleted_by_operation = $2 WHERE id = $1 AND deleted_at IS NULL`, [
      id,
      op.operationId,
    ]);
  }

  async failuresSoFar(instanceId: string, bindingId: string, step: string): Promise<number> {
    const { rows } = await this.#pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM step_runs WHERE instance_id = $1 AND binding_id = $2 AND step = $3 AND outcome LIKE '%transient-failure'`,
      [instanceId, bindingId, step],
    );
    return Number(rows[0]!.n);
  }

  async violation(instanceId: string, detail: string): Promise<void> {
    await this.#pool.query(`INSERT INTO violations (pid, instance_id, detail) VALUES ($1, $2, $3)`, [process.pid, instanceId, detail]);
  }
}

function injection(parameters: JsonObject, plan: PlanConfig): Injection {
  const delay = parameters.step_delay_ms;
  const mode = parameters.fail_mode;
  const delays: Record<string, number> = {};
  if (typeof parameters.step_delays === 'object' && parameters.step_delays !== null) {
    for (const [k, v] of Object.entries(parameters.step_delays)) if (typeof v === 'number' && v >= 0) delays[k] = v;
  }
  return {
    delays,
    delayMs: typeof delay === 'number' && delay >= 0 ? delay : plan.stepDelayMs,
    failStep: typeof parameters.fail_step === 'string' ? parameters.fail_step : undefined,
    failMode: mode === 'permanent' || mode === 'transient' ? mode : undefined,
    failTimes: typeof parameters.fail_times === 'number' ? parameters.fail_times : 1,
  };
}

export class RecordingProvisioner implements Provisioner {
  readonly kind = 'recording';
  readonly #url: string | undefined;
  readonly #log: Logger;
  #recorder: Recorder | undefined;

  constructor(url: string | undefined, log: Logger) {
    this.#url = url;
    this.#log = log.child({ provisioner: 'recording' });
  }

  parsePlanConfig(block: JsonObject) {
    const problems: Array<{ path: string; message: string }> = [];
    for (const key of Object.keys(block)) {
      if (!['step_delay_ms', 'async', 'record'].includes(key)) problems.push({ path: key, message: 'unknown setting for kind recording' });
    }
    const delay = block.step_delay_ms ?? 0;
    if (typeof delay !== 'number' || delay < 0) problems.push({ path: 'step_delay_ms', message: 'must be a number >= 0' });
    if (block.async !== undefined && typeof block.async !== 'boolean') problems.push({ path: 'async', message: 'must be a boolean' });
    if (block.record !== undefined && typeof block.record !== 'boolean') problems.push({ path: 'record', message: 'must be a boolean' });
    if (problems.length > 0) return { problems };
    const config: PlanConfig = { stepDelayMs: delay as number, async: block.async !== false, record: block.record !== false };
    return { config };
  }

  isAsync(_kind: OperationKind, plan: CatalogPlan): boolean {
    return (plan.provisioner.config as PlanConfig).async;
  }

  #config(plan: CatalogPlan): PlanConfig {
    return plan.provisioner.config as PlanConfig;
  }

  #rec(plan: CatalogPlan): Recorder {
    if (!this.#config(plan).record) return noRecorder;
    if (!this.#url) throw new PermanentError(`the recording provisioner needs ${RECORDING_ENV}`);
    return (this.#recorder ??= new PgRecorder(this.#url, this.#log));
  }

  /** One step: records its execution and outcome; `body` returns the outcome name. */
  async #step(
    rec: Recorder,
    op: OperationContext,
    inj: Injection,
    ids: { instanceId: string; bindingId: string },
    step: string,
    body: () => Promise<string>,
  ): Promise<void> {
    op.signal.throwIfAborted();
    await op.progress(`Running step ${step}`);
    const runId = await rec.stepStarted(op, ids.instanceId, ids.bindingId, step);
    let outcome: string;
    try {
      outcome = await body();
    } catch (err) {
      await rec.stepEnded(runId, err instanceof StepAborted || op.signal.aborted ? 'aborted' : 'error').catch(() => {});
      throw err;
    }
    if (inj.failStep === step && inj.failMode === 'permanent') {
      await rec.stepEnded(runId, `${outcome}, then permanent-failure`);
      throw new PermanentError(`The backend rejected step ${step} of ${ids.bindingId ? `binding ${ids.bindingId}` : `instance ${ids.instanceId}`}: quota exceeded (simulated permanent failure).`);
    }
    if (inj.failStep === step && inj.failMode === 'transient' && (await rec.failuresSoFar(ids.instanceId, ids.bindingId, step)) < inj.failTimes) {
      await rec.stepEnded(runId, `${outcome}, then transient-failure`);
      throw new Error(`connection to the backend reset during step ${step} (simulated transient failure)`);
    }
    await rec.stepEnded(runId, outcome);
  }

  async #create(rec: Recorder, op: OperationContext, inj: Injection, ids: { instanceId: string; bindingId: string }, step: string, kind: string, secret?: string) {
    await this.#step(rec, op, inj, ids, step, async () => {
      const existing = await rec.liveResource(ids.instanceId, ids.bindingId, kind);
      if (existing) {
        if (secret !== undefined && existing.secret !== secret) {
          await rec.violation(ids.instanceId, `${kind} exists with a different secret than the checkpointed one`);
        }
        return 'exists';
      }
      // The window between the check and the create: a second worker running
      // this operation concurrently would decide to create too.
      await sleep(inj.delays[step] ?? inj.delayMs, op.signal);
      op.signal.throwIfAborted();
      await rec.createResource(op, ids.instanceId, ids.bindingId, kind, secret);
      failpoint(`recording.after-${step}`);
      return 'created';
    });
  }

  async #delete(rec: Recorder, op: OperationContext, inj: Injection, ids: { instanceId: string; bindingId: string }, step: string, kind: string) {
    await this.#step(rec, op, inj, ids, step, async () => {
      const existing = await rec.liveResource(ids.instanceId, ids.bindingId, kind);
      if (!existing) return 'absent';
      await sleep(inj.delays[step] ?? inj.delayMs, op.signal);
      op.signal.throwIfAborted();
      await rec.deleteResource(op, existing.id);
      return 'deleted';
    });
  }

  #bindingInjection(op: BindingOperation): Injection {
    const instanceDelay = injection(op.instance.parameters, this.#config(op.instance.plan)).delayMs;
    return injection(op.binding.parameters, { ...this.#config(op.instance.plan), stepDelayMs: instanceDelay });
  }

  /** record: false makes every operation free: no steps, no checkpoints, no database (the replica bench); a provision waits only for an instance's step_delay_ms. */
  #free(plan: CatalogPlan): boolean {
    return !this.#config(plan).record;
  }

  async provision(op: InstanceOperation) {
    if (this.#free(op.instance.plan)) {
      // An I/O-bound provisioner for the replica bench: the instance's step_delay_ms, waited once.
      const delay = op.instance.parameters.step_delay_ms;
      if (typeof delay === 'number' && delay > 0) await sleep(delay, op.signal);
      return { dashboardUrl: `https://recording.example/instances/${encodeURIComponent(op.instance.id)}` };
    }
    const rec = this.#rec(op.instance.plan);
    const inj = injection(op.instance.parameters, this.#config(op.instance.plan));
    const ids = { instanceId: op.instance.id, bindingId: '' };
    return rec.guard(ids.instanceId, async () => {
      // Checkpointed before use, so a re-run reuses it (and the server keeps its password).
      if (typeof op.state.password !== 'string') await op.checkpoint({ password: randomBytes(12).toString('hex') });
      await this.#create(rec, op, inj, ids, 'create-volume', 'volume');
      await this.#create(rec, op, inj, ids, 'create-server', 'server', op.state.password as string);
      return { dashboardUrl: `https://recording.example/instances/${encodeURIComponent(op.instance.id)}` };
    });
  }

  async update(op: InstanceOperation) {
    if (this.#free(op.instance.plan)) return;
    const rec = this.#rec(op.instance.plan);
    const inj = injection(op.instance.parameters, this.#config(op.instance.plan));
    const ids = { instanceId: op.instance.id, bindingId: '' };
    await rec.guard(ids.instanceId, () =>
      this.#step(rec, op, inj, ids, 'resize-volume', async () => {
        await sleep(inj.delays['resize-volume'] ?? inj.delayMs, op.signal);
        return 'updated';
      }),
    );
  }

  async deprovision(op: InstanceOperation) {
    if (this.#free(op.instance.plan)) return;
    const rec = this.#rec(op.instance.plan);
    const inj = injection(op.instance.parameters, this.#config(op.instance.plan));
    const ids = { instanceId: op.instance.id, bindingId: '' };
    await rec.guard(ids.instanceId, async () => {
      await this.#delete(rec, op, inj, ids, 'delete-server', 'server');
      await this.#delete(rec, op, inj, ids, 'delete-volume', 'volume');
    });
  }

  async bind(op: BindingOperation): Promise<BindResult> {
    if (this.#free(op.instance.plan)) return { credentials: { username: `u-${op.binding.id}` } };
    const rec = this.#rec(op.instance.plan);
    const inj = this.#bindingInjection(op);
    const ids = { instanceId: op.instance.id, bindingId: op.binding.id };
    return rec.guard(ids.instanceId, async () => {
      if (typeof op.state.password !== 'string') await op.checkpoint({ password: randomBytes(12).toString('hex') });
      await this.#create(rec, op, inj, ids, 'create-credential', 'credential', op.state.password as string);
      await this.#create(rec, op, inj, ids, 'create-grant', 'grant');
      return {
        credentials: {
          username: `u-${op.binding.id}`,
          password: op.state.password as string,
          server_password: op.instance.state.password as string,
        },
      };
    });
  }

  async unbind(op: BindingOperation) {
    if (this.#free(op.instance.plan)) return;
    const rec = this.#rec(op.instance.plan);
    const inj = this.#bindingInjection(op);
    const ids = { instanceId: op.instance.id, bindingId: op.binding.id };
    await rec.guard(ids.instanceId, async () => {
      await this.#delete(rec, op, inj, ids, 'delete-grant', 'grant');
      await this.#delete(rec, op, inj, ids, 'delete-credential', 'credential');
    });
  }
}

export function createProvisioners(config: Config, log: Logger): Provisioner[] {
  return [new RecordingProvisioner(config.env[RECORDING_ENV], log)];
}
