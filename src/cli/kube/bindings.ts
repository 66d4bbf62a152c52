// berth bind | unbind in Kubernetes mode: ServiceBinding resources; the controller writes the
// credentials into a Secret (spec.secretName, default the binding's name).
import type { ServiceBinding } from '../../controller/resources.ts';
import { checkName } from '../broker/instances.ts';
import { waitSettings } from '../broker/common.ts';
import { EXIT } from '../errors.ts';
import { formatOf } from '../output.ts';
import { firstDifference, parametersOf } from '../parameters.ts';
import type { Options } from '../program.ts';
import { labelsOf, printResource } from './instances.ts';
import { createResource, deleteResource, getResource, waitForResource } from './objects.ts';
import { openKubeSession } from './session.ts';
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
  const sentence = await createResource<ServiceBinding>(s, 'ServiceBinding', name, labels, spec, (existing) => {
    const field = firstDifference(
      { instance: existing.spec.instanceRef.name, secretName: existing.spec.secretName ?? name, parameters: existing.spec.parameters ?? {} },
      { instance: instance, secretName: spec.secretName ?? name, parameters: spec.parameters ?? {} },
      ['instance', 'secretName', 'parameters'],
    );
    return field && `binding ${name} already exists in namespace ${s.namespace} with different settings: ${field}. Unbind it first, or pick another name with --name.`;
  });
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
  return deleteResource('ServiceBinding', name!, opts, { noun: 'binding', doing: 'unbinding' });
}
