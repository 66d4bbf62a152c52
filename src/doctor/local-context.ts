// What the --local checks share: the context they fill in turn (configuration, catalog,
// provisioners, database) and how a URL or an error may be shown (never a password).
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Catalog } from '../catalog/catalog.ts';
import type { Database } from '../db/database.ts';
import { createLogger } from '../observability/logger.ts';
import type { ProvisionerRegistry } from '../provisioners/provisioner.ts';

export interface LocalContext {
  env: Record<string, string | undefined>;
  log: Logger;
  config?: Config;
  provisioners?: ProvisionerRegistry;
  catalog?: Catalog;
  database?: Database;
  /** Why the database checks cannot run (set by the database check). */
  databaseProblem?: string;
  /** Resources to release at the end. */
  close(): Promise<void>;
}

export function localContext(env: Record<string, string | undefined> = process.env): LocalContext {
  const ctx: LocalContext = {
    env,
    log: createLogger('silent'),
    async close() {
      await ctx.database?.close().catch(() => {});
      await ctx.provisioners?.close().catch(() => {});
    },
  };
  return ctx;
}

/** A connection URL as it may be shown: no password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(not a URL)';
  }
}

export const why = (err: unknown): string => {
  const e = err as { code?: string; message?: string; errors?: Array<{ code?: string; message?: string }> };
  // pg reports "connect ECONNREFUSED" per address in an AggregateError with an empty message.
  const inner = e?.errors?.[0];
  const text = e?.message || inner?.message || String(err);
  return text.split('\n')[0]!;
};

