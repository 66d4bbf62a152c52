// The two recipes of Berth's image must give the same image: the Containerfile
// (for users with a container builder; there is none on the test machines) and
// tools/build-images.sh (registry-free, what the real-node tests run). This
// compares what a Pod depends on: entrypoint, default command, user, working
// directory, port, stop signal, HOME, the Debian packages, Node's version, helm's
// source and the app folders copied; and that the chart runs the image's user.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { REPO } from '../support/berth.ts';

const containerfile = readFileSync(path.join(REPO, 'Containerfile'), 'utf8');
const script = readFileSync(path.join(REPO, 'tools/build-images.sh'), 'utf8');
const versions = Object.fromEntries(
  [...readFileSync(path.join(REPO, 'tools/versions.env'), 'utf8').matchAll(/^([A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1], m[2]]),
);
/** The recipe of Berth's image: its base layer (Debian, Node, helm, tini, user) and its app layer. */
const buildBerth = ['build_berth_base', 'build_berth'].map((name) => new RegExp(`^${name}\\(\\) \\{\\n([\\s\\S]*?)\\n\\}\\n`, 'm').exec(script)?.[1] ?? '').join('\n');

/** The last stage of the Containerfile (the image itself). */
const finalStage = containerfile.slice(containerfile.lastIndexOf('\nFROM '));
const instruction = (name: string): string => {
  const m = new RegExp(`^${name} (.+)$`, 'm').exec(finalStage);
  assert.ok(m, `the Containerfile's last stage has ${name}`);
  return m[1]!.trim();
};
const umoci = (flag: string): string[] =>
  [...buildBerth.matchAll(new RegExp(`--config\\.${flag}[ =](\\S+)`, 'g'))].map((m) => m[1]!);

test('the Containerfile and tools/build-images.sh describe the same image', () => {
  assert.ok(buildBerth.includes('oci_image'), 'build_berth found in tools/build-images.sh');
  assert.deepEqual(JSON.parse(instruction('ENTRYPOINT')), umoci('entrypoint'));
  assert.deepEqual(JSON.parse(instruction('ENTRYPOINT')), ['/usr/bin/tini', '--', '/usr/local/bin/node', '/app/src/cli.ts']);
  assert.deepEqual(JSON.parse(instruction('CMD')), umoci('cmd'));
  assert.equal(instruction('USER'), umoci('user')[0]);
  assert.equal(instruction('WORKDIR'), umoci('workingdir')[0]);
  assert.equal(instruction('EXPOSE'), umoci('exposedports')[0]);
  assert.equal(instruction('STOPSIGNAL'), umoci('stopsignal')[0]);
  const env = Object.fromEntries(instruction('ENV').split(/\s+/).map((kv) => kv.split('=')));
  assert.deepEqual(env, Object.fromEntries(umoci('env').map((kv) => kv.split('='))));

  // The same Debian packages, the same passwd line.
  const apt = /apt-get install -y --no-install-recommends ([^\n&\\]+)/.exec(finalStage)?.[1]?.trim().split(/\s+/).sort();
  const debs = /debian_rootfs "\$work\/layer\.tar" (\S+)/.exec(buildBerth)?.[1]?.split(',').sort();
  assert.deepEqual(apt, debs);
  const passwd = 'berth:x:10001:10001::/home/berth:/usr/sbin/nologin';
  assert.ok(finalStage.includes(passwd) && buildBerth.includes(passwd));

  // Node and helm from the same versions.
  assert.match(containerfile, new RegExp(`^ARG NODE_VERSION=${versions.IMAGE_NODE_VERSION!.replace(/\./g, '\\.')}$`, 'm'));
  assert.ok(containerfile.includes(`ARG HELM_LAYER_PACKAGE=${versions.KUBECTL_LAYER_PACKAGE}@${versions.KUBECTL_LAYER_VERSION}`));
  for (const bin of ['/usr/local/bin/node', '/usr/local/bin/helm']) {
    assert.ok(finalStage.includes(bin) && buildBerth.includes(bin), `both put ${bin} in the image`);
  }

  // The same app files (the script copies git's tracked files of these paths).
  const tracked = /git ls-files -z ([^|]+)\|/.exec(buildBerth)?.[1]?.trim().split(/\s+/).filter((p) => p !== 'migrations').sort();
  const copied = [...finalStage.matchAll(/^COPY (?!--from)(.+) \.\/\S*$/gm)].flatMap((m) => m[1]!.split(/\s+/)).sort();
  assert.deepEqual(copied, tracked);
});

test("the chart runs the image's user with a read-only root filesystem", () => {
  const values = parse(readFileSync(path.join(REPO, 'charts/berth/values.yaml'), 'utf8'));
  const [uid, gid] = umoci('user')[0]!.split(':').map(Number);
  assert.equal(values.podSecurityContext.runAsUser, uid);
  assert.equal(values.podSecurityContext.runAsGroup, gid);
  assert.equal(values.podSecurityContext.runAsNonRoot, true);
  assert.equal(values.securityContext.readOnlyRootFilesystem, true);
  assert.deepEqual(values.securityContext.capabilities.drop, ['ALL']);
  assert.equal(values.securityContext.allowPrivilegeEscalation, false);
});
