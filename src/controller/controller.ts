// The controller: informers (list + watch from @kubernetes/client-node) on
// ServiceInstances, ServiceBindings, ClusterServiceBrokers and Secrets feed one
// work queue; workers run the reconcilers (instances.ts, bindings.ts); only the
// leader (a Lease, leader.ts) runs informers and workers. Metrics count
// resources per condition reason and broker calls.
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import type { KubeConfig, KubernetesObject, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Counter, Gauge, Registry } from 'prom-client';
import { loadKubernetesClient } from '../kubernetes/client.ts';
import { Brokers, BrokerUnavailable } from './brokers.ts';
import { bindingKey, reconcileBinding } from './bindings.ts';
import { RetryLater, StatusDraft, type Cache, type ReconcileContext } from './context.ts';
import { instanceKey, reconcileInstance } from './instances.ts';
import { KubeWriter } from './kube.ts';
import { LeaderElector } from './leader.ts';
import { OperationWatches } from './operation-watch.ts';
import { GROUP, LOCAL_BROKER, PLURALS, VERSION, type ClusterServiceBroker, type ClusterServiceBrokerStatus, type ServiceBinding, type ServiceInstance } from './resources.ts';
import { WorkQueue } from './work-queue.ts';
import { OsbError } from '../osb-client/index.ts';

export interface ControllerOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  /** The local Berth: the default broker. */
  broker: { url: string; auth?: { username: string; password: string } | { bearerToken: string }; caPem?: string; apiVersion?: string };
  /** Namespace of the Lease and of ClusterServiceBroker auth Secrets. */
  namespace: string;
  workers?: number;
  identity?: string;
  leaseSeconds?: number;
  /** How long a rotated binding's predecessor keeps working before it is unbound (default 60; capped at its expires_at). */
  rotationGraceSeconds?: number;
  /** The Lease's name (default berth-controller): controllers sharing one elect one leader. */
  leaseName?: string;
  /**
   * A label selector: only ServiceInstances, ServiceBindings and ClusterServiceBrokers that match are reconciled
   * (shards of one cluster, each with its own Berth and Lease).
   */
  selector?: string;
  /**
   * Long-poll Berth's last_operation (default true). Off, operations are polled as Retry-After says, as for any
   * broker: for a proxy in between that cuts long requests, and the bench's baseline.
   */
  longPoll?: boolean;
  /** Called when leadership is lost (the `berth controller` process exits so nothing runs twice). */
  onLostLeadership?: () => void;
}

interface Informer<T> extends Cache<T> {
  on(verb: string, cb: (obj: T) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export class Controller {
  readonly metrics = new Registry();
  readonly #o: ControllerOptions;
  readonly #log: Logger;
  #queue = new WorkQueue();
  readonly #identity: string;
  #elector: LeaderElector | undefined;
  #informers: Informer<KubernetesObject>[] = [];
  #watches: OperationWatches | undefined;
  #brokers: Brokers | undefined;
  #stopped = false;
  readonly #brokerCalls: Counter<'call'>;
  readonly #reconciles: Counter<'kind' | 'result'>;
  /** Status written but not yet seen by the informer: read instead of the cached object until it catches up. */
  readonly #fresh = new Map<string, KubernetesObject>();

  constructor(opts: ControllerOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ component: 'controller' });
    this.#identity = opts.identity ?? `${hostname()}-${process.pid}`;
    this.#brokerCalls = new Counter({ name: 'berth_controller_broker_calls_total', help: 'OSB calls the controller made, by call', labelNames: ['call'], registers: [this.metrics] });
    this.#reconciles = new Counter({ name: 'berth_controller_reconciles_total', help: 'Reconciles by kind and result', labelNames: ['kind', 'result'], registers: [this.metrics] });
  }

  get leading(): boolean {
    return this.#elector?.leading ?? false;
  }

  /** Broker calls made so far (tests and the bench read it). */
  async brokerCalls(): Promise<number> {
    const m = await this.#brokerCalls.get();
    return m.values.reduce((n, v) => n + v.value, 0);
  }

  /** Campaigns for the Lease; runs the informers and workers while leading. Resolves once campaigning started. */
  async start(): Promise<void> {
    const k8s = await loadKubernetesClient();
    const kc = this.#o.kubeConfig;
    this.#elector = new LeaderElector({
      api: kc.makeApiClient(k8s.CoordinationV1Api),
      namespace: this.#o.namespace,
      name: this.#o.leaseName ?? 'berth-controller',
      identity: this.#identity,
      leaseSeconds: this.#o.leaseSeconds ?? 15,
      log: this.#log,
    });
    void this.#elector.run(
      () => {
        void this.#lead().catch((err) => {
          this.#log.error({ err }, 'the controller failed to start leading');
          this.#o.onLostLeadership?.();
        });
      },
      () => {
        void this.#stopLeading();
        this.#o.onLostLeadership?.();
      },
    );
  }

  async #lead(): Promise<void> {
    // A fresh queue each time this process starts leading (it may have led and lost before).
    this.#queue = new WorkQueue();
    const k8s = await loadKubernetesClient();
    const kc = this.#o.kubeConfig;
    const kube = new KubeWriter(kc, k8s, this.#log, 'berth-controller');
    const custom = kube.custom;
    const selector = this.#o.selector;
    const listCustom = (plural: string) => () => custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural, labelSelector: selector }) as Promise<never>;
    const path = (plural: string) => `/apis/${GROUP}/${VERSION}/${plural}`;
    const instances = k8s.makeInformer(kc, path(PLURALS.ServiceInstance), listCustom(PLURALS.ServiceInstance), selector) as unknown as Informer<ServiceInstance>;
    const bindings = k8s.makeInformer(kc, path(PLURALS.ServiceBinding), listCustom(PLURALS.ServiceBinding), selector) as unknown as Informer<ServiceBinding>;
    const clusterBrokers = k8s.makeInformer(kc, path(PLURALS.ClusterServiceBroker), listCustom(PLURALS.ClusterServiceBroker), selector) as unknown as Informer<ClusterServiceBroker>;
    const secrets = k8s.makeInformer(kc, '/api/v1/secrets', () => kube.core.listSecretForAllNamespaces()) as unknown as Informer<V1Secret>;
    this.#informers = [instances, bindings, clusterBrokers, secrets] as Informer<KubernetesObject>[];

    let clusterId = 'unknown';
    try {
      clusterId = (await kube.core.readNamespace({ name: 'kube-system' })).metadata?.uid ?? clusterId;
    } catch (err) {
      this.#log.warn({ err }, 'the cluster id (kube-system namespace uid) could not be read; sending "unknown"');
    }
    const fresh = <T extends KubernetesObject>(cache: Cache<T>, kind: string): Cache<T> => ({
      get: (name, namespace) => {
        const cached = cache.get(name, namespace);
        const key = `${kind}/${namespace ?? ''}/${name}`;
        const written = this.#fresh.get(key) as T | undefined;
        if (!cached || !written) return cached;
        if (cached.metadata?.uid !== written.metadata?.uid || BigInt(cached.metadata?.resourceVersion ?? '0') >= BigInt(written.metadata?.resourceVersion ?? '0')) {
          this.#fresh.delete(key);
          return cached;
        }
        return written;
      },
      list: (namespace) => cache.list(namespace),
    });
    const watches = new OperationWatches((key) => this.#queue.add(key, true), this.#log, this.#o.longPoll ?? true);
    this.#watches = watches;
    const brokers = new Brokers({
      local: this.#o.broker,
      custom: () => custom,
      core: () => kube.core,
      namespace: this.#o.namespace,
      getBroker: (name) => clusterBrokers.get(name),
      identity: { platform: 'kubernetes', value: { username: `system:serviceaccount:${this.#o.namespace}:berth-controller`, extra: { controller: [this.#identity] } } },
    });
    this.#brokers = brokers;
    const ctx: ReconcileContext = {
      kube,
      brokers,
      log: this.#log,
      queue: this.#queue,
      clusterId,
      rotationGraceSeconds: this.#o.rotationGraceSeconds ?? 60,
      instances: fresh(instances, 'instance'),
      bindings: fresh(bindings, 'binding'),
      secrets,
      clusterBrokers,
      watchOperation: (key, client, poll) => watches.watch(key, client, poll),
      brokerCall: (call) => this.#brokerCalls.inc({ call }),
    };
    kube.onStatusWritten = (ref, obj) => {
      const kind = ref.kind === 'ServiceInstance' ? 'instance' : ref.kind === 'ServiceBinding' ? 'binding' : 'broker';
      this.#fresh.set(`${kind}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name}`, obj);
    };

    const key = (o: KubernetesObject) => `${o.metadata!.namespace}/${o.metadata!.name}`;
    instances.on('add', (o) => this.#queue.add(`instance/${key(o)}`));
    instances.on('update', (o) => {
      this.#queue.add(`instance/${key(o)}`);
      for (const b of bindings.list(o.metadata!.namespace)) if (b.spec.instanceRef.name === o.metadata!.name) this.#queue.add(`binding/${key(b)}`);
    });
    instances.on('delete', (o) => this.#fresh.delete(`instance/${key(o)}`));
    bindings.on('add', (o) => this.#queue.add(`binding/${key(o)}`));
    bindings.on('update', (o) => {
      this.#queue.add(`binding/${key(o)}`);
      // A bind that finished changes what the instance's provisioner made (a login): its record is refreshed.
      if (o.status?.bound) this.#queue.add(instanceKey(o.metadata!.namespace!, o.spec.instanceRef.name));
    });
    bindings.on('delete', (o) => {
      this.#fresh.delete(`binding/${key(o)}`);
      this.#queue.add(instanceKey(o.metadata!.namespace!, o.spec.instanceRef.name));
    });
    const onSecret = (s: V1Secret) => {
      const ns = s.metadata!.namespace!;
      const name = s.metadata!.name!;
      for (const o of s.metadata?.ownerReferences ?? []) if (o.kind === 'ServiceBinding' && o.apiVersion === `${GROUP}/${VERSION}`) this.#queue.add(bindingKey(ns, o.name));
      for (const b of bindings.list(ns)) if ((b.spec.secretName ?? b.metadata.name) === name) this.#queue.add(bindingKey(ns, b.metadata.name!));
      for (const si of instances.list(ns)) if (si.spec.parametersFrom?.some((f) => f.secretKeyRef.name === name)) this.#queue.add(instanceKey(ns, si.metadata.name!));
    };
    secrets.on('add', onSecret);
    secrets.on('update', onSecret);
    secrets.on('delete', onSecret);
    clusterBrokers.on('add', (o) => this.#queue.add(`broker/${o.metadata!.name}`));
    clusterBrokers.on('update', (o) => this.#queue.add(`broker/${o.metadata!.name}`));
    clusterBrokers.on('delete', (o) => void brokers.remove(o.metadata!.name!).catch((err) => this.#log.warn({ err }, 'removing a broker\'s offerings failed')));

    for (const inf of this.#informers) {
      inf.on('error', (err: unknown) => {
        if (this.#stopped) return;
        this.#log.warn({ err: (err as Error)?.message ?? String(err) }, 'a watch failed; restarting it');
        setTimeout(() => void this.#startInformer(inf), 1000).unref();
      });
    }
    // Secrets first, so parametersFrom and Secret ownership are known when instances and bindings arrive.
    await this.#startInformer(secrets as Informer<KubernetesObject>);
    await this.#startInformer(clusterBrokers as Informer<KubernetesObject>);
    await Promise.all([this.#startInformer(instances as Informer<KubernetesObject>), this.#startInformer(bindings as Informer<KubernetesObject>)]);
    this.#gauges(instances, bindings);
    // The local broker's catalog becomes ServiceOfferings/ServicePlans at once, for `kubectl get serviceplans` (retried with backoff).
    this.#queue.add(`broker/${LOCAL_BROKER}`);
    this.#log.info({ identity: this.#identity }, 'the controller is reconciling');
    await this.#queue.run(this.#o.workers ?? 8, (k) => this.#handle(ctx, k, clusterBrokers, kube));
  }

  /** Lists and watches; a refused list (e.g. 429 while the API server initializes a new CRD's storage) is retried. */
  async #startInformer(inf: Informer<KubernetesObject>): Promise<void> {
    for (let attempt = 1; !this.#stopped; attempt++) {
      try {
        await inf.start();
        return;
      } catch (err) {
        this.#log.warn({ err: (err as Error).message, attempt }, 'listing for a watch failed; retrying');
        await delay(Math.min(30_000, 500 * 2 ** Math.min(attempt, 6)));
      }
    }
  }

  async #handle(ctx: ReconcileContext, key: string, clusterBrokers: Cache<ClusterServiceBroker>, kube: KubeWriter): Promise<void> {
    const [kind, a, b] = key.split('/') as [string, string, string | undefined];
    try {
      if (kind === 'instance') await reconcileInstance(ctx, a, b!);
      else if (kind === 'binding') await reconcileBinding(ctx, a, b!);
      else if (kind === 'broker') await this.#reconcileBroker(ctx, a, clusterBrokers, kube);
      this.#queue.forget(key);
      this.#reconciles.inc({ kind, result: 'success' });
    } catch (err) {
      this.#reconciles.inc({ kind, result: 'error' });
      const ms = this.#queue.backoff(key);
      const code = (err as { code?: number }).code;
      const expected = err instanceof RetryLater || err instanceof OsbError || code === 409 || code === 429;
      this.#log[expected ? 'debug' : 'warn']({ err: expected ? (err as Error).message : err, key, retryInMs: Math.round(ms) }, 'reconcile failed; retrying with backoff');
    }
  }

  async #reconcileBroker(ctx: ReconcileContext, name: string, clusterBrokers: Cache<ClusterServiceBroker>, kube: KubeWriter): Promise<void> {
    const resource = clusterBrokers.get(name);
    if (!resource) {
      if (name === LOCAL_BROKER) await ctx.brokers.get(LOCAL_BROKER);
      return;
    }
    const draft = new StatusDraft<ClusterServiceBrokerStatus>({ kind: 'ClusterServiceBroker', metadata: resource.metadata as never }, resource.status);
    // Only when its spec changed (or it is new): the steady state makes no broker calls.
    if (resource.status?.observedGeneration === resource.metadata.generation && resource.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) {
      await ctx.brokers.get(name).catch(() => undefined);
      return;
    }
    try {
      const broker = await ctx.brokers.refresh(name);
      ctx.brokerCall('catalog');
      draft.status.offerings = broker.catalog.services.length;
      draft.condition('Ready', 'True', 'CatalogFetched', `The catalog lists ${broker.catalog.services.length} offering(s).`);
      await draft.commit(kube);
      for (const si of ctx.instances.list()) if (si.spec.brokerRef?.name === name) this.#queue.add(instanceKey(si.metadata.namespace!, si.metadata.name!));
    } catch (err) {
      draft.condition('Ready', 'False', err instanceof BrokerUnavailable ? err.reason : 'CatalogUnavailable', (err as Error).message);
      await draft.commit(kube);
      throw new RetryLater((err as Error).message);
    }
  }

  #gauges(instances: Cache<ServiceInstance>, bindings: Cache<ServiceBinding>): void {
    new Gauge({
      name: 'berth_controller_resources',
      help: 'ServiceInstances and ServiceBindings by condition type, status and reason (alert on Synced=False)',
      labelNames: ['kind', 'condition', 'status', 'reason'],
      registers: [this.metrics],
      collect() {
        this.reset();
        for (const [kind, list] of [['ServiceInstance', instances.list()], ['ServiceBinding', bindings.list()]] as const) {
          for (const o of list) for (const c of o.status?.conditions ?? []) this.inc({ kind, condition: c.type, status: c.status, reason: c.reason });
        }
      },
    });
  }

  async #stopLeading(): Promise<void> {
    this.#queue.stop();
    this.#watches?.stop();
    for (const inf of this.#informers) await inf.stop().catch(() => undefined);
    this.#informers = [];
    this.#brokers?.close();
  }

  /** Stops reconciling and releases the Lease. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#stopLeading();
    await this.#elector?.stop();
  }
}
