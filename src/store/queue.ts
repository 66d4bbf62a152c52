// The operations table as a job queue: workers claim runnable operations
// under a lease, renew it while they work, write checkpoints and outcomes only
// while they still hold it (fencing), and hand it back when they stop. See
// docs/operations.md, "Leases", for why each step is as it is.
import type { Knex } from 'knex';
import { OperationRows, type OperationRecord, type Outcome } from './operations.ts';
import type { Db } from './table.ts';

export class OperationQueue extends OperationRows {
  /**
   * Claims the next runnable operation for `owner`: unfinished, due, with no
   * live lease, and with no live lease on any other operation of the same
   * instance (at most one operation per instance runs anywhere). Pass `onlyId`
   * to claim one particular operation; `exclude` lists operations the caller
   * must not claim (its own executions still unwinding).
   */
  async claim(owner: string, leaseMs: number, onlyId?: string, exclude: string[] = []): Promise<OperationRecord | undefined> {
    // Most claims find nothing (a worker woken by an end signal, or looking again after its run): one
    // plain read says so, instead of a transaction's three round trips. It does not skip locked rows, so
    // it may see a candidate the transaction below then skips; it never hides one the transaction would claim.
    if (!(await this.#runnable(this.db, onlyId, exclude).first('o.id'))) return undefined;
    return (this.db as Knex).transaction(async (trx) => {
      const q = this.#runnable(trx, onlyId, exclude).select('o.id', 'o.instance_id').orderBy('o.created_at').limit(8).forUpdate().skipLocked();
      const candidates = (await q) as Array<{ id: string; instance_id: string }>;
      for (const c of candidates) {
        const { rows } = await trx.raw(`SELECT pg_try_advisory_xact_lock(hashtext('berth:instance:' || ?)) AS ok`, [c.instance_id]);
        if (!rows[0].ok) continue;
        // Checked again under the instance lock, in the UPDATE's own snapshot (taken after the lock):
        // no live lease on another operation of the instance, and no older unfinished one, which goes first.
        const { rows: claimed } = await trx.raw(
          `UPDATE operations o
              SET lease_owner = ?,
                  -- never past a deadline still ahead (one already passed: the worker fails it at once)
                  lease_expires_at = CASE WHEN deadline_at > now() THEN LEAST(now() + (? * interval '1 millisecond'), deadline_at)
                                          ELSE now() + (? * interval '1 millisecond') END,
                  lease_renewed_at = now(), attempts = attempts + 1, updated_at = now()
            WHERE o.id = ?
              AND NOT EXISTS (
                SELECT 1 FROM operations p
                 WHERE p.instance_id = o.instance_id AND p.id <> o.id
                   AND (p.lease_expires_at > now() OR (p.finished_at IS NULL AND p.created_at < o.created_at)))
            RETURNING *`,
          [owner, leaseMs, leaseMs, c.id],
        );
        if (claimed.length === 1) return this.row(claimed[0]);
      }
      return undefined;
    });
  }

  /** Unfinished, due, not leased, not excluded, and first in line on an instance that is not busy. */
  #runnable(db: Db, onlyId: string | undefined, exclude: string[]) {
    const q = db('operations as o')
      .whereNull('o.finished_at')
      .where('o.next_attempt_at', '<=', db.fn.now())
      .where((w) => w.whereNull('o.lease_expires_at').orWhere('o.lease_expires_at', '<', db.fn.now()));
    if (onlyId) q.where('o.id', onlyId);
    if (exclude.length > 0) q.whereNotIn('o.id', exclude);
    // Skip, without locking, operations whose instance is busy or has older work queued.
    q.whereNotExists((sub) =>
      sub
        .from('operations as p')
        .whereRaw('p.instance_id = o.instance_id')
        .whereRaw('p.id <> o.id')
        .where((w) => w.where('p.lease_expires_at', '>', db.fn.now()).orWhere((x) => x.whereNull('p.finished_at').whereRaw('p.created_at < o.created_at'))),
    );
    return q;
  }

  /** Extends the lease; false when the lease was lost or the operation was ended by someone else. */
  async renew(id: string, owner: string, leaseMs: number): Promise<boolean> {
    const n = await this.db('operations')
      .where({ id, lease_owner: owner })
      .whereNull('finished_at')
      .update({
        // Never renewed past the operation's deadline, in the database's clock.
        lease_expires_at: this.db.raw(`LEAST(now() + (? * interval '1 millisecond'), COALESCE(deadline_at, 'infinity'::timestamptz))`, [leaseMs]),
        lease_renewed_at: this.db.fn.now(),
      });
    return n === 1;
  }

  /**
   * Whether `owner` still holds the unfinished operation. Locks the row (shared)
   * until the transaction ends, so a takeover or a halt waits for the caller's write.
   */
  async holds(id: string, owner: string): Promise<boolean> {
    const r = await this.db('operations').where({ id, lease_owner: owner }).whereNull('finished_at').forShare().first('id');
    return r !== undefined;
  }

  async release(id: string, owner: string): Promise<void> {
    await this.db('operations').where({ id, lease_owner: owner }).update({ lease_owner: null, lease_expires_at: null });
  }

  async setDescription(id: string, owner: string, description: string): Promise<void> {
    await this.db('operations').where({ id, lease_owner: owner }).whereNull('finished_at').update({ description, updated_at: this.db.fn.now() });
  }

  async scheduleRetry(id: string, owner: string, delayMs: number, description: string): Promise<boolean> {
    const n = await this.db('operations')
      .where({ id, lease_owner: owner })
      .whereNull('finished_at')
      .update({
        description,
        lease_owner: null,
        lease_expires_at: null,
        next_attempt_at: this.db.raw(`now() + (? * interval '1 millisecond')`, [delayMs]),
        updated_at: this.db.fn.now(),
      });
    return n === 1;
  }

  /**
   * Ends an operation. With `owner`, only while that owner holds it (a worker
   * finishing its own work); without, unconditionally (a request halting it).
   * Returns false when it had already ended or the lease was lost.
   */
  async finish(id: string, outcome: Outcome, owner: string | undefined): Promise<boolean> {
    const q = this.db('operations').where({ id }).whereNull('finished_at');
    if (owner !== undefined) q.where({ lease_owner: owner });
    const cols: Record<string, unknown> = {
      state: outcome.state,
      description: outcome.description,
      instance_usable: outcome.instanceUsable ?? null,
      update_repeatable: outcome.updateRepeatable ?? null,
      failure_cause: outcome.failureCause ?? null,
      finished_at: this.db.fn.now(),
      updated_at: this.db.fn.now(),
    };
    if (owner !== undefined) {
      cols.lease_owner = null;
      cols.lease_expires_at = null;
    }
    const n = await q.update(cols);
    return n === 1;
  }
}
