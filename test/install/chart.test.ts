// charts/berth against the shared test control plane (kube-apiserver 1.36, kwok
// node): `helm lint`, values.schema.json refusing wrong values with a message
// naming the value, deploy/ in sync with the chart, and the whole chart with
// every toggle on applied with a server-side dry run, so the API server checks
// every object against its real schema (built-in kinds and Berth's CRDs) and the
// admission chain.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { sharedCluster, type SharedCluster } from '../support/kube/shared.ts';
import { REPO } from '../support/berth.ts';
import { renderDeploy } from '../../scripts/render-deploy.ts';

const CHART = path.join(REPO, 'charts/berth');
const DB = ['--set', 'credentials.databaseUrl=postgres://berth:secret@10.96.0.50:5432/berth'];

/** Every optional part of the chart switched on. */
const ALL_ON = [
  ...DB,
  '--set', 'controller.enabled=true',
  '--set', 'serviceMonitor.enabled=true',
  '--set', 'networkPolicy.enabled=true',
  '--set-string', 'networkPolicy.ingressFrom[0].namespaceSelector.matchLabels.platform=true',
  '--set', 'registration.berth.enabled=true',
  '--set', 'registration.serviceCatalog.enabled=true',
  '--set', 'registration.serviceCatalog.authType=bearer',
  '--set', 'tls.enabled=true',
  '--set', 'tls.existingSecret=berth-tls',
  '--set', 'tls.clientCA.enabled=true',
  '--set', 'tls.httpPort=8081',
  '--set', 'auth.tokenReview.enabled=true',
  '--set', 'auth.tokenReview.allowed={system:serviceaccount:korifi:korifi-controllers,group:platform-team}',
  '--set', 'auth.tokenReview.audience=berth',
  '--set', 'auth.bearer.existingSecret=berth-tokens',
];

// Service Catalog and prometheus-operator are not part of this cluster: stand-ins for their
// CRDs (group, kind and the fields the chart sets; not their full schemas) let the API server
// take the two objects of theirs, while Berth's own kinds are checked against the real CRDs.
const STAND_IN_CRDS = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
# *.k8s.io groups need this annotation; "unapproved, ..." is the documented value for unreviewed ones.
metadata: {name: clusterservicebrokers.servicecatalog.k8s.io, annotations: {api-approved.kubernetes.io: 'unapproved, a test stand-in for Service Catalog'}}
spec:
  group: servicecatalog.k8s.io
  scope: Cluster
  names: {kind: ClusterServiceBroker, plural: clusterservicebrokers, singular: clusterservicebroker, listKind: ClusterServiceBrokerList}
  versions:
    - name: v1beta1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [url]
              properties:
                url: {type: string}
                caBundle: {type: string, format: byte}
                insecureSkipTLSVerify: {type: boolean}
                relistBehavior: {type: string, enum: [Duration, Manual]}
                relistDuration: {type: string}
                authInfo:
                  type: object
                  properties:
                    basic: {type: object, properties: {secretRef: {type: object, required: [namespace, name], properties: {namespace: {type: string}, name: {type: string}}}}}
                    bearer: {type: object, properties: {secretRef: {type: object, required: [namespace, name], properties: {namespace: {type: string}, name: {type: string}}}}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, plural: servicemonitors, singular: servicemonitor, listKind: ServiceMonitorList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [selector, endpoints]
              properties:
                selector: {type: object, x-kubernetes-preserve-unknown-fields: true}
                endpoints:
                  type: array
                  items:
                    type: object
                    properties:
                      port: {type: string}
                      path: {type: string}
                      scheme: {type: string, enum: [http, https]}
                      interval: {type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'}
                      tlsConfig: {type: object, x-kubernetes-preserve-unknown-fields: true}
`;

describe('charts/berth', () => {
  let kube: SharedCluster;
  let dir: string;
  let namespace: string;
  const helm = (args: string[]) => execa(kube.helmBin, args, { env: kube.helmEnv(), reject: false });
  const kubectl = (args: string[], input?: string) =>
    execa(kube.kubectlBin, [...args, '--kubeconfig', kube.kubeconfigPath], { reject: false, input });

  before(async () => {
    kube = await sharedCluster();
    dir = mkdtempSync(path.join(os.tmpdir(), 'berth-chart-'));
    namespace = await kube.createNamespace('chart');
  });
  after(async () => {
    await kubectl(['delete', '--ignore-not-found', '--wait=false', 'crd', 'clusterservicebrokers.servicecatalog.k8s.io', 'servicemonitors.monitoring.coreos.com']);
    if (namespace) await kube.deleteNamespace(namespace);
    rmSync(dir, { recursive: true, force: true });
  });

  test('helm lint passes with no warning, with the defaults and with every toggle on', async () => {
    for (const args of [DB, ALL_ON]) {
      const r = await helm(['lint', CHART, '--strict', ...args]);
      assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      assert.doesNotMatch(r.stdout, /\[(WARNING|ERROR)\]/);
    }
  });

  test('values.schema.json refuses a wrong value, naming it and what was expected', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--set', 'replicaCount=two'], /at '\/replicaCount': got string, want integer/],
      [['--set', 'replicaCount=0'], /at '\/replicaCount': minimum: got 0, want 1/],
      [['--set', 'logLevel=loud'], /at '\/logLevel': value must be one of 'fatal', 'error', 'warn', 'info'/],
      [['--set', 'replcaCount=2'], /additional properties 'replcaCount' not allowed/],
      [['--set', 'credentials.databaseUrl=mysql://x@y/z'], /at '\/credentials\/databaseUrl'.*|does not match pattern '\^postgres\(ql\)\?:\/\/'/s],
      [['--set', 'credentials.brokerPassword=short'], /at '\/credentials\/brokerPassword'/],
      [['--set', 'auth.tokenReview.allowed={korifi}'], /at '\/auth\/tokenReview\/allowed\/0'.*does not match pattern/s],
      [['--set', 'registration.serviceCatalog.authType=oauth'], /at '\/registration\/serviceCatalog\/authType': value must be one of 'basic', 'bearer'/],
    ];
    for (const [args, message] of cases) {
      const r = await helm(['template', 'berth', CHART, ...DB, ...args]);
      assert.notEqual(r.exitCode, 0, `accepted ${args.join(' ')}`);
      assert.match(r.stderr, /values don't meet the specifications of the schema/);
      assert.match(r.stderr, message, r.stderr);
    }
    // What a schema cannot say, the chart says in one sentence.
    const noDb = await helm(['template', 'berth', CHART]);
    assert.notEqual(noDb.exitCode, 0);
    assert.match(noDb.stderr, /credentials\.databaseUrl is required .* or credentials\.existingSecret/);
    const noAllowed = await helm(['template', 'berth', CHART, ...DB, '--set', 'auth.tokenReview.enabled=true']);
    assert.match(noAllowed.stderr, /auth\.tokenReview\.enabled needs auth\.tokenReview\.allowed/);
    const noTlsSecret = await helm(['template', 'berth', CHART, ...DB, '--set', 'tls.enabled=true']);
    assert.match(noTlsSecret.stderr, /tls\.enabled needs tls\.existingSecret/);
  });

  test('deploy/ is what the chart renders (node scripts/render-deploy.ts)', () => {
    for (const [file, text] of renderDeploy(kube.helmBin)) {
      assert.equal(readFileSync(path.join(REPO, 'deploy', file), 'utf8'), text, `deploy/${file} is out of date: run node scripts/render-deploy.ts`);
    }
  });

  test('with every toggle on, the API server accepts every object in a server-side dry run', async () => {
    // Berth's CRDs as the controller tests install them, and the stand-ins for the platforms' kinds.
    let r = await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=berth-tests', '-f', path.join(REPO, 'deploy/crds')]);
    assert.equal(r.exitCode, 0, r.stderr);
    r = await kubectl(['apply', '--server-side', '--field-manager=berth-tests', '-f', '-'], STAND_IN_CRDS);
    assert.equal(r.exitCode, 0, r.stderr);
    r = await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/clusterservicebrokers.services.berth.dev',
      'crd/clusterservicebrokers.servicecatalog.k8s.io', 'crd/servicemonitors.monitoring.coreos.com']);
    assert.equal(r.exitCode, 0, r.stderr);

    // A release name of its own, so cluster-scoped names (ClusterRoles, policies) are this test's.
    const release = `dry-${randomBytes(3).toString('hex')}`;
    const rendered = await helm(['template', release, CHART, '--namespace', namespace, ...ALL_ON]);
    assert.equal(rendered.exitCode, 0, rendered.stderr);
    const file = path.join(dir, 'all-on.yaml');
    writeFileSync(file, rendered.stdout);
    const kinds = [...rendered.stdout.matchAll(/^kind: (\S+)$/gm)].map((m) => m[1]);
    for (const kind of ['Deployment', 'Service', 'ConfigMap', 'Secret', 'PodDisruptionBudget', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role',
      'RoleBinding', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding', 'CustomResourceDefinition', 'ClusterServiceBroker', 'ServiceMonitor', 'NetworkPolicy']) {
      assert.ok(kinds.includes(kind), `the chart with every toggle on renders a ${kind}`);
    }
    r = await kubectl(['apply', '--server-side', '--dry-run=server', '--force-conflicts', '--field-manager=berth-chart-test', '-f', file]);
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    const accepted = r.stdout.split('\n').filter((l) => / serverside-applied \(server dry run\)$/.test(l));
    assert.equal(accepted.length, kinds.length, r.stdout);

    // The dry run does check: a value the schema lets through but the API server refuses fails it.
    const bad = await helm(['template', release, CHART, '--namespace', namespace, ...DB, '--set', 'service.clusterIP=10.96.0.0.1']);
    writeFileSync(file, bad.stdout);
    r = await kubectl(['apply', '--server-side', '--dry-run=server', '--field-manager=berth-chart-test', '-f', file]);
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /spec\.clusterIPs?.*must be a valid IP address|Invalid value: "10\.96\.0\.0\.1"/);
  });
});
