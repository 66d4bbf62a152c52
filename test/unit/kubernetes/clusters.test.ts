// BERTH_CLUSTERS_FILE as config.ts reads it (every mistake one ConfigError
// sentence), and which cluster a request's context chooses (src/kubernetes/clusters.ts).
// The clusters themselves are exercised in test/kubernetes/many-clusters.test.ts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../../src/config.ts';
import { KubernetesClusters } from '../../../src/kubernetes/clusters.ts';
import { PermanentError } from '../../../src/osb/errors.ts';

function configError(env: Record<string, string | undefined>): string {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

describe('BERTH_CLUSTERS_FILE', () => {
  let dir: string;
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-clusters-'));
    file('a.kubeconfig', 'apiVersion: v1\nkind: Config\n');
    file('b.kubeconfig', 'apiVersion: v1\nkind: Config\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('names clusters by id, each with a kubeconfig relative to the file, and an optional default', () => {
    const config = loadConfig({ BERTH_CLUSTERS_FILE: file('ok.yaml', 'default: gke\nclusters:\n  gke: { kubeconfig: a.kubeconfig }\n  kops-eu: { kubeconfig: b.kubeconfig }\n') });
    assert.deepEqual(config.clusters, {
      file: join(dir, 'ok.yaml'),
      defaultId: 'gke',
      clusters: [
        { id: 'gke', kubeconfig: join(dir, 'a.kubeconfig') },
        { id: 'kops-eu', kubeconfig: join(dir, 'b.kubeconfig') },
      ],
    });
    assert.equal(loadConfig({}).clusters, undefined);
  });

  it('refuses a file it cannot use, saying what to change', () => {
    assert.match(configError({ BERTH_CLUSTERS_FILE: join(dir, 'missing.yaml') }), /^BERTH_CLUSTERS_FILE .*missing\.yaml cannot be read as YAML/);
    assert.match(configError({ BERTH_CLUSTERS_FILE: file('empty.yaml', 'clusters: {}\n') }), /is not a clusters file .*\n {2}clusters: name at least one cluster/);
    assert.match(configError({ BERTH_CLUSTERS_FILE: file('typo.yaml', 'clusters:\n  a: { kubecfg: a.kubeconfig }\n') }), /is not a clusters file/);
    assert.match(
      configError({ BERTH_CLUSTERS_FILE: file('nokc.yaml', 'clusters:\n  a: { kubeconfig: nowhere.kubeconfig }\n') }),
      /: the kubeconfig of cluster "a" \(.*nowhere\.kubeconfig\) cannot be read$/,
    );
    assert.match(
      configError({ BERTH_CLUSTERS_FILE: file('nodefault.yaml', 'default: c\nclusters:\n  a: { kubeconfig: a.kubeconfig }\n') }),
      /: default "c" is not one of its clusters \(a\)$/,
    );
  });

  it('routes by context.clusterid: unknown ids refused, none named takes the default, an instance keeps its cluster', () => {
    const clusters = (text: string) => new KubernetesClusters(loadConfig({ BERTH_CLUSTERS_FILE: file(`c-${text.length}.yaml`, text) }));
    const noDefault = clusters('clusters:\n  a: { kubeconfig: a.kubeconfig }\n  b: { kubeconfig: b.kubeconfig }\n');
    assert.equal(noDefault.several, true);
    assert.equal(noDefault.forContext({ clusterid: 'b' })?.clusterId, 'b');
    assert.equal(noDefault.forContext({ platform: 'cloudfoundry' }), undefined);
    assert.equal(noDefault.refusal({ clusterid: 'c' }, false), 'context.clusterid "c" is not a cluster this broker serves; its clusters are "a", "b".');
    assert.equal(noDefault.refusal({ clusterid: 7 }, false), 'context.clusterid 7 is not a cluster this broker serves; its clusters are "a", "b".');
    assert.equal(noDefault.refusal(undefined, false), undefined);
    assert.match(noDefault.refusal(undefined, true)!, /^This request needs a Kubernetes cluster and its context names none/);
    assert.throws(() => noDefault.forContext({ clusterid: 'c' }), (e) => e instanceof PermanentError && e.causedByRequest);
    assert.equal(noDefault.remembered('a').clusterId, 'a');
    assert.throws(() => noDefault.remembered(undefined), /provisioned before BERTH_CLUSTERS_FILE .* has no default: set default:/);
    assert.throws(() => noDefault.remembered('gone'), /lives in cluster "gone", which BERTH_CLUSTERS_FILE no longer names/);

    const withDefault = clusters('default: b\nclusters:\n  a: { kubeconfig: a.kubeconfig }\n  b: { kubeconfig: b.kubeconfig }\n');
    assert.equal(withDefault.forContext(undefined)?.clusterId, 'b');
    assert.equal(withDefault.refusal(undefined, true), undefined);
    assert.equal(withDefault.remembered(undefined).clusterId, 'b');

    // One cluster (no file): context.clusterid is ignored, as before.
    const one = new KubernetesClusters(loadConfig({ KUBECONFIG: join(dir, 'a.kubeconfig') }));
    assert.equal(one.several, false);
    assert.equal(one.refusal({ clusterid: 'anything' }, true), undefined);
    assert.equal(one.forContext({ clusterid: 'anything' }), one.home);
    assert.equal(one.remembered('anything'), one.home);
  });
});
