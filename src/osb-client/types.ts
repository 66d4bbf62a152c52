// The shapes of the Open Service Broker API v2.17 as a client sees them: what a
// broker sends back, and what a platform sends. Field names are the spec's (snake
// case on the wire); nothing here imports from the rest of Berth.

export type JsonObject = { [key: string]: unknown };

export interface MaintenanceInfo {
  version: string;
  description?: string;
}

export interface CatalogPlan {
  id: string;
  name: string;
  description: string;
  metadata?: JsonObject;
  free?: boolean;
  bindable?: boolean;
  plan_updateable?: boolean;
  binding_rotatable?: boolean;
  maximum_polling_duration?: number;
  maintenance_info?: MaintenanceInfo;
  schemas?: {
    service_instance?: { create?: { parameters?: JsonObject }; update?: { parameters?: JsonObject } };
    service_binding?: { create?: { parameters?: JsonObject; response?: JsonObject } };
  };
}

export interface CatalogService {
  id: string;
  name: string;
  description: string;
  bindable: boolean;
  tags?: string[];
  requires?: string[];
  metadata?: JsonObject;
  instances_retrievable?: boolean;
  bindings_retrievable?: boolean;
  allow_context_updates?: boolean;
  plan_updateable?: boolean;
  dashboard_client?: JsonObject;
  plans: CatalogPlan[];
}

export interface Catalog {
  services: CatalogService[];
}

/** Who asked the platform for the operation: `X-Broker-API-Originating-Identity: <platform> <base64 JSON>`. */
export interface OriginatingIdentity {
  platform: string;
  value: JsonObject;
}

export interface ProvisionRequest {
  service_id: string;
  plan_id: string;
  context?: JsonObject;
  parameters?: JsonObject;
  maintenance_info?: MaintenanceInfo;
  /** Deprecated in the spec, still sent by some platforms. */
  organization_guid?: string;
  space_guid?: string;
}

export interface UpdateRequest {
  service_id: string;
  plan_id?: string;
  context?: JsonObject;
  parameters?: JsonObject;
  maintenance_info?: MaintenanceInfo;
  previous_values?: { service_id?: string; plan_id?: string; maintenance_info?: MaintenanceInfo; organization_id?: string; space_id?: string };
}

export interface BindRequest {
  service_id: string;
  plan_id: string;
  context?: JsonObject;
  parameters?: JsonObject;
  bind_resource?: JsonObject;
  app_guid?: string;
  predecessor_binding_id?: string;
}

/** Where the instance or binding is identified by the catalog ids (DELETE, and optional on GETs). */
export interface CatalogIds {
  service_id: string;
  plan_id: string;
}

/** Options every call takes. */
export interface CallOptions {
  /** Overrides the client's originating identity for this call (`null`: send none). */
  originatingIdentity?: OriginatingIdentity | null;
  /** Sent as X-Broker-API-Request-Identity; a fresh UUID when absent. */
  requestIdentity?: string;
  /** Overrides the client's timeout for this call. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Extra request headers for this call (e.g. a platform-specific signal to the broker); undefined leaves a header out. */
  headers?: Record<string, string | undefined>;
  /** Called with the answer's headers (lower-case names), whatever its status. */
  onHeaders?: (headers: Record<string, string | string[] | undefined>) => void;
}

/** Options of the calls that may answer asynchronously. */
export interface AsyncCallOptions extends CallOptions {
  /** `accepts_incomplete=true` (the default) allows a 202; `false` asks for a synchronous answer. */
  acceptsIncomplete?: boolean;
}

/** What every successful answer carries beside its body. */
export interface Answer {
  /** The HTTP status the broker answered with (200, 201, 202 or 410). */
  status: number;
  /** Retry-After in seconds, when the broker sent one (delta-seconds or an HTTP date, turned into seconds). */
  retryAfterSeconds: number | undefined;
}

/** Instance metadata (OSB 2.16+). */
export interface InstanceMetadata {
  labels?: JsonObject;
  attributes?: JsonObject;
}

/** What a provision and an update both answer, besides their outcome. */
export interface InstanceChangeResult extends Answer {
  dashboard_url?: string;
  operation?: string;
  metadata?: InstanceMetadata;
}

export interface ProvisionResult extends InstanceChangeResult {
  /** `created` (201), `exists` (200: identical instance already there), `accepted` (202: poll last_operation). */
  outcome: 'created' | 'exists' | 'accepted';
}

export interface UpdateResult extends InstanceChangeResult {
  /** `updated` (200) or `accepted` (202). */
  outcome: 'updated' | 'accepted';
}

export interface DeleteResult extends Answer {
  /** `deleted` (200), `accepted` (202) or `gone` (410: there was nothing to delete). */
  outcome: 'deleted' | 'accepted' | 'gone';
  operation?: string;
}

export interface InstanceResource extends Answer {
  service_id?: string;
  plan_id?: string;
  dashboard_url?: string;
  parameters?: JsonObject;
  maintenance_info?: MaintenanceInfo;
  metadata?: InstanceMetadata;
}

export interface BindResult extends Answer {
  /** `created` (201), `exists` (200), `accepted` (202). */
  outcome: 'created' | 'exists' | 'accepted';
  credentials?: JsonObject;
  syslog_drain_url?: string;
  route_service_url?: string;
  volume_mounts?: JsonObject[];
  endpoints?: JsonObject[];
  operation?: string;
  metadata?: { expires_at?: string; renew_before?: string };
}

export interface BindingResource extends Answer {
  credentials?: JsonObject;
  syslog_drain_url?: string;
  route_service_url?: string;
  volume_mounts?: JsonObject[];
  endpoints?: JsonObject[];
  parameters?: JsonObject;
  metadata?: { expires_at?: string; renew_before?: string };
}

export type OperationState = 'in progress' | 'succeeded' | 'failed';

export interface LastOperation extends Answer {
  /**
   * The operation's state; `gone` when the broker answered 410 Gone (for a
   * deprovision or unbind poll that means it succeeded).
   */
  state: OperationState | 'gone';
  description?: string;
  instance_usable?: boolean;
  update_repeatable?: boolean;
}

export interface LastOperationQuery {
  operation?: string;
  service_id?: string;
  plan_id?: string;
}

// ---- Berth's own endpoint (not OSB): GET /berth/v1/service_instances/:id/resources ----

/** One thing a broker's provisioner made for an instance (a database, a role, a Helm release, a Pod…). */
export interface ProvisionedResource {
  kind: string;
  name: string;
  /** ready | not-ready | failed | missing | unknown */
  state: string;
  message?: string;
  /** The binding this belongs to (its login), when it belongs to one. */
  binding_id?: string;
  children?: ProvisionedResource[];
}

export interface ProvisionedResources {
  instance_id: string;
  /** The provisioner kind (e.g. postgres, helm, user-provided). */
  kind: string;
  instance_state: string;
  /** When the broker looked (ISO 8601). */
  taken_at: string;
  binding_ids: string[];
  resources: ProvisionedResource[];
  /** Why the broker could not look (a server that did not answer). */
  problem?: string;
}
