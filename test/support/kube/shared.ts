// The one control plane shared by all test files of a run.
//
// test/support/global-setup.ts starts it once in the test runner process
// (node --test --test-global-setup=...), writes its ClusterInfo to
// <baseDir>/cluster.json and tells the test files where that is in two ways:
// the BERTH_KUBE_CLUSTER environment variable (Node 24 passes the runner's
// environment, as changed by globalSetup, to the test file processes) and a
// pointer file <tmp>/berth-kube-owner-<runner pid>.json (found from
// process.ppid). The global teardown stops every process by PID.
//
//   const kube = await sharedCluster();
//   const kc = kube.kubeConfig();                      // admin, @kubernetes/client-node
//   await execa(kube.helmBin, [...], { env: kube.helmEnv() });
//   const { kubeconfigPath } = await kube.serviceAccountWithAccess({ namespace: 'ns1', serviceAccount: 'berth', clusterRole: 'edit' });
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1PolicyRule,
} from '@kubernetes/client-node';
import { writeKubeconfig } from './api.ts';
import type { ClusterInfo } from './cluster.ts';
import type { RealNodeInfo } from './real-node.ts';

export const CLUSTER_ENV = 'BERTH_KUBE_CLUSTER';
/** Like CLUSTER_ENV, for the cluster with one real node (real-node.ts). */
export const REAL_NODE_ENV = 'BERTH_REAL_NODE_CLUSTER';

export function realNodePointerFile(ownerPid: number): string {
  return path.join(os.tmpdir(), `berth-kube-node-owner-${ownerPid}.json`);
}

/** Pointer file the global setup writes: contains the path of cluster.json. */
export function pointerFile(ownerPid: number): string {
  return path.join(os.tmpdir(), `berth-kube-owner-${ownerPid}.json`);
}

export interface AccessOptions {
  /** Namespace of the ServiceAccount (created if missing). */
  namespace: string;
  /** ServiceAccount name (created if missing). */
  serviceAccount: string;
  /** Bind an existing ClusterRole: 'admin', 'edit', 'view', 'cluster-admin' or your own. */
  clusterRole?: string;
  /** Or: create a Role (scope 'namespace') / ClusterRole (scope 'cluster') with these rules. */
  rules?: V1PolicyRule[];
  /** 'namespace' (default): RoleBindings in `namespaces`; 'cluster': one ClusterRoleBinding. */
  scope?: 'namespace' | 'cluster';
  /** Where the RoleBindings go for scope 'namespace' (default: [namespace]; created if missing). */
  namespaces?: string[];
  /** Token lifetime, default 3600 s (the API server's minimum is 600 s). */
  expirationSeconds?: number;
}

export interface Access {
  token: string;
  /** A kubeconfig that uses `token`, default namespace `namespace`. */
  kubeconfigPath: string;
  /** system:serviceaccount:<namespace>:<serviceAccount> */
  username: string;
  namespace: string;
  serviceAccount: string;
}

export interface SharedCluster extends ClusterInfo {
  /** @kubernetes/client-node config for the admin user. */
  kubeConfig(): KubeConfig;
  /** @kubernetes/client-node config for a token. */
  kubeConfigForToken(token: string, namespace?: string): KubeConfig;
  /**
   * Environment for running helm (or kubectl) against the cluster as admin:
   * KUBECONFIG plus HELM_CONFIG_HOME/HELM_CACHE_HOME/HELM_DATA_HOME in folders
   * private to this test process. `kubeconfigPath` overrides KUBECONFIG.
   */
  helmEnv(kubeconfigPath?: string): NodeJS.ProcessEnv;
  /** Mints a ServiceAccount token (TokenRequest); creates the namespace and ServiceAccount if missing. */
  mintToken(opts: { namespace: string; serviceAccount: string; expirationSeconds?: number; audiences?: string[] }): Promise<string>;
  /** Writes a kubeconfig for a bearer token and returns its path. */
  kubeconfigForToken(token: string, opts?: { name?: string; namespace?: string }): string;
  /** ServiceAccount + Role/ClusterRole binding + token + kubeconfig in one call. */
  serviceAccountWithAccess(opts: AccessOptions): Promise<Access>;
  /** Creates a namespace with a unique name (`prefix-<random>`) and returns the name. */
  createNamespace(prefix?: string): Promise<string>;
  /** Deletes a namespace; with wait (default true), until it is gone. */
  deleteNamespace(name: string, opts?: { wait?: boolean; timeoutMs?: number }): Promise<void>;
}

let memo: Promise<SharedCluster> | undefined;
let realMemo: Promise<RealNodeCluster> | undefined;

export interface RealNodeCluster extends SharedCluster {
  realNode: RealNodeInfo['realNode'];
}

/**
 * The cluster with one real node of this test run (started by the global setup when
 * BERTH_REAL_NODE=1; scripts/test.ts sets it for files under test/real-node/ and
 * test/helm/*.real-node.test.ts). Pods really run; images are the localhost/... ones.
 */
export function realNodeCluster(): Promise<RealNodeCluster> {
  realMemo ??= Promise.resolve().then(() => {
    let file = process.env[REAL_NODE_ENV];
    if (!file || !existsSync(file)) {
      for (const pid of [process.ppid, process.pid]) {
        const p = realNodePointerFile(pid);
        if (existsSync(p)) file = readFileSync(p, 'utf8').trim();
      }
    }
    if (!file || !existsSync(file)) {
      throw new Error(
        'no real-node test cluster is running for this test process. Run real-node tests with `node scripts/test.ts <files>` ' +
          '(it sets BERTH_REAL_NODE=1 for files under test/real-node/ or named *.real-node.test.ts).',
      );
    }
    const info = JSON.parse(readFileSync(file, 'utf8')) as RealNodeInfo;
    return { ...makeShared(info), realNode: info.realNode };
  });
  return realMemo;
}

function locateInfo(): string {
  const fromEnv = process.env[CLUSTER_ENV];
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  for (const pid of [process.ppid, process.pid]) {
    const p = pointerFile(pid);
    if (existsSync(p)) {
      const target = readFileSync(p, 'utf8').trim();
      if (existsSync(target)) return target;
    }
  }
  throw new Error(
    'no shared Kubernetes test cluster is running for this test process. Run the tests with ' +
      '`node scripts/test.ts [files...]` (or `node --test --test-global-setup=test/support/global-setup.ts ...`)' +
      (process.env.BERTH_KUBE === '0' ? '; BERTH_KUBE=0 is set, which skips starting the cluster.' : '.'),
  );
}

/** The shared cluster of this test run (started by test/support/global-setup.ts). */
export function sharedCluster(): Promise<SharedCluster> {
  memo ??= Promise.resolve().then(() => {
    const info = JSON.parse(readFileSync(locateInfo(), 'utf8')) as ClusterInfo;
    return makeShared(info);
  });
  return memo;
}

export function isConflict(err: unknown): boolean {
  return err instanceof ApiException && err.code === 409;
}
export function isNotFound(err: unknown): boolean {
  return err instanceof ApiException && err.code === 404;
}

async function ignoreConflict(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!isConflict(err)) throw err;
  }
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** The helpers of `sharedCluster()` for any cluster started by startCluster (e.g. a second one a test starts itself). */
export function makeShared(info: ClusterInfo): SharedCluster {
  const caPem = Buffer.from(info.caData, 'base64').toString('utf8');
  const kubeconfigDir = path.join(info.baseDir, 'kubeconfigs');

  const kubeConfig = (): KubeConfig => {
    const kc = new KubeConfig();
    kc.loadFromFile(info.kubeconfigPath);
    return kc;
  };
  const kubeConfigForToken = (token: string, namespace?: string): KubeConfig => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'berth-test', server: info.server, caData: info.caData, skipTLSVerify: false }],
      users: [{ name: 'token-user', token }],
      contexts: [{ name: 'token', cluster: 'berth-test', user: 'token-user', ...(namespace ? { namespace } : {}) }],
      currentContext: 'token',
    });
    return kc;
  };
  const core = (): CoreV1Api => kubeConfig().makeApiClient(CoreV1Api);
  const rbac = (): RbacAuthorizationV1Api => kubeConfig().makeApiClient(RbacAuthorizationV1Api);

  const ensureNamespace = async (name: string): Promise<void> => {
    await ignoreConflict(core().createNamespace({ body: { metadata: { name } } }));
  };

  const mintToken: SharedCluster['mintToken'] = async (o) => {
    await ensureNamespace(o.namespace);
    await ignoreConflict(
      core().createNamespacedServiceAccount({ namespace: o.namespace, body: { metadata: { name: o.serviceAccount } } }),
    );
    const res = await core().createNamespacedServiceAccountToken({
      name: o.serviceAccount,
      namespace: o.namespace,
      body: { spec: { audiences: o.audiences ?? [], expirationSeconds: o.expirationSeconds ?? 3600 } },
    });
    const token = res.status?.token;
    if (!token) throw new Error(`TokenRequest for ${o.namespace}/${o.serviceAccount} returned no token`);
    return token;
  };

  const kubeconfigForToken: SharedCluster['kubeconfigForToken'] = (token, o = {}) => {
    mkdirSync(kubeconfigDir, { recursive: true, mode: 0o700 });
    const file = path.join(kubeconfigDir, `${o.name ?? 'token'}-${randomBytes(4).toString('hex')}.kubeconfig`);
    return writeKubeconfig(file, {
      server: info.server,
      caPem,
      user: o.name ?? 'token-user',
      token,
      ...(o.namespace ? { namespace: o.namespace } : {}),
    });
  };

  const serviceAccountWithAccess: SharedCluster['serviceAccountWithAccess'] = async (o) => {
    if (!o.clusterRole === !o.rules) throw new Error('serviceAccountWithAccess: give exactly one of clusterRole or rules');
    const scope = o.scope ?? 'namespace';
    const subject = { kind: 'ServiceAccount', name: o.serviceAccount, namespace: o.namespace };
    const roleName = `${o.serviceAccount}-access`;
    const bindingName = `${o.namespace}-${o.serviceAccount}-access`;
    await ensureNamespace(o.namespace);
    await ignoreConflict(
      core().createNamespacedServiceAccount({ namespace: o.namespace, body: { metadata: { name: o.serviceAccount } } }),
    );
    if (scope === 'cluster') {
      if (o.rules) {
        await ignoreConflict(rbac().createClusterRole({ body: { metadata: { name: `${o.namespace}-${roleName}` }, rules: o.rules } }));
      }
      await ignoreConflict(
        rbac().createClusterRoleBinding({
          body: {
            metadata: { name: bindingName },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: o.clusterRole ?? `${o.namespace}-${roleName}` },
            subjects: [subject],
          },
        }),
      );
    } else {
      for (const ns of o.namespaces ?? [o.namespace]) {
        await ensureNamespace(ns);
        if (o.rules) {
          await ignoreConflict(rbac().createNamespacedRole({ namespace: ns, body: { metadata: { name: roleName }, rules: o.rules } }));
        }
        await ignoreConflict(
          rbac().createNamespacedRoleBinding({
            namespace: ns,
            body: {
              metadata: { name: bindingName },
              roleRef: o.rules
                ? { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: roleName }
                : { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: o.clusterRole as string },
              subjects: [subject],
            },
          }),
        );
      }
    }
    const token = await mintToken({
      namespace: o.namespace,
      serviceAccount: o.serviceAccount,
      ...(o.expirationSeconds ? { expirationSeconds: o.expirationSeconds } : {}),
    });
    const kubeconfigPath = kubeconfigForToken(token, { name: `${o.namespace}-${o.serviceAccount}`, namespace: o.namespace });
    return {
      token,
      kubeconfigPath,
      username: `system:serviceaccount:${o.namespace}:${o.serviceAccount}`,
      namespace: o.namespace,
      serviceAccount: o.serviceAccount,
    };
  };

  const helmEnv: SharedCluster['helmEnv'] = (kubeconfigPath) => {
    const home = path.join(info.baseDir, 'helm', `pid-${process.pid}`);
    const dirs = { config: path.join(home, 'config'), cache: path.join(home, 'cache'), data: path.join(home, 'data') };
    for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true, mode: 0o700 });
    return {
      ...process.env,
      KUBECONFIG: kubeconfigPath ?? info.kubeconfigPath,
      HELM_CONFIG_HOME: dirs.config,
      HELM_CACHE_HOME: dirs.cache,
      HELM_DATA_HOME: dirs.data,
    };
  };

  const createNamespace: SharedCluster['createNamespace'] = async (prefix = 'test') => {
    const name = uniqueName(prefix);
    await core().createNamespace({ body: { metadata: { name } } });
    return name;
  };

  const deleteNamespace: SharedCluster['deleteNamespace'] = async (name, o = {}) => {
    try {
      await core().deleteNamespace({ name });
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    if (o.wait === false) return;
    const deadline = Date.now() + (o.timeoutMs ?? 120_000);
    for (;;) {
      try {
        await core().readNamespace({ name });
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      if (Date.now() > deadline) throw new Error(`namespace ${name} still exists after ${o.timeoutMs ?? 120_000} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  return {
    ...info,
    kubeConfig,
    kubeConfigForToken,
    helmEnv,
    mintToken,
    kubeconfigForToken,
    serviceAccountWithAccess,
    createNamespace,
    deleteNamespace,
  };
}
