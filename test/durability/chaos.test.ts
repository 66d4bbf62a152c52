// Chaos: Berth runs as a child process against the real Postgres server with
// the recording provisioner while a stream of provision / bind / unbind /
// deprovision requests (with deletes during creates, permanent and transient
// failures, a synchronous plan) flows in, and the process is killed with
// SIGKILL at random moments and restarted each time. Afterwards every
// operation answered 202 has ended, no side effect ran twice, no two processes
// worked on the same instance at once, and nothing is left half-made without a
// failed operation that says so (checkInvariants).
//
// BERTH_CHAOS_KILLS (default 20) sets the number of kills; `npm run chaos` runs
// a longer version. BERTH_CHAOS_SEED replays the same choices (timings still vary).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnBerth, type BerthProcess } from '../support/berth.ts';
import type { OsbClient, Reply } from '../support/osb-client.ts';
import {
  bindBody,
  checkInvariants,
  createDatabases,
  provisionBody,
  query,
  RECORDING_PLANS,
  RECORDING_SERVICE_ID,
  recordingEnv,
  RoutedClient,
  sleep,
  untilAnswered,
  waitForOperation,
  type Databases,
} from './helpers.ts';

const KILLS = Number(process.env.BERTH_CHAOS_KILLS ?? 20);
const WORKERS = Number(process.env.BERTH_CHAOS_WORKERS ?? 6);
const SEED = Number(process.env.BERTH_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));

function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Accepted {
  kind: string;
  instanceId: string;
  bindingId?: string;
  operation: string;
  /** Whether the scenario expects this operation to succeed (no failure injected, not halted). */
  mustSucceed: boolean;
}

describe('durability: chaos (kill -9 at random moments)', () => {
  let dbs: Databases | undefined;
  const processes: BerthProcess[] = [];

  after(async () => {
    for (const p of processes) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        process.kill(p.pid, 'SIGKILL');
        await p.exited;
      }
    }
    await dbs?.drop();
  });

  it(`every accepted operation ends and nothing runs twice across ${KILLS} kills`, async (t) => {
    t.diagnostic(`seed ${SEED} (BERTH_CHAOS_SEED), ${KILLS} kills, ${WORKERS} concurrent request streams`);
    const rng = mulberry32(SEED);
    const between = (lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo));
    dbs = await createDatabases();
    const env = recordingEnv(dbs.berth.url, dbs.recording.url, { LOG_LEVEL: 'warn' });
    const route = new RoutedClient([]);
    let current!: BerthProcess;
    const start = async () => {
      current = await spawnBerth(env);
      processes.push(current);
      route.urls = [current.url];
    };
    await start();

    const accepted: Accepted[] = [];
    // Set when the killer fails (e.g. a restart did not come up): the request streams give up instead of waiting.
    const giveUp = new AbortController();
    const problems: string[] = [];
    const c = () => route.client();

    /** Sends a request until it is answered (across restarts); checks the status is one the OSB rules allow here. */
    const send = async (what: string, request: (client: OsbClient) => Promise<Reply>, allowed: number[]): Promise<Reply> => {
      const r = await untilAnswered(() => request(c()), 120_000, giveUp.signal);
      if (!allowed.includes(r.status)) {
        problems.push(`${what}: unexpected ${r.status} ${r.text}`);
        throw new Error(`${what}: unexpected ${r.status} ${r.text}`);
      }
      return r;
    };
    const track = (r: Reply, a: Omit<Accepted, 'operation'>) => {
      if (r.status === 202) accepted.push({ ...a, operation: r.body.operation });
      return r.status === 202 ? (r.body.operation as string) : undefined;
    };
    const wait = async (a: { instanceId: string; bindingId?: string }, operation: string | undefined, expect?: 'succeeded' | 'failed') => {
      if (!operation) return undefined;
      const end = await waitForOperation(c, { ...a, operation }, 180_000, giveUp.signal);
      if (expect && end.state !== expect) problems.push(`${a.instanceId}${a.bindingId ? `/${a.bindingId}` : ''} ${operation}: expected ${expect}, got ${JSON.stringify(end)}`);
      return end.state;
    };
    const del = (id: string, plan: keyof typeof RECORDING_PLANS) =>
      send(`deprovision ${id}`, (cl) => cl.deprovision(id, RECORDING_SERVICE_ID, RECORDING_PLANS[plan]), [200, 202, 410]);

    let stop = false;
    let lifecycles = 0;
    const lifecycle = async (worker: number, n: number) => {
      const id = `chaos-${worker}-${n}`;
      const delay = [10, 40, 80, 150][between(0, 4)]!;
      const roll = rng();
      if (roll < 0.12) {
        // A delete arrives while the create runs: it halts the create and deletes.
        const p = await send(`provision ${id}`, (cl) => cl.provision(id, provisionBody('async', { step_delay_ms: delay * 2 })), [200, 202]);
        const pOp = track(p, { kind: 'provision', instanceId: id, mustSucceed: false });
        await sleep(between(0, 400));
        const d = await del(id, 'async');
        const dOp = track(d, { kind: 'deprovision', instanceId: id, mustSucceed: true });
        await wait({ instanceId: id }, dOp, 'succeeded');
        await wait({ instanceId: id }, pOp);
        return;
      }
      if (roll < 0.22) {
        // A permanent failure half-way; the platform's orphan mitigation deletes the instance.
        const p = await send(`provision ${id}`, (cl) => cl.provision(id, provisionBody('async', { step_delay_ms: delay, fail_step: 'create-server', fail_mode: 'permanent' })), [202]);
        await wait({ instanceId: id }, track(p, { kind: 'provision', instanceId: id, mustSucceed: false }), 'failed');
        const d = await del(id, 'async');
        await wait({ instanceId: id }, track(d, { kind: 'deprovision', instanceId: id, mustSucceed: true }), 'succeeded');
        return;
      }
      if (roll < 0.32) {
        // A synchronous plan: the answer comes when the work is done (or 202 when a retry finds it running).
        const p = await send(`provision ${id}`, (cl) => cl.provision(id, provisionBody('sync')), [200, 201, 202]);
        await wait({ instanceId: id }, track(p, { kind: 'provision', instanceId: id, mustSucceed: true }), 'succeeded');
        if (rng() < 0.5) {
          const d = await del(id, 'sync');
          await wait({ instanceId: id }, track(d, { kind: 'deprovision', instanceId: id, mustSucceed: true }), 'succeeded');
        }
        return;
      }
      const transient = rng() < 0.25 ? { fail_step: ['create-volume', 'create-server'][between(0, 2)], fail_mode: 'transient', fail_times: 1 } : {};
      const p = await send(`provision ${id}`, (cl) => cl.provision(id, provisionBody('async', { step_delay_ms: delay, ...transient })), [200, 202]);
      const state = await wait({ instanceId: id }, track(p, { kind: 'provision', instanceId: id, mustSucceed: true }), 'succeeded');
      if (state !== undefined && state !== 'succeeded') return;
      const bindings = [`${id}-b1`, ...(rng() < 0.5 ? [`${id}-b2`] : [])];
      for (const b of bindings) {
        const r = await send(`bind ${b}`, (cl) => cl.bind(id, b, bindBody('async')), [200, 202]);
        await wait({ instanceId: id, bindingId: b }, track(r, { kind: 'bind', instanceId: id, bindingId: b, mustSucceed: true }), 'succeeded');
      }
      if (rng() < 0.6) {
        const b = bindings[0]!;
        const r = await send(`unbind ${b}`, (cl) => cl.unbind(id, b, RECORDING_SERVICE_ID, RECORDING_PLANS.async), [200, 202, 410]);
        await wait({ instanceId: id, bindingId: b }, track(r, { kind: 'unbind', instanceId: id, bindingId: b, mustSucceed: true }), 'succeeded');
      }
      if (rng() < 0.7) {
        // Deprovision removes any binding still there as well.
        const d = await del(id, 'async');
        await wait({ instanceId: id }, track(d, { kind: 'deprovision', instanceId: id, mustSucceed: true }), 'succeeded');
      }
    };

    const workers = Array.from({ length: WORKERS }, async (_, w) => {
      for (let n = 0; !stop; n++) {
        lifecycles++;
        await lifecycle(w, n);
      }
    });

    const kills: number[] = [];
    const killer = (async () => {
      try {
        for (let k = 1; k <= KILLS; k++) {
          await sleep(between(100, 1500));
          const victim = current;
          process.kill(victim.pid, 'SIGKILL');
          assert.equal(await victim.exited, 'SIGKILL');
          kills.push(victim.pid);
          await start();
        }
      } catch (err) {
        giveUp.abort(err);
        throw err;
      } finally {
        stop = true;
      }
    })();

    const results = await Promise.allSettled(workers);
    await killer;
    const crashed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
    assert.deepEqual(crashed, [], `every request stream ran to its end; the last process said:\n${current.output().slice(-3000)}`);

    // Every operation that was answered 202 has ended, succeeded or failed.
    for (const a of accepted) {
      const end = await waitForOperation(c, a);
      assert.ok(end.state === 'succeeded' || end.state === 'failed', `${a.kind} ${a.operation} ended`);
      if (a.mustSucceed && end.state !== 'succeeded') problems.push(`${a.kind} ${a.operation} of ${a.instanceId}: ${JSON.stringify(end)}`);
    }
    assert.deepEqual(problems, [], 'every answer followed the OSB rules and every operation ended as the scenario says');

    const summary = await checkInvariants(dbs.berth.url, dbs.recording.url);
    const [takeovers] = await query<{ n: number }>(
      dbs.recording.url,
      `SELECT count(*)::int AS n FROM (SELECT operation_id FROM step_runs GROUP BY 1 HAVING count(DISTINCT pid) > 1) x`,
    );
    const [interrupted] = await query<{ n: number }>(dbs.recording.url, `SELECT count(*)::int AS n FROM step_runs WHERE outcome = 'started'`);
    t.diagnostic(
      `${kills.length} kills, ${lifecycles} lifecycles, ${accepted.length} operations answered 202, ${summary.operations} operations in all, ` +
        `${takeovers!.n} resumed by another process, ${interrupted!.n} steps cut off by a kill, ${summary.createdResources} resources created, ${summary.stepRuns} step runs`,
    );
    // With several request streams in flight, some kill lands mid-operation; if none did, the run proved nothing.
    assert.ok(takeovers!.n > 0, 'at least one operation was resumed by a later process');

    // The last process still shuts down cleanly.
    process.kill(current.pid, 'SIGTERM');
    assert.equal(await current.exited, 0, current.output().slice(-2000));
  });
});
