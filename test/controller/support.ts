// The controller's tests run the whole stack on the shared real control plane:
// the CRDs and the controller's RBAC from deploy/ applied as they are; a Berth
// (Postgres state, the controller fixture catalog, helm and the real Postgres
// server for its plans); and the controller acting as the berth-controller
// ServiceAccount (least privilege, deploy/controller-rbac.yaml), scoped by a
// label selector and its own Lease so test files running in parallel each
// drive only their own resources.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { execa } from 'execa';
import YAML from 'yaml';
import { sharedCluster, type SharedCluster } from '../support/kube/shared.ts';
import { REPO, TEST_CREDENTIALS, startTestBerth, type TestBerth } from '../support/berth.ts';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { brokerKubeconfig } from '../helm/support.ts';
import { Controller } from '../../src/controller/controller.ts';
import { GROUP, VERSION } from '../../src/controller/resources.ts';
import { createLogger } from '../../src/observability/logger.ts';

export const CONTROLLER_CATALOG = join(REPO, 'test/fixtures/catalog-controller.yaml');
export const CRD_DIR = join(REPO, 'deploy/crds');
export const CONTROLLER_RBAC = join(REPO, 'deploy/controller-rbac.yaml');
export const CONTROLLER_NAMESPACE = 'berth-system';
export const SHARD_LABEL = 'test.berth.dev/shard';
export const GATED_MODULE = join(REPO, 'test/support/gated-provisioner.ts');

export async function kubectl(kube: SharedCluster, args: string[], input?: string): Promise<string> {
  return (await execa(kube.kubectlBin, [...args, '--kubeconfig', kube.kubeconfigPath], { input })).stdout;
}

let installed: Promise<string> | undefined;

/** Applies the CRDs and the controller's RBAC (once per process); returns a kubeconfig of the berth-controller ServiceAccount. */
export function installController(kube: SharedCluster): Promise<string> {
  installed ??= (async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        await kubectl(kube, ['create', 'namespace', CONTROLLER_NAMESPACE]).catch(() => undefined);
        await kubectl(kube, ['apply', '--server-side', '--force-conflicts', '--field-manager=berth-tests', '-f', CRD_DIR, '-f', CONTROLLER_RBAC]);
        break;
      } catch (err) {
        if (attempt >= 5) throw err;
        await sleep(500 * attempt);
      }
    }
    await kubectl(kube, ['wait', '--for=condition=Established', '--timeout=60s', '-f', CRD_DIR]);
    const token = await kube.mintToken({ namespace: CONTROLLER_NAMESPACE, serviceAccount: 'berth-controller' });
    return kube.kubeconfigForToken(token, { name: 'berth-controller', namespace: CONTROLLER_NAMESPACE });
  })();
  return installed;
}

export interface Stack {
  kube: SharedCluster;
  berth: TestBerth;
  db: TestDatabase;
  /** The label value that puts a resource in this stack's shard. */
  shard: string;
  controllerKubeconfig: string;
  controller: Controller | undefined;
  custom: CustomObjectsApi;
  core: CoreV1Api;
  startController(opts?: { leaseSeconds?: number; rotationGraceSeconds?: number }): Promise<Controller>;
  /** Stops the stack's Berth and starts it again on the same port and database with another catalog (an operator's catalog change). */
  restartBerth(catalogPath: string): Promise<void>;
  stopController(): Promise<void>;
  /** Environment for a `berth controller` child process of this stack. */
  controllerEnv(): Record<string, string>;
  apply(namespace: string, ...objects: object[]): Promise<void>;
  get(kind: 'serviceinstances' | 'servicebindings', namespace: string, name: string): Promise<any>;
  stop(): Promise<void>;
}

export async function startStack(opts: { startController?: boolean; rotationGraceSeconds?: number } = {}): Promise<Stack> {
  const kube = await sharedCluster();
  const controllerKubeconfig = await installController(kube);
  const db = await createTestDatabase();
  const berthEnv = {
    KUBECONFIG: await brokerKubeconfig(kube),
    BERTH_HELM_BIN: kube.helmBin,
    BERTH_POSTGRES_SHARED_URL: ADMIN_URL,
    BERTH_LEASE_SECONDS: '5',
    BERTH_PROVISIONER_MODULES: GATED_MODULE,
  };
  const berth = await startTestBerth({ databaseUrl: db.url, catalogPath: CONTROLLER_CATALOG, env: berthEnv });
  const shard = randomBytes(4).toString('hex');
  const custom = kube.kubeConfig().makeApiClient(CustomObjectsApi);
  const core = kube.kubeConfig().makeApiClient(CoreV1Api);
  const stack: Stack = {
    kube,
    berth,
    db,
    shard,
    controllerKubeconfig,
    controller: undefined,
    custom,
    core,
    async startController(o = {}) {
      const kc = new KubeConfig();
      kc.loadFromFile(controllerKubeconfig);
      const controller = new Controller({
        kubeConfig: kc,
        log: createLogger(process.env.BERTH_TEST_LOG_LEVEL ?? 'silent'),
        broker: { url: berth.berth.url, auth: TEST_CREDENTIALS },
        namespace: CONTROLLER_NAMESPACE,
        leaseName: `berth-controller-${shard}`,
        leaseSeconds: o.leaseSeconds ?? 5,
        rotationGraceSeconds: o.rotationGraceSeconds,
        selector: `${SHARD_LABEL}=${shard}`,
      });
      await controller.start();
      stack.controller = controller;
      return controller;
    },
    async restartBerth(catalogPath) {
      const port = new URL(stack.berth.berth.url).port;
      await stack.berth.stop();
      stack.berth = await startTestBerth({ databaseUrl: db.url, catalogPath, env: { ...berthEnv, PORT: port } });
    },
    async stopController() {
      await stack.controller?.stop();
      stack.controller = undefined;
    },
    controllerEnv() {
      return {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        KUBECONFIG: controllerKubeconfig,
        BERTH_BROKER_URL: berth.berth.url,
        BROKER_USERNAME: TEST_CREDENTIALS.username,
        BROKER_PASSWORD: TEST_CREDENTIALS.password,
        BERTH_CONTROLLER_NAMESPACE: CONTROLLER_NAMESPACE,
        BERTH_CONTROLLER_LEASE_NAME: `berth-controller-${shard}`,
        BERTH_CONTROLLER_SELECTOR: `${SHARD_LABEL}=${shard}`,
        BERTH_CONTROLLER_LEASE_SECONDS: '4',
        LOG_LEVEL: 'info',
      };
    },
    async apply(namespace, ...objects) {
      const docs = objects.map((o) => YAML.stringify(withShard(o as any, shard))).join('---\n');
      await kubectl(kube, ['apply', '-n', namespace, '-f', '-'], docs);
    },
    async get(plural, namespace, name) {
      return custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural, namespace, name });
    },
    async stop() {
      try {
        await stack.stopController();
        await stack.berth.stop();
      } finally {
        await db.drop();
      }
    },
  };
  if (opts.startController !== false) await stack.startController({ rotationGraceSeconds: opts.rotationGraceSeconds });
  return stack;
}

function withShard(o: { metadata: { labels?: Record<string, string> }; kind?: string }, shard: string) {
  if (o.kind === 'Secret') return o;
  return { ...o, metadata: { ...o.metadata, labels: { ...o.metadata.labels, [SHARD_LABEL]: shard } } };
}

export const instance = (name: string, spec: Record<string, unknown>) => ({ apiVersion: `${GROUP}/${VERSION}`, kind: 'ServiceInstance', metadata: { name }, spec });
export const binding = (name: string, instanceName: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: `${GROUP}/${VERSION}`,
  kind: 'ServiceBinding',
  metadata: { name },
  spec: { instanceRef: { name: instanceName }, ...extra },
});

/** `kubectl wait --for=condition=<c>` on one resource. */
export async function waitFor(kube: SharedCluster, namespace: string, resource: string, condition = 'Ready', timeoutSeconds = 120): Promise<void> {
  await kubectl(kube, ['wait', '-n', namespace, `--for=condition=${condition}`, `--timeout=${timeoutSeconds}s`, resource]);
}

/** Polls `check` (every 100 ms) until it returns a value other than undefined. */
export async function until<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(100);
  }
}

export const conditionOf = (obj: any, type: string) => (obj?.status?.conditions ?? []).find((c: any) => c.type === type);
