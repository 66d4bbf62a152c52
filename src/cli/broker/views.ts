// How instances, bindings, offerings and plans look in tables (kubectl's column names) and
// under -o name; -o json/yaml print the objects themselves.
import type { CatalogPlan, CatalogService } from '../../osb-client/index.ts';
import { age, type Column, type View } from '../output.ts';

type Obj = Record<string, any>;

const REASONS: Record<string, string> = {
  provision: 'Provisioning',
  update: 'Updating',
  upgrade: 'Upgrading',
  deprovision: 'Deprovisioning',
  bind: 'Binding',
  unbind: 'Unbinding',
};
const FAILED: Record<string, string> = {
  provision: 'ProvisionFailed',
  update: 'UpdateFailed',
  upgrade: 'UpgradeFailed',
  deprovision: 'DeprovisionFailed',
  bind: 'BindFailed',
  unbind: 'UnbindFailed',
};

/** READY and REASON from an object's last operation, as kubectl shows a Ready condition. */
export function readiness(o: Obj): { ready: string; reason: string; message: string } {
  const op = o.last_operation as Obj | undefined;
  const message = op?.description ?? '';
  if (o.exists === false) return { ready: 'False', reason: 'NotFound', message: o.message ?? 'the broker does not know it' };
  if (!op || op.state === 'succeeded' || op.state === undefined) {
    return op?.type === 'deprovision' || op?.type === 'unbind' ? { ready: 'False', reason: 'Deleted', message } : { ready: 'True', reason: '', message };
  }
  if (op.state === 'in progress') return { ready: 'False', reason: REASONS[op.type] ?? 'InProgress', message };
  if (op.state === 'gone') return { ready: 'False', reason: 'NotFound', message };
  return { ready: 'False', reason: FAILED[op.type] ?? 'Failed', message };
}

/** The columns an instance and a binding share, around those of their own and their broker-side id. */
function readinessColumns(own: Column<Obj>[], id: Column<Obj>): Column<Obj>[] {
  return [
    { header: 'NAME', value: (o) => o.name },
    ...own,
    { header: 'READY', value: (o) => readiness(o).ready },
    { header: 'REASON', value: (o) => readiness(o).reason },
    { header: 'AGE', value: (o) => age(o.created_at) },
    { ...id, wide: true },
    { header: 'MESSAGE', value: (o) => readiness(o).message, wide: true },
  ];
}

export const instanceView: View<Obj> = {
  name: (o) => `instance/${o.name}`,
  full: (o) => o,
  columns: readinessColumns(
    [
      { header: 'OFFERING', value: (o) => o.offering ?? o.service_id ?? '' },
      { header: 'PLAN', value: (o) => o.plan ?? o.plan_id ?? '' },
    ],
    { header: 'INSTANCE-ID', value: (o) => o.instance_id },
  ),
};

export const bindingView: View<Obj> = {
  name: (o) => `binding/${o.name}`,
  full: (o) => o,
  columns: readinessColumns([{ header: 'INSTANCE', value: (o) => o.instance }], { header: 'BINDING-ID', value: (o) => o.binding_id }),
};

export const offeringView: View<CatalogService> = {
  name: (s) => `offering/${s.name}`,
  full: (s) => s,
  columns: [
    { header: 'NAME', value: (s) => s.name },
    { header: 'PLANS', value: (s) => s.plans.map((p) => p.name).join(', ') },
    { header: 'BINDABLE', value: (s) => String(s.bindable) },
    { header: 'DESCRIPTION', value: (s) => s.description },
    { header: 'ID', value: (s) => s.id, wide: true },
  ],
};

export interface PlanRow {
  service: CatalogService;
  plan: CatalogPlan;
}

export const planView: View<PlanRow> = {
  name: (r) => `plan/${r.service.name}/${r.plan.name}`,
  full: (r) => ({ offering: r.service.name, service_id: r.service.id, ...r.plan }),
  columns: [
    { header: 'OFFERING', value: (r) => r.service.name },
    { header: 'PLAN', value: (r) => r.plan.name },
    { header: 'FREE', value: (r) => (r.plan.free === false ? 'paid' : 'free') },
    { header: 'DESCRIPTION', value: (r) => r.plan.description },
    { header: 'PLAN-ID', value: (r) => r.plan.id, wide: true },
    { header: 'MAINTENANCE', value: (r) => r.plan.maintenance_info?.version ?? '', wide: true },
  ],
};
