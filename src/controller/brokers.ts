// The brokers the controller drives: the local Berth (always, named `berth`)
// and every ClusterServiceBroker. Each has an OSB client and its catalog; the
// catalog is published as cluster-scoped ServiceOfferings and ServicePlans so
// `kubectl get serviceplans` is the marketplace. A catalog is fetched when a
// broker is first used, when its ClusterServiceBroker changes, and when an
// instance names an offering or plan it does not know (at most every 30 s):
// never on a timer, so an idle cluster makes no broker calls.
import type { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { OsbClient } from '../osb-client/index.ts';
import { MAX_LONG_POLLS } from './operation-watch.ts';
import type { Catalog, CatalogPlan, CatalogService } from '../osb-client/index.ts';
import { BROKER_LABEL, GROUP, LOCAL_BROKER, MANAGED_BY, MANAGED_BY_LABEL, PLURALS, VERSION, type ClusterServiceBroker } from './resources.ts';

const REFRESH_FLOOR_MS = 30_000;
/** Connections per broker: every long poll holds one, and the workers need theirs beside them. */
const SOCKETS = MAX_LONG_POLLS + 32;

export interface Broker {
  name: string;
  client: OsbClient;
  catalog: Catalog;
  fetchedAt: number;
}

export interface PlanLookup {
  service: CatalogService;
  plan: CatalogPlan;
}

/** Why a broker cannot be used right now (no ClusterServiceBroker of that name, a missing auth Secret, unreachable). */
export class BrokerUnavailable extends Error {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

export class Brokers {
  readonly #local: { url: string; auth?: { username: string; password: string } | { bearerToken: string }; caPem?: string; apiVersion?: string };
  readonly #brokers = new Map<string, Broker>();
  readonly #loading = new Map<string, Promise<Broker>>();
  readonly #custom: () => CustomObjectsApi;
  readonly #core: () => CoreV1Api;
  readonly #namespace: string;
  readonly #getBroker: (name: string) => ClusterServiceBroker | undefined;
  readonly #identity: { platform: string; value: Record<string, unknown> };

  constructor(deps: {
    local: { url: string; auth?: { username: string; password: string } | { bearerToken: string }; caPem?: string; apiVersion?: string };
    custom: () => CustomObjectsApi;
    core: () => CoreV1Api;
    /** Where ClusterServiceBroker auth Secrets live. */
    namespace: string;
    getBroker: (name: string) => ClusterServiceBroker | undefined;
    identity: { platform: string; value: Record<string, unknown> };
  }) {
    this.#local = deps.local;
    this.#custom = deps.custom;
    this.#core = deps.core;
    this.#namespace = deps.namespace;
    this.#getBroker = deps.getBroker;
    this.#identity = deps.identity;
  }

  /** The broker, its catalog fetched once. */
  get(name: string): Promise<Broker> {
    const known = this.#brokers.get(name);
    if (known) return Promise.resolve(known);
    return this.#load(name);
  }

  /** Looks the offering and plan up by name; refetches the catalog (rate-limited) when either is unknown. */
  async lookup(broker: Broker, offering: string, plan: string): Promise<PlanLookup | string> {
    let found = find(broker.catalog, offering, plan);
    if (typeof found === 'string' && Date.now() - broker.fetchedAt > REFRESH_FLOOR_MS) {
      broker = await this.refresh(broker.name);
      found = find(broker.catalog, offering, plan);
    }
    return found;
  }

  /** The offering and plan in the broker's catalog as it is known now (no fetch); or why not. */
  find(broker: Broker, offering: string, plan: string): PlanLookup | string {
    return find(broker.catalog, offering, plan);
  }

  /** Fetches the catalog again and republishes it (a ClusterServiceBroker changed, or a name was unknown). */
  async refresh(name: string): Promise<Broker> {
    this.#brokers.get(name)?.client.close();
    this.#brokers.delete(name);
    return this.#load(name);
  }

  /** Forgets a deleted ClusterServiceBroker and removes its offerings and plans. */
  async remove(name: string): Promise<void> {
    this.#brokers.get(name)?.client.close();
    this.#brokers.delete(name);
    await this.#publish(name, { services: [] });
  }

  close(): void {
    for (const b of this.#brokers.values()) b.client.close();
    this.#brokers.clear();
  }

  #load(name: string): Promise<Broker> {
    let loading = this.#loading.get(name);
    if (!loading) {
      loading = (async () => {
        const client = await this.#client(name);
        let catalog: Catalog;
        try {
          catalog = await client.catalog();
        } catch (err) {
          client.close();
          throw new BrokerUnavailable('CatalogUnavailable', `The catalog of broker "${name}" could not be read: ${(err as Error).message}`);
        }
        const broker = { name, client, catalog, fetchedAt: Date.now() };
        try {
          await this.#publish(name, catalog);
        } catch (err) {
          client.close();
          throw err;
        }
        this.#brokers.set(name, broker);
        return broker;
      })().finally(() => this.#loading.delete(name));
      this.#loading.set(name, loading);
    }
    return loading;
  }

  async #client(name: string): Promise<OsbClient> {
    if (name === LOCAL_BROKER && !this.#getBroker(name)) {
      return new OsbClient({ url: this.#local.url, auth: this.#local.auth, caPem: this.#local.caPem, apiVersion: this.#local.apiVersion, originatingIdentity: this.#identity, maxSockets: SOCKETS });
    }
    const resource = this.#getBroker(name);
    if (!resource) throw new BrokerUnavailable('BrokerNotFound', `No ClusterServiceBroker named "${name}" exists.`);
    let auth: { username: string; password: string } | { bearerToken: string } | undefined;
    let caPem: string | undefined;
    const ref = resource.spec.authSecretRef?.name;
    if (ref) {
      let data: Record<string, string> | undefined;
      try {
        data = (await this.#core().readNamespacedSecret({ name: ref, namespace: this.#namespace })).data;
      } catch {
        throw new BrokerUnavailable('AuthSecretNotFound', `The auth Secret "${this.#namespace}/${ref}" of ClusterServiceBroker "${name}" cannot be read.`);
      }
      const field = (k: string) => (data?.[k] ? Buffer.from(data[k], 'base64').toString('utf8') : undefined);
      const [username, password, token] = [field('username'), field('password'), field('token')];
      caPem = field('caCert');
      if (token) auth = { bearerToken: token };
      else if (username && password) auth = { username, password };
      else throw new BrokerUnavailable('AuthSecretInvalid', `The auth Secret "${this.#namespace}/${ref}" needs the keys username and password, or token.`);
    }
    return new OsbClient({ url: resource.spec.url, auth, caPem, apiVersion: resource.spec.apiVersion ?? '2.17', originatingIdentity: this.#identity, maxSockets: SOCKETS });
  }

  /** Makes the ServiceOfferings and ServicePlans labelled with this broker match its catalog. */
  async #publish(broker: string, catalog: Catalog): Promise<void> {
    const api = this.#custom();
    const labels = { [MANAGED_BY_LABEL]: MANAGED_BY, [BROKER_LABEL]: broker };
    const wanted = new Map<string, { plural: string; body: object }>();
    const want = (kind: 'ServiceOffering' | 'ServicePlan', name: string, spec: object): void => {
      const plural = PLURALS[kind];
      wanted.set(`${plural}/${name}`, { plural, body: { apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { name, labels }, spec } });
    };
    for (const s of catalog.services) {
      want('ServiceOffering', objectName(broker, s.name), {
        broker,
        name: s.name,
        id: s.id,
        description: s.description,
        bindable: s.bindable,
        planUpdateable: s.plan_updateable ?? false,
        tags: s.tags ?? [],
        metadata: s.metadata ?? {},
      });
      for (const p of s.plans) {
        want('ServicePlan', objectName(broker, `${s.name}.${p.name}`), {
          broker,
          offering: s.name,
          name: p.name,
          id: p.id,
          description: p.description,
          free: p.free ?? true,
          bindable: p.bindable ?? s.bindable,
          planUpdateable: p.plan_updateable ?? s.plan_updateable ?? false,
          ...(p.maximum_polling_duration ? { maximumPollingDuration: p.maximum_polling_duration } : {}),
          ...(p.maintenance_info ? { maintenanceInfo: p.maintenance_info } : {}),
          schemas: p.schemas ?? {},
        });
      }
    }
    for (const plural of [PLURALS.ServiceOffering, PLURALS.ServicePlan]) {
      const existing = (await api.listClusterCustomObject({ group: GROUP, version: VERSION, plural, labelSelector: `${BROKER_LABEL}=${broker}` })) as {
        items: { metadata: { name: string; resourceVersion: string }; spec: unknown }[];
      };
      for (const item of existing.items) {
        const want = wanted.get(`${plural}/${item.metadata.name}`) as { body: { spec: unknown; metadata: object } } | undefined;
        if (!want) {
          await api.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural, name: item.metadata.name }).catch(() => undefined);
          continue;
        }
        wanted.delete(`${plural}/${item.metadata.name}`);
        if (JSON.stringify(item.spec) === JSON.stringify(want.body.spec)) continue;
        await api.replaceClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural,
          name: item.metadata.name,
          body: { ...want.body, metadata: { ...want.body.metadata, resourceVersion: item.metadata.resourceVersion } },
        });
      }
    }
    for (const { plural, body } of wanted.values()) {
      await api.createClusterCustomObject({ group: GROUP, version: VERSION, plural, body });
    }
  }
}

function find(catalog: Catalog, offering: string, plan: string): PlanLookup | string {
  const service = catalog.services.find((s) => s.name === offering);
  if (!service) {
    return `The broker's catalog has no offering named "${offering}"; it offers: ${catalog.services.map((s) => s.name).join(', ') || 'nothing'} (kubectl get serviceofferings).`;
  }
  const p = service.plans.find((x) => x.name === plan);
  if (!p) return `Offering "${offering}" has no plan named "${plan}"; its plans are: ${service.plans.map((x) => x.name).join(', ')} (kubectl get serviceplans).`;
  return { service, plan: p };
}

/** A DNS-subdomain name for a catalog entry: `<broker>.<name>`, lowercased, other characters as '-'. */
export function objectName(broker: string, name: string): string {
  return `${broker}.${name}`.toLowerCase().replace(/[^a-z0-9.-]/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '').slice(0, 253);
}
