// deploy/ is generated from charts/berth, so the plain manifests and the chart
// cannot drift apart: `node scripts/render-deploy.ts` rewrites them, and
// test/install/chart.test.ts fails when they differ from what the chart renders.
//
// The chart is rendered as the release `berth` in the namespace `berth-system`
// with a Secret the operator makes (credentials.existingSecret), so nothing
// random ends up in the files; the CRDs are copied as they are.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHART = path.join(REPO, 'charts/berth');

const GENERATED = '# Generated from charts/berth by `node scripts/render-deploy.ts`: edit the chart, not this file.\n';

const BERTH_HEADER = `${GENERATED}#
# Berth on Kubernetes without Helm: apply in this order (the chart does all of
# it in one \`helm install\`, see README "Install on Kubernetes"):
#
#   kubectl create namespace berth-system
#   kubectl -n berth-system create secret generic berth \\
#     --from-literal=DATABASE_URL=postgres://berth:...@postgres.example:5432/berth \\
#     --from-literal=BROKER_USERNAME=platform \\
#     --from-literal=BROKER_PASSWORD="$(openssl rand -base64 24)" \\
#     --from-literal=BERTH_ENCRYPTION_KEYS="k1:$(openssl rand -base64 32)"
#   kubectl apply -f deploy/rbac.yaml -f deploy/admission-policy.yaml -f deploy/berth.yaml
#   # optional, the Kubernetes controller's CRDs and rights:
#   kubectl apply --server-side -f deploy/crds/ -f deploy/controller-rbac.yaml
#
# The image: build it from the Containerfile (or tools/build-images.sh) and set it below.
# Replace the catalog ConfigMap's content with your catalog.
`;

/** What the chart renders for one template, as a plain manifest. */
function plain(text: string): string {
  return text
    .split('\n')
    // Helm's own bookkeeping labels: these files are applied with kubectl, not by Helm.
    .filter((l) => !/^\s+helm\.sh\/chart: /.test(l) && !/^\s+app\.kubernetes\.io\/managed-by: Helm$/.test(l))
    .join('\n')
    .replace(/^---\n/, '')
    .replace(/\n+$/, '\n');
}

/** file under deploy/ -> its content, as rendered from the chart with `helmBin`. */
export function renderDeploy(helmBin: string): Map<string, string> {
  const render = (template: string, extra: string[] = []): string =>
    plain(
      execFileSync(
        helmBin,
        [
          'template', 'berth', CHART, '--namespace', 'berth-system',
          '--set', 'credentials.existingSecret=berth',
          '--show-only', `templates/${template}`,
          ...extra,
        ],
        { encoding: 'utf8', env: { ...process.env, HELM_CACHE_HOME: '/tmp/.berth-render-helm', HELM_CONFIG_HOME: '/tmp/.berth-render-helm', HELM_DATA_HOME: '/tmp/.berth-render-helm' } },
      ),
    );
  const files = new Map<string, string>();
  files.set(
    'berth.yaml',
    BERTH_HEADER + ['configmap.yaml', 'service.yaml', 'deployment.yaml', 'pdb.yaml'].map((t) => render(t)).join('---\n'),
  );
  files.set('rbac.yaml', GENERATED + render('rbac.yaml'));
  files.set('admission-policy.yaml', GENERATED + render('admission-policy.yaml'));
  files.set('controller-rbac.yaml', GENERATED + render('controller-rbac.yaml', ['--set', 'controller.enabled=true']));
  for (const f of readdirSync(path.join(CHART, 'files/crds')).sort()) {
    files.set(`crds/${f}`, readFileSync(path.join(CHART, 'files/crds', f), 'utf8'));
  }
  return files;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { helmBinary } = await import('../test/support/kube/binaries.ts');
  const helm = process.env.BERTH_HELM_BIN ?? helmBinary();
  const out = path.join(REPO, 'deploy');
  rmSync(path.join(out, 'crds'), { recursive: true, force: true });
  mkdirSync(path.join(out, 'crds'), { recursive: true });
  for (const [file, text] of renderDeploy(helm)) writeFileSync(path.join(out, file), text);
  process.stdout.write(`deploy/ rendered from charts/berth with ${helm}\n`);
}
