// The audit trail: who asked for what (originating identity, request
// identity) and how it ended, one row per accepted request and per outcome.
import type { JsonObject } from '../osb/model.ts';
import type { Db } from './table.ts';
import { opt } from './table.ts';

export interface AuditEvent {
  operationId: string | undefined;
  instanceId: string;
  bindingId: string | undefined;
  action: string;
  platform: string | undefined;
  originatingIdentity: JsonObject | undefined;
  requestIdentity: string | undefined;
  outcome: string | undefined;
  /** Admin actions (src/admin/): the admin token's name, and the reason given. */
  actor?: string | undefined;
  reason?: string | undefined;
}

export class AuditStore {
  readonly #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async record(e: AuditEvent): Promise<void> {
    await this.#db('audit_events').insert({
      operation_id: e.operationId ?? null,
      instance_id: e.instanceId,
      binding_id: e.bindingId ?? null,
      action: e.action,
      platform: e.platform ?? null,
      originating_identity: e.originatingIdentity ?? null,
      request_identity: e.requestIdentity ?? null,
      outcome: e.outcome ?? null,
      actor: e.actor ?? null,
      reason: e.reason ?? null,
    });
  }

  async forInstance(instanceId: string): Promise<AuditEvent[]> {
    const rows = await this.#db('audit_events').where({ instance_id: instanceId }).orderBy('id');
    return rows.map((r: any) => ({
      operationId: opt(r.operation_id),
      instanceId: r.instance_id,
      bindingId: opt(r.binding_id),
      action: r.action,
      platform: opt(r.platform),
      originatingIdentity: opt(r.originating_identity),
      requestIdentity: opt(r.request_identity),
      outcome: opt(r.outcome),
      actor: opt(r.actor ?? null),
      reason: opt(r.reason ?? null),
    }));
  }
}
