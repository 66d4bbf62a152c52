// Where the Kubernetes test binaries are. tools/ensure-binaries.sh puts them into
// ${BERTH_CACHE_DIR:-$HOME/.cache/berth}/<name>-<version>/ (versions from
// tools/versions.env); a binary in $KUBEBUILDER_ASSETS wins over the cache.
// This module only looks; it never builds.
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const repoRoot: string = path.resolve(import.meta.dirname, '..', '..', '..');

export interface KubeVersions {
  kubernetes: string;
  etcd: string;
  kwok: string;
  containerd: string;
  kubectlLayerPackage: string;
  kubectlLayerVersion: string;
}

export interface KubeBinaries {
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  etcd: string;
  kwok: string;
  helm: string;
  kubectl: string;
}

type BinaryName =
  | 'kube-apiserver'
  | 'kube-controller-manager'
  | 'kube-scheduler'
  | 'kubelet'
  | 'kube-proxy'
  | 'etcd'
  | 'kwok'
  | 'containerd'
  | 'containerd-shim-runc-v2'
  | 'ctr'
  | 'helm'
  | 'kubectl';

/** The real node's binaries (tools/ensure-binaries.sh builds them with the control plane). */
export interface NodeBinaries {
  kubelet: string;
  kubeProxy: string;
  containerd: string;
  containerdShim: string;
  ctr: string;
}

/** The cache folder tools/ensure-binaries.sh fills. */
export function cacheDir(): string {
  return process.env.BERTH_CACHE_DIR || path.join(os.homedir(), '.cache', 'berth');
}

let versionsMemo: KubeVersions | undefined;

/** Versions from tools/versions.env. */
export function kubeVersions(): KubeVersions {
  if (versionsMemo) return versionsMemo;
  const text = readFileSync(path.join(repoRoot, 'tools', 'versions.env'), 'utf8');
  const env = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z0-9_]+)=(.*?)\s*$/.exec(line);
    if (m && m[1] !== undefined && m[2] !== undefined) env.set(m[1], m[2].replace(/^["']|["']$/g, ''));
  }
  const get = (k: string): string => {
    const v = env.get(k);
    if (!v) throw new Error(`tools/versions.env has no ${k}`);
    return v;
  };
  versionsMemo = {
    kubernetes: get('KUBERNETES_VERSION'),
    etcd: get('ETCD_VERSION'),
    kwok: get('KWOK_VERSION'),
    containerd: get('CONTAINERD_VERSION'),
    kubectlLayerPackage: get('KUBECTL_LAYER_PACKAGE'),
    kubectlLayerVersion: get('KUBECTL_LAYER_VERSION'),
  };
  return versionsMemo;
}

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function cachedPath(name: BinaryName): string {
  const v = kubeVersions();
  const cache = cacheDir();
  const layer = `${v.kubectlLayerPackage.replace(/^.*\/lambda-layer-/, '')}-${v.kubectlLayerVersion}`;
  switch (name) {
    case 'kube-apiserver':
    case 'kube-controller-manager':
    case 'kube-scheduler':
    case 'kubelet':
    case 'kube-proxy':
      return path.join(cache, `kubernetes-${v.kubernetes}`, name);
    case 'containerd':
    case 'containerd-shim-runc-v2':
    case 'ctr':
      return path.join(cache, `containerd-${v.containerd}`, name);
    case 'etcd':
      return path.join(cache, `etcd-${v.etcd}`, name);
    case 'kwok':
      return path.join(cache, `kwok-${v.kwok}`, name);
    case 'helm':
    case 'kubectl':
      return path.join(cache, layer, name);
  }
}

/** Path of one binary, or undefined when it is neither in KUBEBUILDER_ASSETS nor in the cache. */
export function findBinary(name: BinaryName): string | undefined {
  const assets = process.env.KUBEBUILDER_ASSETS;
  if (assets) {
    const p = path.join(assets, name);
    if (isExecutableFile(p)) return p;
  }
  const p = cachedPath(name);
  return isExecutableFile(p) ? p : undefined;
}

function requireBinary(name: BinaryName): string {
  const p = findBinary(name);
  if (!p) {
    throw new Error(
      `${name} not found (looked in ${process.env.KUBEBUILDER_ASSETS ? `KUBEBUILDER_ASSETS=${process.env.KUBEBUILDER_ASSETS} and ` : ''}` +
        `${cachedPath(name)}). Run \`bash tools/ensure-binaries.sh\` (npm test does it for you).`,
    );
  }
  return p;
}

/**
 * The helm binary the tests use (Helm 4, from the npm kubectl layer). Needs no cluster;
 * use it for HELM_BIN when starting berth in a test.
 */
export function helmBinary(): string {
  return requireBinary('helm');
}

/** The kubectl binary the tests use (same minor as the control plane). */
export function kubectlBinary(): string {
  return requireBinary('kubectl');
}

/** All binaries the control plane needs; throws naming the first missing one. */
export function kubeBinaries(): KubeBinaries {
  return {
    kubeApiserver: requireBinary('kube-apiserver'),
    kubeControllerManager: requireBinary('kube-controller-manager'),
    kubeScheduler: requireBinary('kube-scheduler'),
    etcd: requireBinary('etcd'),
    kwok: requireBinary('kwok'),
    helm: requireBinary('helm'),
    kubectl: requireBinary('kubectl'),
  };
}

/** The real node's binaries; throws naming the first missing one. */
export function nodeBinaries(): NodeBinaries {
  return {
    kubelet: requireBinary('kubelet'),
    kubeProxy: requireBinary('kube-proxy'),
    containerd: requireBinary('containerd'),
    containerdShim: requireBinary('containerd-shim-runc-v2'),
    ctr: requireBinary('ctr'),
  };
}
