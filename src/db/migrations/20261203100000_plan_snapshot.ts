import type { Knex } from 'knex';
import type { MigrationContext } from './index.ts';
import { snapshotOf } from '../../catalog/plan-snapshot.ts';

// Operations and deletes must not depend on the catalog of the replica that runs
// them: each instance and operation records the plan it was accepted with
// (src/catalog/plan-snapshot.ts). `lease_renewed_at` lets last_operation tell a
// worker that stopped renewing from one that is working.
export async function up(knex: Knex, context: MigrationContext = {}): Promise<void> {
  await knex.schema.alterTable('instances', (t) => {
    t.jsonb('plan_snapshot');
  });
  await knex.schema.alterTable('operations', (t) => {
    t.jsonb('plan_snapshot');
    t.timestamp('lease_renewed_at', { useTz: true });
  });

  // Backfill from the catalog of the process that migrates, where it has the plan. Rows it cannot
  // fill stay NULL: requests and workers then fall back to their own catalog, as before this migration,
  // and a worker whose catalog lacks the plan retries, so a replica that has it can run the operation.
  const catalog = context.catalog;
  if (!catalog) return;
  const planIds = (await knex('instances').distinct('plan_id').whereNot({ state: 'deleted' }).whereNull('plan_snapshot')) as Array<{ plan_id: string }>;
  for (const { plan_id: planId } of planIds) {
    const plan = catalog.plan(planId);
    if (!plan) continue;
    await knex('instances').where({ plan_id: planId }).whereNot({ state: 'deleted' }).whereNull('plan_snapshot').update({ plan_snapshot: JSON.stringify(snapshotOf(plan)) });
  }
  // Every unfinished operation but an update runs with its instance's plan; an update's target plan
  // is only in its encrypted request, so a queued update keeps the fallback.
  await knex.raw(
    `UPDATE operations o SET plan_snapshot = i.plan_snapshot
       FROM instances i
      WHERE o.instance_id = i.id AND o.finished_at IS NULL AND o.kind <> 'update'
        AND o.plan_snapshot IS NULL AND i.plan_snapshot IS NOT NULL`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('operations', (t) => {
    t.dropColumn('lease_renewed_at');
    t.dropColumn('plan_snapshot');
  });
  await knex.schema.alterTable('instances', (t) => {
    t.dropColumn('plan_snapshot');
  });
}
