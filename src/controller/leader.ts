// Leader election on a coordination.k8s.io Lease, as client-go does it: the
// holder renews every `retryPeriod`; a candidate takes the Lease once
// renewTime + leaseDuration has passed; every write carries the resourceVersion
// read, so two candidates cannot both win. A leader that cannot renew within
// the lease duration stops leading (onLost) before another can take over. On a
// graceful stop the Lease is released so a standby takes over at once.
import { setTimeout as delay } from 'node:timers/promises';
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';

/**
 * A Lease time as the API server parses it (RFC 3339 with microseconds). The client's serializer passes
 * MicroTime values through untouched, so a Date would go out with milliseconds and be refused.
 */
const microTime = (d: Date): Date => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as Date;

export interface LeaderOptions {
  api: CoordinationV1Api;
  namespace: string;
  name: string;
  identity: string;
  leaseSeconds: number;
  log: Logger;
}

export class LeaderElector {
  readonly #o: LeaderOptions;
  readonly #stop = new AbortController();
  #leading = false;
  #lastRenew = 0;
  #expiresAt: number | undefined;

  constructor(opts: LeaderOptions) {
    this.#o = opts;
  }

  get leading(): boolean {
    return this.#leading;
  }

  /** Runs until stop(): calls onStarted when this process becomes the leader, onLost if it stops being it. */
  async run(onStarted: () => void, onLost: () => void): Promise<void> {
    const retryMs = Math.max(200, (this.#o.leaseSeconds * 1000) / 4);
    while (!this.#stop.signal.aborted) {
      let held = false;
      this.#expiresAt = undefined;
      try {
        held = await this.#tryAcquireOrRenew();
      } catch (err) {
        this.#o.log.warn({ err }, 'leader election: the Lease could not be read or written');
      }
      if (held) {
        this.#lastRenew = Date.now();
        if (!this.#leading) {
          this.#leading = true;
          this.#o.log.info({ lease: `${this.#o.namespace}/${this.#o.name}`, identity: this.#o.identity }, 'leader election: leading');
          onStarted();
        }
      } else if (this.#leading && Date.now() - this.#lastRenew > this.#o.leaseSeconds * 1000 * 0.8) {
        this.#leading = false;
        this.#o.log.error('leader election: the Lease could not be renewed in time; stopping leading');
        onLost();
      }
      // A standby wakes right when the holder's lease runs out, so failover takes at most the lease duration after its last renewal.
      const untilExpiry = !held && this.#expiresAt !== undefined ? Math.max(0, this.#expiresAt - Date.now() + 20) : retryMs;
      await delay(Math.min(retryMs, untilExpiry), undefined, { signal: this.#stop.signal }).catch(() => undefined);
    }
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { api, namespace, name, identity, leaseSeconds } = this.#o;
    const now = new Date();
    let lease: V1Lease | undefined;
    try {
      lease = await api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
    if (!lease) {
      await api.createNamespacedLease({
        namespace,
        body: { metadata: { name, namespace }, spec: { holderIdentity: identity, leaseDurationSeconds: leaseSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 } },
      });
      return true;
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity;
    const renewedAt = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = !holder || renewedAt + (spec.leaseDurationSeconds ?? leaseSeconds) * 1000 < now.getTime();
    if (holder !== identity && !expired) {
      this.#expiresAt = renewedAt + (spec.leaseDurationSeconds ?? leaseSeconds) * 1000;
      return false;
    }
    const taking = holder !== identity;
    try {
      await api.replaceNamespacedLease({
        name,
        namespace,
        body: {
          metadata: { name, namespace, resourceVersion: lease.metadata?.resourceVersion },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: leaseSeconds,
            acquireTime: taking || !spec.acquireTime ? microTime(now) : microTime(new Date(spec.acquireTime)),
            renewTime: microTime(now),
            leaseTransitions: (spec.leaseTransitions ?? 0) + (taking ? 1 : 0),
          },
        },
      });
      return true;
    } catch (err) {
      if ((err as { code?: number }).code === 409) return false;
      throw err;
    }
  }

  /** Stops campaigning; when leading, releases the Lease so a standby takes over without waiting for it to expire. */
  async stop(): Promise<void> {
    this.#stop.abort();
    if (!this.#leading) return;
    this.#leading = false;
    const { api, namespace, name, identity } = this.#o;
    try {
      const lease = await api.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity !== identity) return;
      await api.replaceNamespacedLease({
        name,
        namespace,
        body: { metadata: { name, namespace, resourceVersion: lease.metadata?.resourceVersion }, spec: { holderIdentity: undefined, leaseDurationSeconds: 1, renewTime: microTime(new Date(0)), leaseTransitions: lease.spec?.leaseTransitions } },
      });
    } catch (err) {
      this.#o.log.warn({ err }, 'leader election: the Lease could not be released; a standby takes over when it expires');
    }
  }
}
