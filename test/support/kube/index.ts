// Kubernetes test support: binaries, the shared control plane, access helpers.
export { cacheDir, findBinary, helmBinary, kubeBinaries, kubectlBinary, kubeVersions } from './binaries.ts';
export type { KubeBinaries, KubeVersions } from './binaries.ts';
export { startCluster, stopClusterByInfo } from './cluster.ts';
export type { ClusterInfo, MemoryReport, RunningCluster, StopReport } from './cluster.ts';
export { CLUSTER_ENV, isConflict, isNotFound, sharedCluster, uniqueName } from './shared.ts';
export type { Access, AccessOptions, SharedCluster } from './shared.ts';
export { listeningAddresses, pidAlive } from './processes.ts';
