// Where Berth finds a Kubernetes cluster: KUBECONFIG, else the in-cluster
// ServiceAccount when running as a Pod. Without either, Kubernetes features
// fail with a message that says what to configure; the broker itself runs.
//
// @kubernetes/client-node is imported here only, and only when a cluster is
// first used: loading it costs about 0.7 s and 80 MB, which a broker without
// a cluster (or one that never binds into it) should not pay at every start.
// Other modules import its types only (`import type`).
import { existsSync } from 'node:fs';
import type { ApiConstructor, ApiType, KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../config.ts';
import type { ClusterEntry } from '../lib/clusters-file.ts';
import { PermanentError } from '../osb/errors.ts';

export type KubernetesClient = typeof import('@kubernetes/client-node');

let client: Promise<KubernetesClient> | undefined;

/** The @kubernetes/client-node module, imported on first call. */
export function loadKubernetesClient(): Promise<KubernetesClient> {
  client ??= import('@kubernetes/client-node');
  return client;
}

export class KubernetesAccess {
  readonly #config: Config;
  readonly #cluster: ClusterEntry | undefined;
  #kc: Promise<KubeConfig> | undefined;

  /** `cluster`: one cluster of BERTH_CLUSTERS_FILE; without it, the cluster of KUBECONFIG or the ServiceAccount. */
  constructor(config: Config, cluster?: ClusterEntry) {
    this.#config = config;
    this.#cluster = cluster;
  }

  /** The id of a BERTH_CLUSTERS_FILE cluster; undefined for Berth's one cluster. */
  get clusterId(): string | undefined {
    return this.#cluster?.id;
  }

  /** True when a cluster is configured (not necessarily reachable). */
  get configured(): boolean {
    return this.#source() !== undefined;
  }

  /** The kubeconfig file helm should use, if one is configured. */
  get kubeconfigPath(): string | undefined {
    return this.#cluster?.kubeconfig ?? this.#config.kubeconfig;
  }

  #source(): 'file' | 'cluster' | undefined {
    if (this.kubeconfigPath) return 'file';
    if (this.#config.env.KUBERNETES_SERVICE_HOST && existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token')) return 'cluster';
    return undefined;
  }

  /** The cluster's configuration; rejects with what to configure when there is none. */
  kubeConfig(): Promise<KubeConfig> {
    if (!this.#kc) {
      this.#kc = this.#load();
      // Not kept when it failed: a kubeconfig fixed later is read on the next call.
      this.#kc.catch(() => (this.#kc = undefined));
    }
    return this.#kc;
  }

  /** An API client for the cluster, e.g. `await kube.api((k8s) => k8s.CoreV1Api)`. */
  async api<T extends ApiType>(apiClass: (k8s: KubernetesClient) => ApiConstructor<T>): Promise<T> {
    const kc = await this.kubeConfig();
    return kc.makeApiClient(apiClass(await loadKubernetesClient()));
  }

  async #load(): Promise<KubeConfig> {
    const source = this.#source();
    if (!source) {
      throw new PermanentError(
        'Berth has no Kubernetes cluster configured: set KUBECONFIG to a kubeconfig file for the cluster (or run Berth inside the cluster with a ServiceAccount).',
      );
    }
    const { KubeConfig } = await loadKubernetesClient();
    const kc = new KubeConfig();
    if (source === 'file') kc.loadFromFile(this.kubeconfigPath!);
    else kc.loadFromCluster();
    return kc;
  }
}
