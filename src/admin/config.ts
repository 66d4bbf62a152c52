// The admin API's and the orphan sweeper's configuration, read by config.ts
// (configuration is validated once, there) from these variables:
//
//   BERTH_ADMIN_TOKENS        name:token,name:token   (the name is who is recorded in the audit table)
//   BERTH_ADMIN_TOKENS_FILE   one name:token a line; blank lines and # comments ignored
//   BERTH_ADMIN_PORT          default 8081 (0: any free port)
//   BERTH_ADMIN_HOST          default 127.0.0.1: reachable from the Pod/host only, unless widened on purpose
//   BERTH_SWEEP_INTERVAL_SECONDS  0 (default): no periodic sweep; else a report-only sweep this often
//   BERTH_SWEEP_GRACE_SECONDS     default 600: resources of instances/bindings changed this recently are never orphans
//
// The admin API is off unless admin tokens are configured. Admin tokens are a credential of their own: one
// that is also a platform credential is refused here, so a platform can never act as an administrator.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { checkTokens } from '../lib/bearer-tokens.ts';

export interface AdminToken {
  /** Who: recorded with every admin action. */
  name: string;
  token: string;
}

export interface AdminConfig {
  /** Empty: the admin API is off. */
  tokens: AdminToken[];
  port: number;
  host: string;
  /** 0: no periodic sweep. */
  sweepIntervalMs: number;
  sweepGraceMs: number;
}

const adminEnv = z.object({
  BERTH_ADMIN_TOKENS: z.string().optional(),
  BERTH_ADMIN_TOKENS_FILE: z.string().min(1).optional(),
  BERTH_ADMIN_PORT: z.coerce.number().int().min(0).max(65535).default(8081),
  BERTH_ADMIN_HOST: z.string().min(1).default('127.0.0.1'),
  BERTH_SWEEP_INTERVAL_SECONDS: z.coerce.number().min(0).max(7 * 86_400).default(0),
  BERTH_SWEEP_GRACE_SECONDS: z.coerce.number().min(0).max(30 * 86_400).default(600),
});

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$/;

function parsePairs(entries: Array<{ text: string; where: string }>, minLength: number): AdminToken[] {
  const tokens = entries.map(({ text, where }) => {
    const colon = text.indexOf(':');
    const name = colon > 0 ? text.slice(0, colon) : '';
    if (!NAME.test(name)) {
      throw new Error(`${where} must be NAME:TOKEN, NAME being who uses it (letters, digits, . _ @ -; recorded in the audit table), e.g. alice:$(openssl rand -base64 32)`);
    }
    return { name, token: text.slice(colon + 1) };
  });
  checkTokens(tokens.map((t) => t.token), (i) => entries[i]!.where, minLength);
  return tokens;
}

/** Throws an Error whose message names the variable (and line), never a token. */
export function adminConfigOf(env: Readonly<Record<string, string | undefined>>, minLength: number, platformSecrets: string[]): AdminConfig {
  const parsed = adminEnv.safeParse(env);
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const e = parsed.data;
  const listed = (e.BERTH_ADMIN_TOKENS ?? '').split(',').map((t) => t.trim()).filter((t) => t !== '');
  const tokens = parsePairs(listed.map((text, i) => ({ text, where: `BERTH_ADMIN_TOKENS: entry ${i + 1}` })), minLength);
  if (e.BERTH_ADMIN_TOKENS_FILE) tokens.push(...readAdminTokenFile(resolve(e.BERTH_ADMIN_TOKENS_FILE), minLength));
  const shared = tokens.find((t) => platformSecrets.includes(t.token));
  if (shared) {
    throw new Error(`the admin token named "${shared.name}" is also a platform credential (a broker password or bearer token); give administrators tokens of their own`);
  }
  return {
    tokens,
    port: e.BERTH_ADMIN_PORT,
    host: e.BERTH_ADMIN_HOST,
    sweepIntervalMs: e.BERTH_SWEEP_INTERVAL_SECONDS * 1000,
    sweepGraceMs: e.BERTH_SWEEP_GRACE_SECONDS * 1000,
  };
}

function readAdminTokenFile(file: string, minLength: number): AdminToken[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`BERTH_ADMIN_TOKENS_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  const lines = text.split(/\r?\n/).map((l, i) => ({ text: l.trim(), where: `BERTH_ADMIN_TOKENS_FILE: ${file} line ${i + 1}` }));
  return parsePairs(lines.filter((l) => l.text !== '' && !l.text.startsWith('#')), minLength);
}
