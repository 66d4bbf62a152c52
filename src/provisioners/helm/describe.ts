// `berth trace` for a helm instance: the release as helm reports it (status,
// revision, chart, the description of its last action) and the workloads it
// rendered as the Kubernetes API shows them now: each Deployment/StatefulSet,
// its Pods (phase, readiness, scheduling) and their containers (running,
// waiting with its reason such as CrashLoopBackOff, the last exit code).
// Read-only: `helm status` and GETs/LISTs.
import type { AppsV1Api, CoreV1Api, V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import type { KubernetesAccess } from '../../kubernetes/client.ts';
import { kubernetesFailure, statusOf } from '../../kubernetes/errors.ts';
import type { ProvisionedResource, ResourceState } from '../provisioner.ts';
import { workloadsIn, type Workload } from './workloads.ts';

/** What `helm status --output json` says (Helm 3 and 4 agree on these fields). */
export interface ReleaseStatus {
  version?: number;
  info?: { status?: string; description?: string; last_deployed?: string };
  chart?: { metadata?: { name?: string; version?: string; appVersion?: string } };
  manifest?: string;
}

/** Pods shown per workload: enough to see a pattern, bounded for a chart with many replicas. */
const MAX_PODS = 10;

export async function describeRelease(kube: KubernetesAccess, release: string, namespace: string, status: ReleaseStatus | undefined): Promise<ProvisionedResource[]> {
  if (!status) {
    return [{ kind: 'HelmRelease', name: `${namespace}/${release}`, state: 'missing', message: `Helm has no release ${release} in namespace ${namespace}: it was never installed, or it was uninstalled outside Berth. Update the instance to install it again.` }];
  }
  const helmState = status.info?.status ?? 'unknown';
  const chart = status.chart?.metadata ? `${status.chart.metadata.name}-${status.chart.metadata.version}${status.chart.metadata.appVersion ? ` (app ${status.chart.metadata.appVersion})` : ''}` : undefined;
  const workloads = workloadsIn(status.manifest ?? '');
  let children: ProvisionedResource[];
  try {
    const api = { apps: await kube.api((k8s) => k8s.AppsV1Api), core: await kube.api((k8s) => k8s.CoreV1Api) };
    children = await Promise.all(workloads.map((w) => describeWorkload(api, namespace, w)));
  } catch (err) {
    throw kubernetesFailure(err, `read the workloads of release ${release} in namespace ${namespace}`);
  }
  const state: ResourceState = helmState === 'deployed' ? 'ready' : helmState === 'failed' ? 'failed' : helmState.startsWith('pending-') ? 'not-ready' : 'unknown';
  const message = [
    `helm status ${helmState}, revision ${status.version ?? '?'}`,
    chart && `chart ${chart}`,
    status.info?.last_deployed && `last deployed ${status.info.last_deployed}`,
    status.info?.description && `helm says: ${status.info.description}`,
    workloads.length === 0 && 'the chart renders no Deployment or StatefulSet',
  ].filter(Boolean).join('; ');
  return [{ kind: 'HelmRelease', name: `${namespace}/${release}`, state, message, children }];
}

/** A Deployment or StatefulSet with its Pods and their containers, read now (also by the CLI, with the developer's own access). */
export async function describeWorkload({ apps, core }: { apps: AppsV1Api; core: CoreV1Api }, namespace: string, w: Workload): Promise<ProvisionedResource> {
  let obj;
  try {
    obj = w.kind === 'Deployment' ? await apps.readNamespacedDeployment({ name: w.name, namespace }) : await apps.readNamespacedStatefulSet({ name: w.name, namespace });
  } catch (err) {
    if (statusOf(err) === 404) return { kind: w.kind, name: w.name, state: 'missing', message: `The release renders ${w.kind} ${w.name}, but it does not exist (deleted outside helm?).` };
    throw err;
  }
  const want = obj.spec?.replicas ?? 1;
  const st = obj.status ?? {};
  const ready = w.kind === 'Deployment' ? ((st as { availableReplicas?: number }).availableReplicas ?? 0) : (st.readyReplicas ?? 0);
  const updated = st.updatedReplicas ?? 0;
  const observed = (st.observedGeneration ?? 0) >= (obj.metadata?.generation ?? 0);
  const ok = observed && updated >= want && ready >= want;
  const selector = Object.entries(obj.spec?.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
  const pods = selector ? (await core.listNamespacedPod({ namespace, labelSelector: selector })).items : [];
  pods.sort((a, b) => String(a.metadata?.name).localeCompare(String(b.metadata?.name)));
  const children = pods.slice(0, MAX_PODS).map(describePod);
  const more = pods.length > MAX_PODS ? `; ${pods.length - MAX_PODS} more Pod(s) not shown` : '';
  const conditions = (obj.status?.conditions ?? []).filter((c) => c.status !== 'True' && c.message).map((c) => `${c.type}: ${c.message}`);
  const message = `${ready}/${want} ${w.kind === 'Deployment' ? 'available' : 'ready'}, ${updated} updated${observed ? '' : ', the controller has not seen the latest spec yet'}${conditions.length ? `; ${conditions.join('; ')}` : ''}${pods.length === 0 ? '; no Pods' : ''}${more}`;
  const anyFailed = children.some((c) => c.state === 'failed');
  return { kind: w.kind, name: w.name, state: ok ? 'ready' : anyFailed ? 'failed' : 'not-ready', message, children };
}

export function describePod(pod: V1Pod): ProvisionedResource {
  const name = pod.metadata?.name ?? '?';
  const containers = [...(pod.status?.initContainerStatuses ?? []).map((c) => ({ c, init: true })), ...(pod.status?.containerStatuses ?? []).map((c) => ({ c, init: false }))];
  const children = containers.map(({ c, init }) => describeContainer(c, init));
  const readyCond = pod.status?.conditions?.find((c) => c.type === 'Ready');
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  const facts = [
    `phase ${pod.status?.phase ?? 'Unknown'}`,
    pod.spec?.nodeName ? `on node ${pod.spec.nodeName}` : undefined,
    scheduled?.status === 'False' ? `not scheduled: ${scheduled.reason ?? ''}${scheduled.message ? `: ${scheduled.message}` : ''}` : undefined,
    readyCond && readyCond.status !== 'True' && readyCond.message ? readyCond.message : undefined,
    pod.metadata?.deletionTimestamp ? 'being deleted' : undefined,
  ].filter(Boolean);
  const ready = readyCond?.status === 'True' && !pod.metadata?.deletionTimestamp;
  const failed = pod.status?.phase === 'Failed' || children.some((c) => c.state === 'failed');
  return { kind: 'Pod', name, state: ready ? 'ready' : failed ? 'failed' : 'not-ready', message: `${ready ? 'Ready' : 'not Ready'}; ${facts.join('; ')}`, children };
}

function describeContainer(cs: V1ContainerStatus, init: boolean): ProvisionedResource {
  const restarts = cs.restartCount ?? 0;
  const last = cs.lastState?.terminated;
  const lastRun = last ? `; last run ended with exit code ${last.exitCode}${last.reason ? ` (${last.reason})` : ''}${last.message ? `: ${last.message}` : ''}` : '';
  const counts = `${restarts} restart(s)${lastRun}`;
  const kind = init ? 'InitContainer' : 'Container';
  const w = cs.state?.waiting;
  const t = cs.state?.terminated;
  if (w) {
    const broken = /CrashLoopBackOff|ImagePullBackOff|ErrImagePull|CreateContainerConfigError|CreateContainerError|InvalidImageName|RunContainerError/.test(w.reason ?? '');
    return { kind, name: cs.name, state: broken ? 'failed' : 'not-ready', message: `waiting: ${w.reason ?? 'unknown reason'}${w.message ? `: ${w.message}` : ''}; ${counts}` };
  }
  if (t) {
    const done = init && t.exitCode === 0;
    return { kind, name: cs.name, state: done ? 'ready' : t.exitCode === 0 ? 'not-ready' : 'failed', message: `terminated with exit code ${t.exitCode}${t.reason ? ` (${t.reason})` : ''}${t.message ? `: ${t.message}` : ''}; ${counts}` };
  }
  if (cs.state?.running) {
    // Between two runs of a crash loop the container briefly runs again: after two failed runs it is the loop.
    if (!cs.ready && restarts >= 2 && last && last.exitCode !== 0) {
      return { kind, name: cs.name, state: 'failed', message: `crash-looping (CrashLoopBackOff between runs), running again since ${cs.state.running.startedAt ? new Date(cs.state.running.startedAt).toISOString() : '?'}; ${counts}` };
    }
    return { kind, name: cs.name, state: cs.ready ? 'ready' : 'not-ready', message: `running since ${cs.state.running.startedAt ? new Date(cs.state.running.startedAt).toISOString() : '?'}, ${cs.ready ? 'ready' : 'not ready (readiness probe)'}; ${counts}` };
  }
  return { kind, name: cs.name, state: 'unknown', message: `no state reported yet; ${counts}` };
}
