import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('instances', (t) => {
    t.text('id').primary();
    t.text('service_id').notNullable();
    t.text('plan_id').notNullable();
    // creating | ready | create_failed | updating | deleting | deleted
    t.text('state').notNullable();
    t.text('parameters_enc').notNullable();
    t.jsonb('context');
    t.text('organization_guid');
    t.text('space_guid');
    t.text('maintenance_version');
    t.text('dashboard_url');
    t.jsonb('metadata');
    // Provisioner checkpoints (generated passwords, release names): encrypted, survives crashes.
    t.text('provisioner_state_enc');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('bindings', (t) => {
    t.text('instance_id').notNullable().references('id').inTable('instances').onDelete('CASCADE');
    t.text('id').notNullable();
    t.text('service_id').notNullable();
    t.text('plan_id').notNullable();
    // creating | ready | create_failed | deleting | deleted
    t.text('state').notNullable();
    t.text('parameters_enc').notNullable();
    t.jsonb('context');
    t.jsonb('bind_resource');
    t.text('app_guid');
    t.text('predecessor_binding_id');
    t.text('credentials_enc');
    t.jsonb('endpoints');
    t.jsonb('metadata');
    t.text('provisioner_state_enc');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['instance_id', 'id']);
  });

  await knex.schema.createTable('operations', (t) => {
    t.text('id').primary();
    t.text('instance_id').notNullable();
    t.text('binding_id');
    // provision | update | deprovision | bind | unbind
    t.text('kind').notNullable();
    // in progress | succeeded | failed
    t.text('state').notNullable();
    t.text('description').notNullable();
    t.boolean('instance_usable');
    t.boolean('update_repeatable');
    // What the request asked for (new plan, parameters...), encrypted because parameters may be secret.
    t.text('request_enc').notNullable();
    t.text('lease_owner');
    t.timestamp('lease_expires_at', { useTz: true });
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('next_attempt_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('deadline_at', { useTz: true });
    t.text('request_identity');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('finished_at', { useTz: true });
    t.index(['instance_id', 'binding_id', 'created_at']);
  });
  // The database, not the application, guarantees one unfinished operation per instance
  // (instance-level kinds) and per binding.
  await knex.raw(
    `CREATE UNIQUE INDEX operations_one_active_per_instance ON operations (instance_id)
       WHERE finished_at IS NULL AND binding_id IS NULL`,
  );
  await knex.raw(
    `CREATE UNIQUE INDEX operations_one_active_per_binding ON operations (instance_id, binding_id)
       WHERE finished_at IS NULL AND binding_id IS NOT NULL`,
  );
  await knex.raw(
    `CREATE INDEX operations_claimable ON operations (next_attempt_at) WHERE finished_at IS NULL`,
  );

  await knex.schema.createTable('audit_events', (t) => {
    t.bigIncrements('id');
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('operation_id');
    t.text('instance_id').notNullable();
    t.text('binding_id');
    t.text('action').notNullable();
    t.text('platform');
    t.jsonb('originating_identity');
    t.text('request_identity');
    t.text('outcome');
    t.index(['instance_id', 'at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('audit_events');
  await knex.schema.dropTableIfExists('operations');
  await knex.schema.dropTableIfExists('bindings');
  await knex.schema.dropTableIfExists('instances');
}
