// Writes each binding's credentials into the app's namespace as a Secret in
// the Service Binding for Kubernetes format (type servicebinding.io/<type>),
// when the bind request comes from Kubernetes. Berth only ever changes or
// deletes Secrets it labelled as its own for that same binding.
import type { V1Secret } from '@kubernetes/client-node';
import type { CatalogPlan } from '../catalog/catalog.ts';
import type { BindingHooks, BindingOperation } from '../provisioners/provisioner.ts';
import type { JsonObject } from '../osb/model.ts';
import { PermanentError } from '../osb/errors.ts';
import { BINDING_ID_ANNOTATION, BINDING_LABEL, INSTANCE_ID_ANNOTATION, INSTANCE_LABEL, MANAGED_BY, idHash } from './names.ts';
import type { KubernetesAccess } from './client.ts';
import { namingCluster, type KubernetesClusters } from './clusters.ts';
import { kubernetesFailure, statusOf } from './errors.ts';

/**
 * A bind context field Berth's controller sets: it writes the binding Secret
 * itself, so the broker must not write a second copy. Other platforms never send it.
 */
export const CONTROLLER_WRITES_SECRET = 'berth_controller_writes_secret';

export function bindingSecretName(instanceId: string, bindingId: string): string {
  return `berth-binding-${idHash(instanceId, bindingId)}`;
}

/**
 * Where the binding's Secret goes when the binding asked for one: the app namespace, in the cluster of the
 * bind's context (the instance may live in another: the namespace is the bind's); else undefined.
 */
function target(op: BindingOperation, enabledByDefault: boolean, clusters: KubernetesClusters): { namespace: string; kube: KubernetesAccess } | undefined {
  // Without a cluster, said once at start (main.ts), not for every bind.
  if (!clusters.configured) return undefined;
  const namespace = bindingSecretNamespace(op.instance.plan, op.binding.context, clusters, enabledByDefault);
  if (namespace === undefined) return undefined;
  const kube = clusters.forContext(op.binding.context);
  // Refused before queuing (the bind's check): only a binding from before the clusters file changed gets here.
  if (!kube) throw new PermanentError(clusters.refusal(op.binding.context, true)!);
  return { namespace, kube };
}

/**
 * Where a bind with this context writes its binding Secret: the context's
 * namespace when it comes from Kubernetes, a cluster is configured and the plan
 * (or the default) writes binding Secrets; else undefined.
 */
export function bindingSecretNamespace(
  plan: CatalogPlan,
  context: JsonObject | undefined,
  kube: KubernetesAccess | KubernetesClusters,
  enabledByDefault: boolean,
): string | undefined {
  if (!kube.configured) return undefined;
  if (!context || context.platform !== 'kubernetes' || typeof context.namespace !== 'string' || context.namespace === '') return undefined;
  // Berth's own controller (src/controller/) writes the Secret itself and says so; no second copy.
  if (context[CONTROLLER_WRITES_SECRET] === true) return undefined;
  return (plan.options.bindingSecret ?? enabledByDefault) ? context.namespace : undefined;
}

/**
 * Why `key` cannot be a key of a Kubernetes Secret (the API server's rule for
 * Secret and ConfigMap keys), or undefined when it can.
 */
export function secretKeyProblem(key: string): string | undefined {
  if (key.length === 0) return 'an empty name';
  if (key.length > 253) return 'longer than 253 characters';
  if (!/^[-._a-zA-Z0-9]+$/.test(key)) return "characters other than letters, digits, '-', '_' and '.'";
  if (key === '.' || key === '..' || key.startsWith('..')) return "'.' or '..' at the start";
  return undefined;
}

/**
 * One sentence saying which credential names cannot be Secret keys and what to
 * do, or undefined when all can. Checked before the cluster is called.
 */
export function bindingSecretKeysRefusal(keys: string[], namespace: string): string | undefined {
  const bad = keys.filter((k) => secretKeyProblem(k) !== undefined);
  if (bad.length === 0) return undefined;
  const shown = bad.slice(0, 5).map((k) => JSON.stringify(k.length > 60 ? `${k.slice(0, 59)}…` : k)).join(', ');
  return (
    `Credential name${bad.length > 1 ? 's' : ''} ${shown}${bad.length > 5 ? ` and ${bad.length - 5} more` : ''} cannot be ` +
    `key${bad.length > 1 ? 's' : ''} of the binding Secret Berth writes into namespace "${namespace}" (a Secret key is 1 to 253 ` +
    `letters, digits, '-', '_' or '.'); rename ${bad.length > 1 ? 'them' : 'it'}, or bind without a Kubernetes context or with ` +
    `binding Secrets switched off for the plan (provisioner.binding_secret: false).`
  );
}

export function secretEntries(credentials: JsonObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(credentials)) {
    if (value === undefined || value === null) continue;
    out[key] = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  return out;
}

export function createBindingSecretHooks(clusters: KubernetesClusters, enabledByDefault: boolean): BindingHooks {
  const ours = (s: V1Secret, op: BindingOperation) =>
    s.metadata?.labels?.['app.kubernetes.io/managed-by'] === 'berth' &&
    s.metadata?.annotations?.[BINDING_ID_ANNOTATION] === op.binding.id &&
    s.metadata?.annotations?.[INSTANCE_ID_ANNOTATION] === op.instance.id;

  async function writeSecret(op: BindingOperation, credentials: JsonObject, namespace: string, kube: KubernetesAccess): Promise<void> {
    const api = () => kube.api((k8s) => k8s.CoreV1Api);
    const name = bindingSecretName(op.instance.id, op.binding.id);
    const entries = secretEntries(credentials);
    const type = entries.type ?? op.instance.plan.service.name;
    const body: V1Secret = {
      metadata: {
        name,
        namespace,
        labels: { ...MANAGED_BY, [INSTANCE_LABEL]: idHash(op.instance.id), [BINDING_LABEL]: idHash(op.instance.id, op.binding.id) },
        annotations: { [INSTANCE_ID_ANNOTATION]: op.instance.id, [BINDING_ID_ANNOTATION]: op.binding.id },
      },
      type: `servicebinding.io/${type}`,
      stringData: { type, provider: entries.provider ?? 'berth', ...entries },
    };
    // Checked here, before the cluster is called: the API server would refuse it as invalid every time.
    const refusal = bindingSecretKeysRefusal(Object.keys(body.stringData!), namespace);
    // The credential names come from the user (user-provided parameters); such binds are refused before queuing (checkBind).
    if (refusal) throw new PermanentError(refusal, { causedByRequest: true });
    const action = `write the binding Secret ${namespace}/${name}`;
    const remedies = { 404: `the bind request's context names namespace "${namespace}"; bind into an existing namespace` };
    await op.progress(`Writing Secret ${namespace}/${name}`);
    try {
      await (await api()).createNamespacedSecret({ namespace, body });
      return;
    } catch (err) {
      // The namespace comes from the request's context and the new Secret's content from its parameters: a
      // missing namespace or an invalid new Secret is the request's to change.
      if (statusOf(err) === 404) {
        throw new PermanentError(`Namespace "${namespace}" from the bind request's context does not exist; bind into an existing namespace.`, { causedByRequest: true });
      }
      if (statusOf(err) !== 409) throw kubernetesFailure(err, action, remedies, [422]);
    }
    let existing: V1Secret;
    try {
      existing = await (await api()).readNamespacedSecret({ name, namespace });
    } catch (err) {
      throw kubernetesFailure(err, `read the existing Secret ${namespace}/${name}`, remedies);
    }
    if (!ours(existing, op)) {
      throw new PermanentError(`Secret ${namespace}/${name} already exists and was not created by Berth for this binding; Berth will not modify it.`);
    }
    // A re-run after a crash: bring our own Secret up to date.
    try {
      await (await api()).replaceNamespacedSecret({ name, namespace, body: { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion } } });
    } catch (err) {
      // Not the request's: refusing to change what an earlier attempt wrote (e.g. its type) is a broker-side failure.
      throw kubernetesFailure(err, action, remedies);
    }
  }

  async function deleteSecret(op: BindingOperation, namespace: string, kube: KubernetesAccess): Promise<void> {
    const api = () => kube.api((k8s) => k8s.CoreV1Api);
    const name = bindingSecretName(op.instance.id, op.binding.id);
    let existing: V1Secret;
    try {
      existing = await (await api()).readNamespacedSecret({ name, namespace });
    } catch (err) {
      if (statusOf(err) === 404) return;
      throw kubernetesFailure(err, `read the binding Secret ${namespace}/${name}`);
    }
    if (!ours(existing, op)) return;
    try {
      // Only the Secret just read: if it was replaced meanwhile, it is not ours to delete.
      await (await api()).deleteNamespacedSecret({ name, namespace, body: { preconditions: { uid: existing.metadata?.uid } } });
    } catch (err) {
      if (statusOf(err) !== 404) throw kubernetesFailure(err, `delete the binding Secret ${namespace}/${name}`);
    }
  }

  return {
    async afterBind(op, credentials) {
      const where = target(op, enabledByDefault, clusters);
      if (where) await namingCluster(where.kube, () => writeSecret(op, credentials, where.namespace, where.kube));
    },
    async beforeUnbind(op) {
      const where = target(op, enabledByDefault, clusters);
      if (where) await namingCluster(where.kube, () => deleteSecret(op, where.namespace, where.kube));
    },
  };
}
