// The controller's writes to the API server: status (a merge patch of the status
// subresource, written only when it changed), finalizers (guarded by the
// resourceVersion read), Events, and the binding Secrets.
import type { CoreV1Api, CustomObjectsApi, KubeConfig, KubernetesObject, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { FINALIZER, GROUP, PLURALS, VERSION, type Condition } from './resources.ts';
import type { KubernetesClient } from '../kubernetes/client.ts';

type Kind = 'ServiceInstance' | 'ServiceBinding' | 'ClusterServiceBroker';

export interface ObjectRef {
  kind: Kind;
  metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string; finalizers?: string[]; generation?: number };
}

export class KubeWriter {
  readonly custom: CustomObjectsApi;
  readonly core: CoreV1Api;
  readonly #k8s: KubernetesClient;
  readonly #log: Logger;
  readonly #component: string;
  /** Told of each status write with the object the API server returned (newer than the informer's copy for a moment). */
  onStatusWritten: ((ref: ObjectRef, written: KubernetesObject) => void) | undefined;

  constructor(kc: KubeConfig, k8s: KubernetesClient, log: Logger, component: string) {
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.#k8s = k8s;
    this.#log = log;
    this.#component = component;
  }

  #merge() {
    return this.#k8s.setHeaderOptions('Content-Type', this.#k8s.PatchStrategy.MergePatch);
  }

  /** Writes `status` when it differs from `old` (fields absent from `status` are removed). Returns whether it wrote. */
  async writeStatus(ref: ObjectRef, old: object | undefined, status: Record<string, unknown>): Promise<boolean> {
    if (sameStatus(old, status)) return false;
    const patch: Record<string, unknown> = { ...status };
    for (const key of Object.keys(old ?? {})) if (!(key in status) || status[key] === undefined) patch[key] = null;
    const plural = PLURALS[ref.kind];
    const { name, namespace } = ref.metadata as { name: string; namespace?: string };
    const written = namespace
      ? await this.custom.patchNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, plural, namespace, name, body: { status: patch } }, this.#merge())
      : await this.custom.patchClusterCustomObjectStatus({ group: GROUP, version: VERSION, plural, name, body: { status: patch } }, this.#merge());
    this.onStatusWritten?.(ref, written as KubernetesObject);
    return true;
  }

  /** Adds or removes the controller's finalizer; fails with 409 when the object changed since it was read. */
  async setFinalizer(ref: ObjectRef, present: boolean): Promise<void> {
    const current = ref.metadata.finalizers ?? [];
    const finalizers = present ? [...new Set([...current, FINALIZER])] : current.filter((f) => f !== FINALIZER);
    const { name, namespace, resourceVersion } = ref.metadata as { name: string; namespace: string; resourceVersion: string };
    await this.custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, plural: PLURALS[ref.kind], namespace, name, body: { metadata: { finalizers, resourceVersion } } },
      this.#merge(),
    );
  }

  /** Records an Event on the object (best effort: a terminating namespace refuses new Events). */
  async event(ref: ObjectRef, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const namespace = ref.metadata.namespace ?? 'default';
    const now = new Date();
    try {
      await this.core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${ref.metadata.name}.`, namespace },
          involvedObject: { apiVersion: `${GROUP}/${VERSION}`, kind: ref.kind, name: ref.metadata.name, namespace: ref.metadata.namespace, uid: ref.metadata.uid },
          type,
          reason,
          message: message.length > 1024 ? `${message.slice(0, 1021)}...` : message,
          source: { component: this.#component },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
          reportingComponent: this.#component,
        },
      });
    } catch (err) {
      this.#log.debug({ err, object: `${namespace}/${ref.metadata.name}` }, 'an Event could not be recorded');
    }
  }

  async createSecret(secret: V1Secret): Promise<void> {
    await this.core.createNamespacedSecret({ namespace: secret.metadata!.namespace!, body: secret });
  }

  async replaceSecret(secret: V1Secret): Promise<void> {
    await this.core.replaceNamespacedSecret({ namespace: secret.metadata!.namespace!, name: secret.metadata!.name!, body: secret });
  }

  async deleteSecret(namespace: string, name: string, uid: string): Promise<void> {
    await this.core.deleteNamespacedSecret({ namespace, name, body: { preconditions: { uid } } });
  }
}

/** Equal ignoring the order of keys (the API server returns them sorted). */
function sameStatus(a: object | undefined, b: object): boolean {
  return canonical(a ?? {}) === canonical(dropUndefined(b));
}

function dropUndefined(o: object): object {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export type { Condition };
