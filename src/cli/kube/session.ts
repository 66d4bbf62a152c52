// Kubernetes mode's connection: the kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config), the
// namespace (-n, else the context's, else "default"), the API clients, and how the API server's
// failures become a sentence and an exit code. @kubernetes/client-node is loaded here, at first
// use, as src/kubernetes/client.ts loads it for the broker.
import type { AppsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { loadKubernetesClient, type KubernetesClient } from '../../kubernetes/client.ts';
import { reasonOf, statusOf } from '../../kubernetes/errors.ts';
import { GROUP, VERSION } from '../../controller/resources.ts';
import { CliError, EXIT, usageError } from '../errors.ts';
import type { Options } from '../program.ts';

export interface KubeSession {
  k8s: KubernetesClient;
  kc: KubeConfig;
  custom: CustomObjectsApi;
  core: CoreV1Api;
  apps: AppsV1Api;
  /** The namespace commands act in (-n, the context's, or "default"). */
  namespace: string;
  /** -A: list every namespace. */
  allNamespaces: boolean;
  /** Where the API server is, for messages. */
  server: string;
  /** Options that make a patch a JSON merge patch. */
  mergePatch(): ReturnType<KubernetesClient['setHeaderOptions']>;
  explain(err: unknown, doing: string): CliError;
}

/** A 404 for the object itself, not for its kind (a kind the cluster lacks is a 404 too: the CRDs are not installed). */
export function isMissingObject(err: unknown): boolean {
  return statusOf(err) === 404 && !/could not find the requested resource/i.test(reasonOf(err));
}

export async function openKubeSession(opts: Options): Promise<KubeSession> {
  const k8s = await loadKubernetesClient();
  const kc = new k8s.KubeConfig();
  try {
    if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    throw usageError(`cannot read the kubeconfig ${opts.kubeconfig ?? process.env.KUBECONFIG ?? '~/.kube/config'} (${(err as Error).message.split('\n')[0]})`);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw usageError('the kubeconfig has no current cluster; pick a context with `kubectl config use-context`, or pass --broker URL for broker mode');
  const context = kc.getContextObject(kc.getCurrentContext());
  const namespace: string = opts.namespace ?? context?.namespace ?? 'default';
  const server = cluster.server;
  const explain = (err: unknown, doing: string): CliError => {
    if (err instanceof CliError) return err;
    const status = statusOf(err);
    if (status === undefined) {
      return new CliError(EXIT.unreachable, `cannot reach the Kubernetes API server at ${server} while ${doing}: ${reasonOf(err)}. Check the kubeconfig's current context.`);
    }
    if (status === 401) return new CliError(EXIT.unreachable, `the Kubernetes API server at ${server} refused the kubeconfig's credentials (HTTP 401) while ${doing}; log in again or pick another context.`);
    if (status === 403) return new CliError(EXIT.unreachable, `the Kubernetes API server does not allow this user ${doing} (HTTP 403): ${reasonOf(err)}`);
    if (status === 404 && /the server could not find the requested resource/i.test(reasonOf(err))) {
      return new CliError(EXIT.failed, `the cluster has no ${GROUP}/${VERSION} resources: install Berth's CRDs and controller (deploy/crds/), or use --broker URL for broker mode.`);
    }
    return new CliError(EXIT.failed, `${doing} failed: ${reasonOf(err)}`);
  };
  return {
    k8s,
    kc,
    custom: kc.makeApiClient(k8s.CustomObjectsApi),
    core: kc.makeApiClient(k8s.CoreV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    namespace,
    allNamespaces: Boolean(opts.allNamespaces),
    server,
    mergePatch: () => k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    explain,
  };
}
