// Broker mode's names. OSB knows instances and bindings only by ids the platform picks, and has
// no way to list them; a developer wants `berth deprovision orders-db`. So:
//  - ids are derived from names: UUIDv5 of (broker URL, kind, name). The same name on the same
//    broker is always the same instance, from any machine or CI job, so a repeated
//    `berth provision orders-db` is recognised by the broker itself (200, "already exists") even
//    when this machine never saw the first one, and a lost state file loses nothing the broker
//    cannot answer again.
//  - a state file remembers what only this machine knows: which names exist (for `get`), the
//    offering and plan ids every DELETE and last_operation needs (not every broker lets them be
//    fetched), the operation in flight after `--async`, and when each was created.
// The file is $XDG_CONFIG_HOME/berth/broker-state.json (~/.config/… without XDG_CONFIG_HOME),
// one section per broker URL, written whole to a temporary file and renamed into place.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export interface OperationEntry {
  type: 'provision' | 'update' | 'upgrade' | 'deprovision' | 'bind' | 'unbind';
  /** The broker's operation id, for last_operation. */
  id?: string;
  started_at: string;
  state?: 'in progress' | 'succeeded' | 'failed';
  description?: string;
  finished_at?: string;
}

export interface InstanceEntry {
  id: string;
  service_id: string;
  plan_id: string;
  offering: string;
  plan: string;
  created_at: string;
  /**
   * A digest of each parameter value given at provision (by key path), never the value: brokers need not return
   * parameters, and without them a conflicting repeat could not name the key that differs.
   */
  parameter_digests?: Record<string, string>;
  last_operation?: OperationEntry;
}

export interface BindingEntry {
  id: string;
  instance: string;
  instance_id: string;
  service_id: string;
  plan_id: string;
  created_at: string;
  last_operation?: OperationEntry;
}

interface BrokerSection {
  instances: Record<string, InstanceEntry>;
  bindings: Record<string, BindingEntry>;
}

interface StateFile {
  version: 1;
  brokers: Record<string, BrokerSection>;
}

// A fixed namespace for berth's name-derived ids (RFC 9562 §5.5).
const NAMESPACE = Buffer.from('5f0c7a52e0e94c0c9c1b2f8d4a7e6b31', 'hex');

export function uuidv5(name: string): string {
  const hash = createHash('sha1').update(NAMESPACE).update(name).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const h = hash.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** `{a: {b: 1}, c: "x"}` → `{ "a.b": digest(1), "c": digest("x") }`. */
export function parameterDigests(parameters: unknown, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (parameters && typeof parameters === 'object' && !Array.isArray(parameters) && Object.keys(parameters).length > 0) {
    for (const [k, v] of Object.entries(parameters)) parameterDigests(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out[prefix] = createHash('sha256').update(JSON.stringify(parameters)).digest('hex').slice(0, 32);
  }
  return out;
}

export function stateFilePath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'berth', 'broker-state.json');
}

export class BrokerState {
  readonly file: string;
  readonly broker: string;

  constructor(broker: string, file = stateFilePath()) {
    this.broker = broker;
    this.file = file;
  }

  instanceId(name: string): string {
    return uuidv5(`${this.broker}\ninstance\n${name}`);
  }

  bindingId(name: string): string {
    return uuidv5(`${this.broker}\nbinding\n${name}`);
  }

  #read(): StateFile {
    try {
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as StateFile;
      if (parsed?.version === 1 && typeof parsed.brokers === 'object') return parsed;
    } catch {
      // absent or unreadable: start afresh (ids are derived from names, so nothing the broker knows is lost)
    }
    return { version: 1, brokers: {} };
  }

  section(): BrokerSection {
    return this.#read().brokers[this.broker] ?? { instances: {}, bindings: {} };
  }

  /** Re-reads the file and applies `change` to this broker's section, so a concurrent berth's entries survive. */
  update(change: (section: BrokerSection) => void): void {
    const file = this.#read();
    const section = (file.brokers[this.broker] ??= { instances: {}, bindings: {} });
    change(section);
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}
