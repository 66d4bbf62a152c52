// Which OSB API minor version (2.x) each feature or field needs, in one table,
// so that what a caller of a given version sees can be audited in one place.
// Requests below MIN_MINOR or above MAX_MINOR are refused (412).

export const MIN_MINOR = 13;
export const MAX_MINOR = 17;

/** Features: a request of an older version is refused (412) or the field is left out of the answer. */
export const since = {
  /** GET an instance or a binding. */
  fetch: 14,
  /** `dashboard_url` in an update's answer. */
  updatedDashboardUrl: 14,
  /** Asynchronous bind/unbind and GET a binding's last_operation. */
  asyncBindings: 14,
  /** Binding `endpoints` in bind and fetch answers. */
  bindingEndpoints: 15,
  /** `maintenance_info` in a fetched instance. */
  fetchedMaintenanceInfo: 15,
  /**
   * Instance `metadata` in provision and update answers. OSB added it in 2.16, but Cloud Foundry sends
   * 2.15 and stores and shows it (receivers ignore fields they do not know, per the spec).
   */
  instanceMetadata: 15,
  /** Binding `metadata`. */
  metadata: 16,
  /** Instance `metadata` in a fetched instance. */
  fetchedInstanceMetadata: 17,
  /** `predecessor_binding_id` (binding rotation). */
  bindingRotation: 17,
} as const;

/** Catalog fields newer than a caller's version are left out (older platforms may validate strictly). */
export const catalogPlanFieldSince: Record<string, number> = {
  plan_updateable: 15,
  maximum_polling_duration: 15,
  maintenance_info: 15,
  binding_rotatable: 17,
};
export const catalogServiceFieldSince: Record<string, number> = { allow_context_updates: 16 };
