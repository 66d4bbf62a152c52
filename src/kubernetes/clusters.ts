// Which Kubernetes cluster a request or an instance uses. Without
// BERTH_CLUSTERS_FILE there is one (KUBECONFIG or the ServiceAccount) and
// context.clusterid is ignored, as before. With it, each cluster has its own
// kubeconfig (its own credentials, so its own permissions), and:
// - a request whose context.clusterid is not a configured id is refused (400);
// - a request naming no cluster uses the file's default, or, without one, is
//   refused when it needs a cluster (a Helm provision, a bind that writes a
//   binding Secret);
// - a Helm instance stays in the cluster it was provisioned in (the Helm
//   provisioner remembers it in its state); a binding Secret goes to the
//   cluster of the bind's own context, where its namespace is.
import type { Config } from '../config.ts';
import type { CatalogPlan } from '../catalog/catalog.ts';
import { PermanentError } from '../osb/errors.ts';
import type { JsonObject } from '../osb/model.ts';
import { KubernetesAccess } from './client.ts';
import { bindingSecretNamespace } from './binding-secrets.ts';

export class KubernetesClusters {
  /** KUBECONFIG or the ServiceAccount: the only cluster without BERTH_CLUSTERS_FILE; with it, used for TokenReview only. */
  readonly home: KubernetesAccess;
  readonly #byId: Map<string, KubernetesAccess>;
  readonly #defaultId: string | undefined;

  constructor(config: Config, home: KubernetesAccess = new KubernetesAccess(config)) {
    this.home = home;
    this.#byId = new Map((config.clusters?.clusters ?? []).map((c) => [c.id, new KubernetesAccess(config, c)]));
    this.#defaultId = config.clusters?.defaultId;
  }

  /** The clusters of `kube` when it already is a set, else the set whose home cluster is `kube`. */
  static of(config: Config, kube: KubernetesAccess | KubernetesClusters): KubernetesClusters {
    return kube instanceof KubernetesClusters ? kube : new KubernetesClusters(config, kube);
  }

  /** Whether BERTH_CLUSTERS_FILE names the clusters (then context.clusterid chooses). */
  get several(): boolean {
    return this.#byId.size > 0;
  }

  /** Whether any cluster is configured (not necessarily reachable). */
  get configured(): boolean {
    return this.several || this.home.configured;
  }

  /** Every cluster Berth provisions into: those of the file, else the home cluster. */
  list(): KubernetesAccess[] {
    return this.several ? [...this.#byId.values()] : [this.home];
  }

  #ids(): string {
    return [...this.#byId.keys()].map((id) => `"${id}"`).join(', ');
  }

  /**
   * Why a request with this context cannot be served, or undefined: an unknown context.clusterid, or (when
   * `needsCluster`) no clusterid and no default. Always undefined with one cluster.
   */
  refusal(context: JsonObject | undefined, needsCluster: boolean): string | undefined {
    if (!this.several) return undefined;
    const id = context?.clusterid;
    if (id !== undefined && (typeof id !== 'string' || !this.#byId.has(id))) {
      return `context.clusterid ${JSON.stringify(id)} is not a cluster this broker serves; its clusters are ${this.#ids()}.`;
    }
    if (id === undefined && needsCluster && this.#defaultId === undefined) {
      return `This request needs a Kubernetes cluster and its context names none: send context.clusterid (one of ${this.#ids()}), or give the broker a default cluster (default: in BERTH_CLUSTERS_FILE).`;
    }
    return undefined;
  }

  /** The cluster a request's context names (context.clusterid, else the default); undefined when it names none and there is no default. */
  forContext(context: JsonObject | undefined): KubernetesAccess | undefined {
    if (!this.several) return this.home;
    const refusal = this.refusal(context, false);
    if (refusal) throw new PermanentError(refusal, { causedByRequest: true });
    const id = typeof context?.clusterid === 'string' ? context.clusterid : this.#defaultId;
    return id === undefined ? undefined : this.#byId.get(id);
  }

  /**
   * The cluster an instance remembered (its id), or, for one from before BERTH_CLUSTERS_FILE (none remembered),
   * the default. Throws with what to configure when that cluster is not (or no longer) configured.
   */
  remembered(id: string | undefined): KubernetesAccess {
    if (!this.several) return this.home;
    const chosen = id ?? this.#defaultId;
    const kube = chosen === undefined ? undefined : this.#byId.get(chosen);
    if (kube) return kube;
    throw new PermanentError(
      chosen === undefined
        ? `This instance was provisioned before BERTH_CLUSTERS_FILE named several clusters, and the file has no default: set default: to the cluster it lives in (one of ${this.#ids()}).`
        : `This instance lives in cluster "${chosen}", which BERTH_CLUSTERS_FILE no longer names (its clusters are ${this.#ids()}); add it back to change or remove the instance.`,
    );
  }
}

/** `message` prefixed with the cluster it is about, when Berth serves several. */
export function inCluster(kube: KubernetesAccess, message: string): string {
  return kube.clusterId === undefined ? message : `Cluster "${kube.clusterId}": ${message}`;
}

/** Runs `fn`; a failure it throws names the cluster (when Berth serves several), keeping what the failure means. */
export async function namingCluster<T>(kube: KubernetesAccess, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (kube.clusterId === undefined || !(err instanceof Error) || err.name === 'AbortError' || err.message.startsWith('Cluster "')) throw err;
    if (err instanceof PermanentError) {
      throw new PermanentError(inCluster(kube, err.message), {
        instanceUsable: err.instanceUsable,
        updateRepeatable: err.updateRepeatable,
        causedByRequest: err.causedByRequest,
        cause: err.cause,
      });
    }
    err.message = inCluster(kube, err.message);
    throw err;
  }
}

/** What the broker asks before it queues a request (src/broker/rules.ts): why its context's cluster cannot serve it. */
export interface ClusterCheck {
  refusal(kind: 'provision' | 'update' | 'bind', plan: CatalogPlan, context: JsonObject | undefined): string | undefined;
}

/**
 * The requests that need a cluster: a provision of a Helm plan (its release goes there) and a bind that writes
 * a binding Secret. An update needs none (the instance stays where it is), but an unknown id is refused all the same.
 */
export function clusterCheck(clusters: KubernetesClusters, bindingSecretsByDefault: boolean): ClusterCheck {
  return {
    refusal(kind, plan, context) {
      if (!clusters.several) return undefined;
      const needed =
        kind === 'provision' ? plan.provisioner.kind === 'helm' : kind === 'bind' ? bindingSecretNamespace(plan, context, clusters, bindingSecretsByDefault) !== undefined : false;
      return clusters.refusal(context, needed);
    },
  };
}
