// Deterministic Kubernetes names derived from OSB ids, which may contain any
// character: a hash keeps them valid DNS labels, bounded and collision-free.
export { idHash } from '../lib/hash-names.ts';

export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'berth' } as const;
export const INSTANCE_LABEL = 'berth.dev/instance';
export const BINDING_LABEL = 'berth.dev/binding';
export const INSTANCE_ID_ANNOTATION = 'berth.dev/instance-id';
export const BINDING_ID_ANNOTATION = 'berth.dev/binding-id';
/** `label=value` form of MANAGED_BY: on a namespace it hands the namespace to Berth (deploy/admission-policy.yaml). */
export const MANAGED_BY_SELECTOR = 'app.kubernetes.io/managed-by=berth';
/** The ClusterRole (deploy/rbac.yaml) Berth binds to itself in each namespace where it installs releases; also that RoleBinding's name. */
export const INSTANCE_ROLE = 'berth-instance';
