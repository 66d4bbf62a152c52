// Where Berth finds a Kubernetes cluster: KUBECONFIG, else the in-cluster
// ServiceAccount when running as a Pod. Without either, Kubernetes features
// fail with a message that says what to configure; the broker itself runs.
import { existsSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../config.ts';
import { PermanentError } from '../provisioners/provisioner.ts';

export class KubernetesAccess {
  readonly #config: Config;
  #kc: KubeConfig | undefined;

  constructor(config: Config) {
    this.#config = config;
  }

  /** True when a cluster is configured (not necessarily reachable). */
  get configured(): boolean {
    return this.#source() !== undefined;
  }

  /** The kubeconfig file helm should use, if one is configured. */
  get kubeconfigPath(): string | undefined {
    return this.#config.kubeconfig;
  }

  #source(): 'file' | 'cluster' | undefined {
    if (this.#config.kubeconfig) return 'file';
    if (this.#config.env.KUBERNETES_SERVICE_HOST && existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token')) return 'cluster';
    return undefined;
  }

  kubeConfig(): KubeConfig {
    if (this.#kc) return this.#kc;
    const source = this.#source();
    if (!source) {
      throw new PermanentError(
        'Berth has no Kubernetes cluster configured: set KUBECONFIG to a kubeconfig file for the cluster (or run Berth inside the cluster with a ServiceAccount).',
      );
    }
    const kc = new KubeConfig();
    if (source === 'file') kc.loadFromFile(this.#config.kubeconfig!);
    else kc.loadFromCluster();
    this.#kc = kc;
    return kc;
  }
}
