// berth bind | unbind in Kubernetes mode: ServiceBinding resources; the controller writes the
// credentials into a Secret (spec.secretName, default the binding's name).
import { API_VERSION, GROUP, VERSION, type ServiceBinding } from '../../controller/resources.ts';
import { statusOf } from '../../kubernetes/errors.ts';
import { checkName } from '../broker/instances.ts';
import { waitSettings } from '../broker/common.ts';
import { CliError, EXIT } from '../errors.ts';
import { formatOf } from '../output.ts';
import { firstDifference, parametersOf } from '../parameters.ts';
import type { Options } from '../program.ts';
import { labelsOf, printResource } from './instances.ts';
import { getResource, waitForResource } from './objects.ts';
import { isMissingObject, openKubeSession } from './session.ts';
import { bindingView } from './views.ts';

export async function bind([instance]: string[], opts: Options): Promise<number> {
  checkName(instance!, 'instance');
  const name: string = opts.name ?? instance!;
  checkName(name, 'binding');
  if (opts.output !== undefined) formatOf(opts.output);
  const wait = waitSettings(opts);
  const parameters = await parametersOf(opts);
  const labels = labelsOf(opts);
  const s = await openKubeSession(opts);
  const spec: ServiceBinding['spec'] = { instanceRef: { name: instance! }, ...(opts.secretName ? { secretName: opts.secretName } : {}), ...(parameters ? { parameters } : {}) };
  const body: ServiceBinding = { apiVersion: API_VERSION, kind: 'ServiceBinding', metadata: { name, namespace: s.namespace, ...(labels ? { labels } : {}) }, spec };
  let sentence = 'created';
  try {
    await s.custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: s.namespace, plural: 'servicebindings', body });
  } catch (err) {
    if (statusOf(err) !== 409) throw s.explain(err, `creating ServiceBinding ${s.namespace}/${name}`);
    const existing = (await getResource(s, 'ServiceBinding', s.namespace, name)) as ServiceBinding | undefined;
    if (!existing) throw s.explain(err, `creating ServiceBinding ${s.namespace}/${name}`);
    const field = firstDifference(
      { instance: existing.spec.instanceRef.name, secretName: existing.spec.secretName ?? name, parameters: existing.spec.parameters ?? {} },
      { instance: instance, secretName: spec.secretName ?? name, parameters: spec.parameters ?? {} },
      ['instance', 'secretName', 'parameters'],
    );
    if (field) throw new CliError(EXIT.failed, `binding ${name} already exists in namespace ${s.namespace} with different settings: ${field}. Unbind it first, or pick another name with --name.`);
    sentence = 'already exists (unchanged)';
  }
  const check = `berth describe binding ${name} -n ${s.namespace}`;
  if (wait.async) {
    if (sentence === 'created') process.stderr.write(`Binding ${name} is in progress. Use \`${check}\` to check on it.\n`);
    await printResource((await getResource(s, 'ServiceBinding', s.namespace, name)) as never, opts, sentence, bindingView as never, 'servicebinding');
    return EXIT.ok;
  }
  const ready = await waitForResource(s, 'ServiceBinding', s.namespace, name, 'ready', { label: `binding ${name}`, ...wait, checkHint: check });
  await printResource(ready as never, opts, sentence, bindingView as never, 'servicebinding');
  return EXIT.ok;
}

export async function unbind([name]: string[], opts: Options): Promise<number> {
  checkName(name!, 'binding');
  const wait = waitSettings(opts);
  const s = await openKubeSession(opts);
  try {
    await s.custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: s.namespace, plural: 'servicebindings', name: name! });
  } catch (err) {
    if (isMissingObject(err)) {
      process.stdout.write(`servicebinding/${name} does not exist (nothing to delete)\n`);
      return EXIT.ok;
    }
    throw s.explain(err, `deleting ServiceBinding ${s.namespace}/${name}`);
  }
  if (wait.async) {
    process.stdout.write(`servicebinding/${name} unbinding\n`);
    return EXIT.ok;
  }
  await waitForResource(s, 'ServiceBinding', s.namespace, name!, 'gone', { label: `unbinding ${name}`, ...wait, checkHint: `berth describe binding ${name} -n ${s.namespace}` });
  process.stdout.write(`servicebinding/${name} deleted\n`);
  return EXIT.ok;
}
