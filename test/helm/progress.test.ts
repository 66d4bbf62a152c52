// What the helm provisioner reports while it works, without a cluster: a
// stand-in helm binary answers `upgrade --install` with an empty manifest, the
// plan uses a fixed namespace, and a stand-in API server answers the access
// check Berth makes before running helm there.
import { after, before, test } from 'node:test';
import { startKubeApiStandIn, type KubeApiStandIn } from '../support/kube-api-stand-in.ts';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../src/config.ts';
import { parseCatalog, type CatalogPlan } from '../../src/catalog/catalog.ts';
import { KubernetesAccess } from '../../src/kubernetes/client.ts';
import { HelmProvisioner } from '../../src/provisioners/helm/helm-provisioner.ts';
import { ProvisionerRegistry, type InstanceOperation, type JsonObject, type UpdateOperation } from '../../src/provisioners/provisioner.ts';

let dir: string;
let helm: HelmProvisioner;
let plan: CatalogPlan;
let kubeApi: KubeApiStandIn;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'berth-helm-progress-'));
  const bin = join(dir, 'fake-helm');
  writeFileSync(bin, `#!/bin/sh\ncat >/dev/null\necho '{"manifest":""}'\n`);
  chmodSync(bin, 0o755);
  kubeApi = await startKubeApiStandIn(join(dir, 'kubeconfig'));
  const kubeconfig = kubeApi.kubeconfigPath;
  const catalogPath = join(dir, 'catalog.yaml');
  const config = loadConfig({ BERTH_HELM_BIN: bin, KUBECONFIG: kubeconfig, BERTH_DATA_DIR: dir, CATALOG_PATH: catalogPath, PATH: process.env.PATH });
  helm = new HelmProvisioner(config, new KubernetesAccess(config));
  const catalog = parseCatalog(
    `services:
  - id: svc
    name: svc
    description: d
    bindable: false
    plans:
      - id: plan
        name: plan
        description: d
        provisioner: { kind: helm, chart: ./chart, namespace: { strategy: fixed, name: shared } }
`,
    catalogPath,
    new ProvisionerRegistry([helm]).parseConfig,
  );
  plan = catalog.plan('plan')!;
});

after(async () => {
  await kubeApi?.close();
  rmSync(dir, { recursive: true, force: true });
});

function operation(progress: string[]): InstanceOperation {
  const state: JsonObject = {};
  return {
    operationId: 'op',
    attempt: 1,
    signal: new AbortController().signal,
    log: pino({ level: 'silent' }),
    state,
    checkpoint: async (patch) => void Object.assign(state, patch),
    progress: async (description) => void progress.push(description),
    instance: { id: 'i-1', serviceId: 'svc', plan, parameters: {}, context: undefined, organizationGuid: 'org', spaceGuid: 'space' },
  };
}

test('a provision reports installing the chart, an update reports upgrading the release', async () => {
  const installing: string[] = [];
  await helm.provision(operation(installing));
  assert.ok(installing.some((p) => /^Installing chart as release b-\S+ in shared$/.test(p)), installing.join(' | '));

  const upgrading: string[] = [];
  const update: UpdateOperation = { ...operation(upgrading), previous: { plan, parameters: {} } };
  await helm.update(update);
  assert.ok(upgrading.some((p) => /^Upgrading release b-\S+ in shared$/.test(p)), upgrading.join(' | '));
  assert.deepEqual(upgrading.filter((p) => /install/i.test(p)), [], 'an update never says it installs');
});
