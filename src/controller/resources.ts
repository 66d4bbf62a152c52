// The custom resources of services.berth.dev/v1alpha1 as the controller reads and
// writes them (the CRDs are deploy/crds/*.yaml), and the names it uses on them.
import type { V1ObjectMeta } from '@kubernetes/client-node';

export const GROUP = 'services.berth.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const PLURALS = {
  ServiceInstance: 'serviceinstances',
  ServiceBinding: 'servicebindings',
  ServiceOffering: 'serviceofferings',
  ServicePlan: 'serviceplans',
  ClusterServiceBroker: 'clusterservicebrokers',
} as const;

/** Held by instances and bindings until the broker has let go of them. */
export const FINALIZER = `${GROUP}/finalizer`;
/** `"true"`: the controller leaves the resource alone (Synced=False, reason ReconcilePaused). */
export const PAUSED_ANNOTATION = `${GROUP}/paused`;
/** Any new value forces a resync: the instance is read back from the broker, the binding Secret rewritten. */
export const RECONCILE_AT_ANNOTATION = `${GROUP}/reconcile-at`;
/** The broker a ServiceInstance uses when spec.brokerRef is absent: the local Berth. */
export const LOCAL_BROKER = 'berth';
/** Labels of the Secrets the controller writes, and of the offerings and plans it publishes. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'berth-controller';
export const BROKER_LABEL = `${GROUP}/broker`;

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface LastOperation {
  type: string;
  state: 'in progress' | 'succeeded' | 'failed';
  operation?: string;
  description?: string;
  startTime?: string;
  endTime?: string;
}

interface Resource<Spec, Status> {
  apiVersion?: string;
  kind?: string;
  metadata: V1ObjectMeta;
  spec: Spec;
  status?: Status;
}

export interface SecretKeyRef {
  name: string;
  key: string;
}

export interface ServiceInstanceSpec {
  offering: string;
  plan: string;
  brokerRef?: { name: string };
  parameters?: Record<string, unknown>;
  parametersFrom?: { secretKeyRef: SecretKeyRef }[];
  deletionPolicy?: 'Delete' | 'Orphan';
  /** The maintenance version to be at (`berth upgrade` sets the plan's current one); the controller sends the plan's maintenance_info in an update. */
  maintenanceInfo?: { version: string };
}

export interface ServiceInstanceStatus {
  observedGeneration?: number;
  instanceID?: string;
  brokerName?: string;
  offeringID?: string;
  planID?: string;
  planUpdateable?: boolean;
  provisioned?: boolean;
  appliedHash?: string;
  /** The hash an operation in progress applies (becomes appliedHash or rejectedHash when it ends). */
  pendingHash?: string;
  /** The plan an update in progress moves to. */
  pendingPlanID?: string;
  rejectedHash?: string;
  dashboardURL?: string;
  maintenanceInfo?: { version?: string; description?: string };
  /** What the broker's provisioner made, as the broker showed it when the controller last asked (`berth trace`). */
  provisionedResources?: ProvisionedResourcesStatus;
  lastOperation?: LastOperation;
  /** The reconcile-at annotation value last acted on. */
  reconciledAt?: string;
  conditions?: Condition[];
}

export type ServiceInstance = Resource<ServiceInstanceSpec, ServiceInstanceStatus>;

/** One thing the broker's provisioner made (a database, a role, a Helm release, a Pod…), as recorded in the status. */
export interface RecordedResource {
  kind: string;
  name: string;
  /** ready | not-ready | failed | missing | unknown */
  state: string;
  message?: string;
  /** The binding this belongs to (its login). */
  bindingID?: string;
  children?: RecordedResource[];
}

export interface ProvisionedResourcesStatus {
  /** When the broker looked. */
  takenAt: string;
  /** False when the broker has no endpoint for it (any broker but Berth). */
  exposed: boolean;
  /** The provisioner kind (postgres, helm, user-provided…). */
  kind?: string;
  /** The bindings the broker knew when it looked (a change makes the controller ask again). */
  bindingIDs?: string[];
  /** Why the broker or the controller could not look. */
  problem?: string;
  resources?: RecordedResource[];
}

export interface ServiceBindingSpec {
  instanceRef: { name: string };
  secretName?: string;
  parameters?: Record<string, unknown>;
}

export interface ServiceBindingStatus {
  observedGeneration?: number;
  binding?: { name: string };
  bindingID?: string;
  instanceID?: string;
  brokerName?: string;
  serviceID?: string;
  planID?: string;
  bound?: boolean;
  rejectedHash?: string;
  pendingHash?: string;
  lastOperation?: LastOperation;
  reconciledAt?: string;
  /** The serving binding's metadata.expires_at / renew_before, as the broker answered them (src/controller/credentials.ts). */
  credentialsExpireAt?: string;
  renewBefore?: string;
  /** The OSB binding id whose credentials the Secret holds (metadata.uid until the first rotation, then `<uid>-r<n>`). */
  servingBindingID?: string;
  /** A successor being bound (the identical bind is re-sent until it answers with credentials). */
  rotatingTo?: string;
  /** The predecessor of the last rotation, unbound at `after`. */
  retiring?: { bindingID: string; after: string };
  rotations?: number;
  lastRotationTime?: string;
  /** The end time of the instance update the serving credentials were last checked against (GET binding). */
  credentialsCheckedAt?: string;
  /** The renew_before or update end time for which the broker refused a rotation (not asked again for it). */
  rotationRefused?: string;
  conditions?: Condition[];
}

export type ServiceBinding = Resource<ServiceBindingSpec, ServiceBindingStatus>;

export interface ClusterServiceBrokerSpec {
  url: string;
  apiVersion?: string;
  authSecretRef?: { name: string };
}

export interface ClusterServiceBrokerStatus {
  observedGeneration?: number;
  offerings?: number;
  conditions?: Condition[];
}

export type ClusterServiceBroker = Resource<ClusterServiceBrokerSpec, ClusterServiceBrokerStatus>;

export const isPaused = (meta: V1ObjectMeta): boolean => meta.annotations?.[PAUSED_ANNOTATION] === 'true';
export const hasFinalizer = (meta: V1ObjectMeta): boolean => (meta.finalizers ?? []).includes(FINALIZER);
