// Writes each binding's credentials into the app's namespace as a Secret in
// the Service Binding for Kubernetes format (type servicebinding.io/<type>),
// when the bind request comes from Kubernetes. Berth only ever changes or
// deletes Secrets it labelled as its own for that same binding.
import { CoreV1Api, type V1Secret } from '@kubernetes/client-node';
import type { BindingHooks } from '../operations/engine.ts';
import type { BindingOperation, JsonObject } from '../provisioners/provisioner.ts';
import { PermanentError } from '../provisioners/provisioner.ts';
import { BINDING_ID_ANNOTATION, BINDING_LABEL, INSTANCE_ID_ANNOTATION, INSTANCE_LABEL, MANAGED_BY, idHash } from './names.ts';
import { type KubernetesAccess, reasonOf, statusOf } from './client.ts';

export function bindingSecretName(instanceId: string, bindingId: string): string {
  return `berth-binding-${idHash(instanceId, bindingId)}`;
}

/** The app namespace when the binding asked for a Secret, else undefined. */
function targetNamespace(op: BindingOperation, enabledByDefault: boolean, kube: KubernetesAccess): string | undefined {
  // Said once at start (main.ts), not for every bind.
  if (!kube.configured) return undefined;
  const ctx = op.binding.context;
  if (!ctx || ctx.platform !== 'kubernetes' || typeof ctx.namespace !== 'string' || ctx.namespace === '') return undefined;
  return (op.instance.plan.options.bindingSecret ?? enabledByDefault) ? ctx.namespace : undefined;
}

export function secretEntries(credentials: JsonObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(credentials)) {
    if (value === undefined || value === null) continue;
    out[key] = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  return out;
}

export function createBindingSecretHooks(kube: KubernetesAccess, enabledByDefault: boolean): BindingHooks {
  const api = () => kube.kubeConfig().makeApiClient(CoreV1Api);
  const ours = (s: V1Secret, op: BindingOperation) =>
    s.metadata?.labels?.['app.kubernetes.io/managed-by'] === 'berth' &&
    s.metadata?.annotations?.[BINDING_ID_ANNOTATION] === op.binding.id &&
    s.metadata?.annotations?.[INSTANCE_ID_ANNOTATION] === op.instance.id;

  return {
    async afterBind(op, credentials) {
      const namespace = targetNamespace(op, enabledByDefault, kube);
      if (!namespace) return;
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
      await op.progress(`Writing Secret ${namespace}/${name}`);
      try {
        await api().createNamespacedSecret({ namespace, body });
        return;
      } catch (err) {
        if (statusOf(err) === 404) throw new PermanentError(`Namespace "${namespace}" from the bind request's context does not exist.`);
        if (statusOf(err) === 403) throw new PermanentError(`Berth may not write Secrets in namespace "${namespace}": ${reasonOf(err)}`);
        if (statusOf(err) !== 409) throw err;
      }
      const existing = await api().readNamespacedSecret({ name, namespace });
      if (!ours(existing, op)) {
        throw new PermanentError(`Secret ${namespace}/${name} already exists and was not created by Berth for this binding; Berth will not modify it.`);
      }
      // A re-run after a crash: bring our own Secret up to date.
      await api().replaceNamespacedSecret({ name, namespace, body: { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion } } });
    },

    async beforeUnbind(op) {
      const namespace = targetNamespace(op, enabledByDefault, kube);
      if (!namespace) return;
      const name = bindingSecretName(op.instance.id, op.binding.id);
      let existing: V1Secret;
      try {
        existing = await api().readNamespacedSecret({ name, namespace });
      } catch (err) {
        if (statusOf(err) === 404) return;
        throw err;
      }
      if (!ours(existing, op)) return;
      try {
        await api().deleteNamespacedSecret({ name, namespace });
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
    },
  };
}
