// Berth's credential expiry sweep: bindings of plans with `credential_lifetime`
// answer `metadata.expires_at`; once that has passed, this asks the binding's
// provisioner to end its credentials (expireBinding: lock the login, end its
// sessions) and records that it did (bindings.credentials_expired_at).
//
// Driven only by what is stored (expires_at and that column), so it survives
// restarts: a process that starts (or another replica) ends whatever fell due
// meanwhile. Every replica sweeps; ending credentials converges, so two
// replicas doing the same binding is harmless. It runs beside the operation
// engine, not as an operation of the binding: it never changes the binding's
// state, and an unbind or deprovision running at the same time removes the
// login anyway (expireBinding treats "already gone" as done).
//
// PostgreSQL also refuses the password at expires_at by itself (VALID UNTIL);
// MySQL/MariaDB have no such thing, so there this sweep is what makes
// credentials stop working (see MysqlProvisioner.expireBinding).
import type { Logger } from 'pino';
import type { Catalog } from '../catalog/catalog.ts';
import { pause } from '../lib/abortable.ts';
import type { ProvisionerRegistry } from '../provisioners/provisioner.ts';
import type { Stores } from '../store/unit-of-work.ts';

/** Bindings ended per round; more wait for the next round (a minute's backlog after downtime drains in a few). */
const BATCH = 100;
/** A server that does not answer does not hold the sweep: the next round tries again. */
const STEP_TIMEOUT_MS = 30_000;

export class CredentialExpiry {
  readonly #stores: Stores;
  readonly #catalog: Catalog;
  readonly #provisioners: ProvisionerRegistry;
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #stop = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(deps: { stores: Stores; catalog: Catalog; provisioners: ProvisionerRegistry; log: Logger; intervalMs: number }) {
    this.#stores = deps.stores;
    this.#catalog = deps.catalog;
    this.#provisioners = deps.provisioners;
    this.#log = deps.log.child({ component: 'credential-expiry' });
    this.#intervalMs = deps.intervalMs;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      try {
        await this.sweepOnce(signal);
      } catch (err) {
        // The state database unreachable: the next round tries again.
        if (!signal.aborted) this.#log.warn({ err: (err as Error).message }, 'credential expiry sweep failed; retrying');
      }
      await pause(this.#intervalMs, signal);
    }
  }

  /** One round: ends the credentials of the bindings that are due; returns how many it ended. */
  async sweepOnce(signal: AbortSignal): Promise<number> {
    let ended = 0;
    for (const due of await this.#stores.bindings.dueToExpire(BATCH)) {
      if (signal.aborted) break;
      try {
        if (await this.#expire(due.instanceId, due.id, signal)) ended++;
      } catch (err) {
        if (signal.aborted) break;
        this.#log.warn({ instanceId: due.instanceId, bindingId: due.id, err: (err as Error).message }, 'could not end expired credentials; retrying');
      }
    }
    return ended;
  }

  async #expire(instanceId: string, bindingId: string, stop: AbortSignal): Promise<boolean> {
    const instance = await this.#stores.instances.get(instanceId);
    const binding = await this.#stores.bindings.get(instanceId, bindingId);
    if (!instance || !binding || binding.state !== 'ready') return false;
    const kind = instance.planSnapshot?.provisioner.kind ?? this.#catalog.plan(instance.planId)?.provisioner.kind;
    const provisioner = kind === undefined ? undefined : this.#provisioners.get(kind);
    if (provisioner?.expireBinding) {
      await provisioner.expireBinding({
        instanceId,
        bindingId,
        instanceState: instance.provisionerState,
        bindingState: binding.provisionerState,
        signal: AbortSignal.any([stop, AbortSignal.timeout(STEP_TIMEOUT_MS)]),
      });
    } else {
      this.#log.warn({ instanceId, bindingId, kind }, 'a binding has expires_at but its provisioner cannot end credentials; marking it expired');
    }
    await this.#stores.bindings.markExpired(instanceId, bindingId);
    this.#log.info({ instanceId, bindingId, expiresAt: binding.metadata?.expires_at }, 'ended expired binding credentials');
    return true;
  }
}
