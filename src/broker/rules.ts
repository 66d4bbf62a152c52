// The OSB rules a request is checked against before anything is stored: the
// catalog (service, plan, bindable, parameter schemas), what the plan's
// provisioner refuses, and whether the platform can take an asynchronous
// answer. Pure: no database, no HTTP (test/unit/broker/rules.test.ts).
import type { Catalog, CatalogPlan, CatalogService } from '../catalog/catalog.ts';
import { PlanSnapshots, snapshotOf, UnusableSnapshot, type PlanSnapshot } from '../catalog/plan-snapshot.ts';
import { standingOf } from '../catalog/maintenance.ts';
import { describeErrors } from '../catalog/schemas.ts';
import { errors } from '../osb/errors.ts';
import type { JsonObject, OperationKind } from '../osb/model.ts';
import { since } from '../osb/versions.ts';
import type { ProvisionerRegistry } from '../provisioners/provisioner.ts';
import type { InstanceRecord } from '../store/instances.ts';
import type { ClusterCheck } from '../kubernetes/clusters.ts';

type RecordedPlan = Pick<InstanceRecord, 'planId' | 'planSnapshot'>;

export class Rules {
  readonly catalog: Catalog;
  readonly #provisioners: ProvisionerRegistry;
  readonly #snapshots: PlanSnapshots;
  readonly #clusters: ClusterCheck | undefined;

  /** `clusters`: with several Kubernetes clusters (BERTH_CLUSTERS_FILE), which context.clusterid a request may name. */
  constructor(catalog: Catalog, provisioners: ProvisionerRegistry, clusters?: ClusterCheck) {
    this.catalog = catalog;
    this.#provisioners = provisioners;
    this.#clusters = clusters;
    this.#snapshots = new PlanSnapshots(provisioners.parseConfig);
  }

  service(serviceId: string): CatalogService {
    const service = this.catalog.service(serviceId);
    if (!service) throw errors.badRequest(`service_id "${serviceId}" is not in this broker's catalog.`);
    return service;
  }

  plan(service: CatalogService, planId: string): CatalogPlan {
    const plan = this.catalog.plan(planId);
    if (!plan) throw errors.badRequest(`plan_id "${planId}" is not in this broker's catalog.`);
    if (plan.service !== service) throw errors.badRequest(`plan_id "${planId}" does not belong to service_id "${service.id}".`);
    return plan;
  }

  /** Deletes accept a plan_id the catalog no longer has (the platform may have older instances), not one of another service. */
  assertPlanBelongsTo(serviceId: string, planId: string): void {
    const plan = this.catalog.plan(planId);
    if (plan && plan.service.id !== serviceId) throw errors.badRequest(`plan_id "${planId}" does not belong to service_id "${serviceId}".`);
  }

  /**
   * Deletes and fetches of existing objects accept a service the catalog no longer has, when it is the
   * object's own: a retired service's instances must still be removable.
   */
  assertServiceOfExisting(serviceId: string, instance: InstanceRecord | undefined): void {
    if (this.catalog.service(serviceId) || instance?.serviceId === serviceId) return;
    this.service(serviceId);
  }

  /**
   * The plan an existing instance runs on, as recorded when it was provisioned or last updated, so that
   * what happens to it does not depend on this replica's catalog. Rows from before that record fall back
   * to the catalog.
   */
  instancePlan(instance: RecordedPlan): CatalogPlan | undefined {
    if (instance.planSnapshot) {
      try {
        return this.#snapshots.plan(instance.planSnapshot);
      } catch (err) {
        // A kind this process does not load: answer from the catalog if it can; the recorded plan still goes
        // with the operation, for a replica that can run it.
        if (!(err instanceof UnusableSnapshot)) throw err;
      }
    }
    return this.catalog.plan(instance.planId);
  }

  instancePlanOrRefuse(instance: InstanceRecord): CatalogPlan {
    const plan = this.instancePlan(instance);
    if (plan) return plan;
    throw errors.unprocessable(
      `The plan ${instance.planId} of service instance ${instance.id} is not in this broker's catalog, and Berth has no record of its settings from before it was retired; put the plan back in the catalog to change or remove the instance.`,
    );
  }

  /** What an operation on an existing instance records as its plan: the instance's own. */
  snapshotOfInstance(instance: InstanceRecord, plan: CatalogPlan): PlanSnapshot {
    return instance.planSnapshot ?? snapshotOf(plan);
  }

  /** Whether GET may echo the parameters: not when the plan's provisioner treats them as secret, nor when the plan is unknown. */
  parametersShown(instance: RecordedPlan): boolean {
    const plan = this.instancePlan(instance);
    return plan !== undefined && !this.#provisioners.forPlan(plan).parametersAreSecret;
  }

  /** Whether the operation runs asynchronously for the plan; refuses it when the platform cannot take that. */
  asyncFor(plan: CatalogPlan, kind: OperationKind, acceptsIncomplete: boolean, apiMinor: number): boolean {
    const async = this.#provisioners.forPlan(plan).isAsync(kind, plan);
    if (async && !acceptsIncomplete) throw errors.asyncRequired();
    // Older platforms cannot poll asynchronous bindings.
    if (async && (kind === 'bind' || kind === 'unbind') && apiMinor < since.asyncBindings) {
      throw errors.versionTooOld('This plan binds asynchronously, which', since.asyncBindings);
    }
    return async;
  }

  validate(validate: CatalogPlan['schemas']['instanceCreate'], parameters: JsonObject | undefined): void {
    if (!validate) return;
    if (!validate(parameters ?? {})) throw errors.badRequest(`Invalid parameters: ${describeErrors(validate.errors)}`);
  }

  /** What the plan's provisioner can never use, refused before anything is stored (a failed operation would be the broker's 500). */
  checkParameters(plan: CatalogPlan, parameters: JsonObject): void {
    const refusal = this.#provisioners.forPlan(plan).checkParameters?.(plan, parameters);
    if (refusal) throw errors.badRequest(refusal);
  }

  /** An update the provisioner can never perform (also without a plan change: the catalog's version of the plan may differ). */
  checkUpdate(from: CatalogPlan, to: CatalogPlan): void {
    const refusal = this.#provisioners.forPlan(from).checkUpdate?.(from, to);
    if (refusal) throw errors.unprocessable(refusal, { updateRepeatable: false });
  }

  checkBind(plan: CatalogPlan, instanceParameters: JsonObject, context: JsonObject | undefined): void {
    const refusal = this.#provisioners.forPlan(plan).checkBind?.(plan, instanceParameters, context);
    if (refusal) throw errors.badRequest(refusal);
  }

  /** A context naming a cluster Berth does not serve (or none, when the request needs one and there is no default). */
  checkCluster(kind: 'provision' | 'update' | 'bind', plan: CatalogPlan, context: JsonObject | undefined): void {
    const refusal = this.#clusters?.refusal(kind, plan, context);
    if (refusal) throw errors.badRequest(refusal);
  }

  maintenanceVersion(plan: CatalogPlan, requested: string | undefined): void {
    if (requested !== undefined && requested !== plan.maintenanceVersion) throw errors.maintenanceInfoConflict(plan.maintenanceVersion, requested);
  }

  /** An update that sends the catalog's maintenance_info must not move an instance to a lower version than it is at. */
  noDowngrade(instance: Pick<InstanceRecord, 'id' | 'maintenanceVersion'>, plan: CatalogPlan, requested: string | undefined): void {
    if (requested === undefined || instance.maintenanceVersion === undefined) return;
    if (standingOf(instance.maintenanceVersion, plan.maintenanceVersion) === 'ahead') {
      throw errors.maintenanceDowngrade(instance.id, instance.maintenanceVersion, plan.maintenanceVersion!);
    }
  }
}

/** When an operation on the plan must have finished (maximum_polling_duration). */
export function deadlineFor(plan: CatalogPlan): Date | undefined {
  const s = plan.maximumPollingDurationSeconds;
  return s ? new Date(Date.now() + s * 1000) : undefined;
}
