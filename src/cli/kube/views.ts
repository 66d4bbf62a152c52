// Kubernetes mode's tables: the CRDs' own printer columns (NAME OFFERING PLAN READY REASON AGE,
// -o wide adding the ids and the message); -o json/yaml print the resource itself.
import { age, type View } from '../output.ts';
import { conditionOf, type Resource } from './objects.ts';

type Obj = Record<string, any>;
const ready = (o: Resource) => conditionOf(o, 'Ready');
const ns = { header: 'NAMESPACE', value: (o: Obj) => o.metadata.namespace ?? '' };

export const instanceView: View<Obj> = {
  name: (o) => `serviceinstance/${o.metadata.name}`,
  full: (o) => o,
  columns: [
    { header: 'NAME', value: (o) => o.metadata.name },
    { header: 'OFFERING', value: (o) => o.spec.offering },
    { header: 'PLAN', value: (o) => o.spec.plan },
    { header: 'READY', value: (o) => ready(o as Resource)?.status ?? 'Unknown' },
    { header: 'REASON', value: (o) => ready(o as Resource)?.reason ?? '' },
    { header: 'AGE', value: (o) => age(o.metadata.creationTimestamp) },
    { header: 'INSTANCE-ID', value: (o) => o.status?.instanceID ?? '', wide: true },
    { header: 'MESSAGE', value: (o) => ready(o as Resource)?.message ?? '', wide: true },
  ],
};

export const bindingView: View<Obj> = {
  name: (o) => `servicebinding/${o.metadata.name}`,
  full: (o) => o,
  columns: [
    { header: 'NAME', value: (o) => o.metadata.name },
    { header: 'INSTANCE', value: (o) => o.spec.instanceRef?.name ?? '' },
    { header: 'SECRET', value: (o) => o.spec.secretName ?? o.metadata.name },
    { header: 'READY', value: (o) => ready(o as Resource)?.status ?? 'Unknown' },
    { header: 'REASON', value: (o) => ready(o as Resource)?.reason ?? '' },
    { header: 'AGE', value: (o) => age(o.metadata.creationTimestamp) },
    { header: 'BINDING-ID', value: (o) => o.status?.bindingID ?? '', wide: true },
    { header: 'MESSAGE', value: (o) => ready(o as Resource)?.message ?? '', wide: true },
  ],
};

/** With -A, a NAMESPACE column first, as kubectl does. */
export const withNamespace = <T>(view: View<T>): View<T> => ({ ...view, columns: [ns as never, ...view.columns] });
