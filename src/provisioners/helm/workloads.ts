// Honest readiness: a release is ready when every Deployment and StatefulSet
// it rendered reports its replicas updated and available, read from the
// Kubernetes API. While waiting, the Pods say why they are not ready.
import type { V1Pod } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { KubernetesAccess } from '../../kubernetes/client.ts';

export interface Workload {
  kind: 'Deployment' | 'StatefulSet';
  name: string;
}

export function workloadsIn(manifest: string): Workload[] {
  const out: Workload[] = [];
  for (const doc of parseAllDocuments(manifest)) {
    const o = doc.toJS() as { kind?: string; metadata?: { name?: string } } | null;
    if ((o?.kind === 'Deployment' || o?.kind === 'StatefulSet') && o.metadata?.name) out.push({ kind: o.kind, name: o.metadata.name });
  }
  return out;
}

export interface Readiness {
  ready: boolean;
  /** e.g. "StatefulSet pg: 0/1 ready; pod pg-0: Unschedulable: 0/1 nodes are available…" */
  detail: string;
}

export async function readiness(kube: KubernetesAccess, namespace: string, workloads: Workload[]): Promise<Readiness> {
  const apps = await kube.api((k8s) => k8s.AppsV1Api);
  const core = await kube.api((k8s) => k8s.CoreV1Api);
  const waiting: string[] = [];
  for (const w of workloads) {
    const obj = w.kind === 'Deployment'
      ? await apps.readNamespacedDeployment({ name: w.name, namespace })
      : await apps.readNamespacedStatefulSet({ name: w.name, namespace });
    const want = obj.spec?.replicas ?? 1;
    const st = obj.status ?? {};
    const observed = (st.observedGeneration ?? 0) >= (obj.metadata?.generation ?? 0);
    const updated = (st.updatedReplicas ?? 0) >= want;
    const ok = w.kind === 'Deployment' ? ((st as { availableReplicas?: number }).availableReplicas ?? 0) >= want : (st.readyReplicas ?? 0) >= want;
    if (observed && updated && ok) continue;
    const readyCount = w.kind === 'Deployment' ? ((st as { availableReplicas?: number }).availableReplicas ?? 0) : (st.readyReplicas ?? 0);
    let line = `${w.kind} ${w.name}: ${readyCount}/${want} ready`;
    const selector = Object.entries(obj.spec?.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
    if (selector) {
      const pods = await core.listNamespacedPod({ namespace, labelSelector: selector });
      const reasons = pods.items.map(podProblem).filter((p): p is string => p !== undefined);
      if (reasons.length > 0) line += `; ${reasons.slice(0, 3).join('; ')}`;
      else if (pods.items.length === 0) line += '; no pods yet';
    }
    waiting.push(line);
  }
  return { ready: waiting.length === 0, detail: waiting.join(' | ') };
}

function podProblem(pod: V1Pod): string | undefined {
  const name = pod.metadata?.name ?? '?';
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False') return `pod ${name}: ${scheduled.reason ?? 'not scheduled'}: ${scheduled.message ?? ''}`.trim();
  for (const cs of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const w = cs.state?.waiting;
    if (w?.reason && w.reason !== 'ContainerCreating' && w.reason !== 'PodInitializing') {
      // A crash loop's own message only says "back-off"; how the last run ended is what helps.
      const last = cs.lastState?.terminated;
      const ended = last ? ` (last exit code ${last.exitCode}${last.reason ? `, ${last.reason}` : ''})` : '';
      return `pod ${name}: container ${cs.name}: ${w.reason}${ended}${w.message ? `: ${w.message}` : ''}`;
    }
    // Between two runs of a crash loop the kubelet briefly shows the container terminated (or running,
    // not yet ready) before it says CrashLoopBackOff again: name the loop, not the instant.
    // (Running again after one failure may be a recovery; after two it is the loop.)
    const restarts = cs.restartCount ?? 0;
    const ended = cs.state?.terminated ?? (cs.ready || restarts < 2 ? undefined : cs.lastState?.terminated);
    if (ended && ended.exitCode !== 0 && restarts > 0) {
      return `pod ${name}: container ${cs.name}: CrashLoopBackOff (last exit code ${ended.exitCode}${ended.reason ? `, ${ended.reason}` : ''}; ${cs.restartCount} restarts)`;
    }
    const t = cs.state?.terminated;
    if (t && t.exitCode !== 0) return `pod ${name}: container ${cs.name} exited with ${t.exitCode}${t.reason ? ` (${t.reason})` : ''}`;
  }
  const readyCond = pod.status?.conditions?.find((c) => c.type === 'Ready');
  if (readyCond?.status === 'False' && readyCond.message) return `pod ${name}: ${readyCond.message}`;
  return undefined;
}
