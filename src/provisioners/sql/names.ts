// Names, quoting and passwords for the provisioners that work on SQL servers
// (`postgres`, `mysql`).
//
// Every server-side name is derived from the broker's ids through SHA-256, so
// it is deterministic (a re-run after a crash finds what the first run
// created), bounded (whatever the id's length or alphabet) and made only of
// [a-z0-9_] (nothing an id contains ever reaches SQL text). Identifiers are
// still always quoted with the functions below, never pasted in bare.
import { randomBytes } from 'node:crypto';
import { nameHash } from '../../lib/hash-names.ts';

/** Names on a PostgreSQL server (identifiers up to 63 bytes; these are 34). */
export const pgNames = {
  database: (instanceId: string) => `berth_i_${nameHash('instance', instanceId)}`,
  ownerRole: (instanceId: string) => `berth_o_${nameHash('instance', instanceId)}`,
  bindingRole: (instanceId: string, bindingId: string) => `berth_b_${nameHash('binding', instanceId, bindingId)}`,
  bindingRolePrefix: 'berth_b_',
};

/**
 * Names on a MySQL/MariaDB server: database up to 64 characters, user up to
 * 32 (MySQL). Letters and digits only: `_` and `%` are wildcards in the
 * database part of GRANT, so a name containing them would grant more than
 * the one database.
 */
export const mysqlNames = {
  database: (instanceId: string) => `berthi${nameHash('instance', instanceId)}`,
  bindingUser: (instanceId: string, bindingId: string) => `berthb${nameHash('binding', instanceId, bindingId)}`,
  bindingUserPrefix: 'berthb',
};

/**
 * A strong random password: 24 random bytes as base64url (32 characters,
 * 192 bits), redrawn until it holds a lower-case and an upper-case letter, a
 * digit and a symbol, so password-policy plugins (MySQL validate_password)
 * accept it. Only [A-Za-z0-9_-]: safe in URIs and in any SQL string literal.
 */
export function generatePassword(): string {
  for (;;) {
    const p = randomBytes(24).toString('base64url');
    if (/[a-z]/.test(p) && /[A-Z]/.test(p) && /[0-9]/.test(p) && /[-_]/.test(p)) return p;
  }
}

function rejectNul(s: string, what: string): void {
  if (s.includes('\0')) throw new Error(`${what} must not contain a NUL character`);
}

/** A PostgreSQL identifier in double quotes (inner quotes doubled). Refuses names PostgreSQL would silently truncate. */
export function quotePgIdent(name: string): string {
  rejectNul(name, 'identifier');
  if (name.length === 0) throw new Error('identifier must not be empty');
  if (Buffer.byteLength(name, 'utf8') > 63) throw new Error('identifier is longer than 63 bytes');
  return `"${name.replaceAll('"', '""')}"`;
}

/** A PostgreSQL string literal: quotes doubled; with backslashes, the E'' form with them doubled (correct whatever standard_conforming_strings says). */
export function quotePgLiteral(value: string): string {
  rejectNul(value, 'string literal');
  const quoted = value.replaceAll("'", "''");
  return value.includes('\\') ? `E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`;
}

/** A MySQL identifier in backticks (inner backticks doubled). */
export function quoteMysqlIdent(name: string): string {
  rejectNul(name, 'identifier');
  if (name.length === 0) throw new Error('identifier must not be empty');
  if ([...name].length > 64) throw new Error('identifier is longer than 64 characters');
  return `\`${name.replaceAll('`', '``')}\``;
}

/**
 * A MySQL string literal, quotes doubled. Backslashes are refused: their
 * meaning depends on the session's NO_BACKSLASH_ESCAPES mode, and nothing
 * Berth sends (derived names, base64url passwords, validated settings) has one.
 */
export function quoteMysqlString(value: string): string {
  rejectNul(value, 'string literal');
  if (value.includes('\\')) throw new Error('string literal must not contain a backslash');
  return `'${value.replaceAll("'", "''")}'`;
}
