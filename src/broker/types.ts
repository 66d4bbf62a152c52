// What the broker is asked (one request type per OSB endpoint, already
// shape-checked by the HTTP layer's schemas) and what it answers, before any
// presentation: the HTTP layer's presenters turn answers into OSB bodies.
import type { JsonObject, OperationKind, OperationState } from '../osb/model.ts';
import type { BindingRecord } from '../store/bindings.ts';
import type { InstanceRecord } from '../store/instances.ts';

export interface RequestMeta {
  apiMinor: number;
  requestIdentity: string | undefined;
  originatingIdentity: { platform: string; value: JsonObject } | undefined;
  /** X-Berth-Wait-Seconds: how long a last_operation poll may be held for its operation's end (0: answer at once). */
  waitSeconds?: number;
}

export interface ProvisionRequest {
  instanceId: string;
  serviceId: string;
  planId: string;
  context: JsonObject | undefined;
  organizationGuid: string;
  spaceGuid: string;
  parameters: JsonObject | undefined;
  maintenanceVersion: string | undefined;
  acceptsIncomplete: boolean;
}

export interface UpdateRequest {
  instanceId: string;
  serviceId: string;
  planId: string | undefined;
  context: JsonObject | undefined;
  parameters: JsonObject | undefined;
  maintenanceVersion: string | undefined;
  acceptsIncomplete: boolean;
}

export interface DeleteInstanceRequest {
  instanceId: string;
  serviceId: string;
  planId: string;
  acceptsIncomplete: boolean;
}

export interface BindRequest {
  instanceId: string;
  bindingId: string;
  serviceId: string;
  planId: string;
  context: JsonObject | undefined;
  bindResource: JsonObject | undefined;
  appGuid: string | undefined;
  parameters: JsonObject | undefined;
  predecessorBindingId: string | undefined;
  acceptsIncomplete: boolean;
}

export interface UnbindRequest {
  instanceId: string;
  bindingId: string;
  serviceId: string;
  planId: string;
  acceptsIncomplete: boolean;
}

/** A queued asynchronous operation, or a repeat of one. */
export type Accepted = { status: 202; operation: string };

export type InstanceAnswer = { status: 200 | 201; dashboardUrl?: string; metadata?: JsonObject } | (Accepted & { dashboardUrl?: string });

export type BindAnswer = { status: 200 | 201; binding: BindingRecord } | Accepted;

export type DeleteAnswer = { status: 200 } | Accepted;

/** An instance as GET shows it: the record, and whether its parameters may be echoed. */
export interface FetchedInstance {
  instance: InstanceRecord;
  parametersShown: boolean;
}

/** A binding as GET shows it: the record, and whether its parameters may be echoed. */
export interface FetchedBinding {
  binding: BindingRecord;
  parametersShown: boolean;
}

/** What last_operation reports about an operation, and what the HTTP layer needs for Retry-After. */
export interface OperationStatus {
  kind: OperationKind;
  state: OperationState;
  description: string;
  instanceUsable?: boolean;
  updateRepeatable?: boolean;
  startedAt: Date;
  deadlineAt: Date | undefined;
}
