// The stores, and transactions over them: `stores.transaction(tx => …)` hands
// the callback the same stores bound to one transaction, so a write meant to be
// part of it cannot go to the pool by mistake (Unleash's unit of work).
import type { Knex } from 'knex';
import type { SecretBox } from '../secret-box.ts';
import { AuditStore } from './audit.ts';
import { BindingStore } from './bindings.ts';
import { InstanceStore } from './instances.ts';
import { OperationStore } from './operations.ts';
import { OperationQueue } from './queue.ts';
import type { Db } from './table.ts';

/** The stores on one connection: the pool, or a transaction. */
export interface TableStores {
  instances: InstanceStore;
  bindings: BindingStore;
  operations: OperationStore;
  /** The worker's side of the operations table. */
  queue: OperationQueue;
  audit: AuditStore;
}

export interface Stores extends TableStores {
  /** For tests and migrations that read rows directly. */
  knex: Knex;
  /** Runs `work` in one transaction, with the stores bound to it. */
  transaction<T>(work: (tx: TableStores) => Promise<T>): Promise<T>;
}

function storesOn(db: Db, box: SecretBox, leaseMs: number): TableStores {
  return {
    instances: new InstanceStore(db, box),
    bindings: new BindingStore(db, box),
    operations: new OperationStore(db, box, leaseMs),
    queue: new OperationQueue(db, box, leaseMs),
    audit: new AuditStore(db),
  };
}

/** `leaseMs`: the configured lease (BERTH_LEASE_SECONDS), by which a stopped worker is recognised. */
export function createStores(knex: Knex, box: SecretBox, leaseMs: number): Stores {
  return {
    knex,
    ...storesOn(knex, box, leaseMs),
    transaction: (work) => knex.transaction((trx) => work(storesOn(trx, box, leaseMs))),
  };
}
