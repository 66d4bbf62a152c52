// Static bearer tokens: BERTH_BEARER_TOKENS (comma-separated) and
// BERTH_BEARER_TOKENS_FILE (one per line; blank lines and # comments ignored).
// Several are accepted at once so a token can be rotated without downtime.
// Parsed the same way at start (config.ts) and when the file changes
// (http/credentials.ts); errors name the variable and the position, never a token.
import { readFileSync } from 'node:fs';

/** RFC 6750 token68: what may follow "Bearer " in an Authorization header. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Checks tokens' alphabet and length; `where(i)` names token i in the error (the variable and position, never the token). */
export function checkTokens(tokens: string[], where: (i: number) => string, minLength: number): string[] {
  tokens.forEach((t, i) => {
    if (!TOKEN68.test(t)) throw new Error(`${where(i)} has characters a bearer token cannot have (allowed: letters, digits, - . _ ~ + / and trailing =)`);
    if (t.length < minLength) {
      throw new Error(`${where(i)} must be at least ${minLength} characters long (BERTH_MIN_PASSWORD_LENGTH); generate one with e.g. \`openssl rand -base64 32\``);
    }
  });
  return tokens;
}

export function parseTokenList(value: string, minLength: number): string[] {
  const tokens = value.split(',').map((t) => t.trim()).filter((t) => t !== '');
  return checkTokens(tokens, (i) => `BERTH_BEARER_TOKENS: token ${i + 1}`, minLength);
}

export function parseTokenFile(text: string, file: string, minLength: number): string[] {
  const lines = text.split(/\r?\n/).map((l, i) => ({ t: l.trim(), line: i + 1 })).filter((l) => l.t !== '' && !l.t.startsWith('#'));
  return checkTokens(lines.map((l) => l.t), (i) => `BERTH_BEARER_TOKENS_FILE: ${file} line ${lines[i]!.line}`, minLength);
}

export function readTokenFile(file: string, minLength: number): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`BERTH_BEARER_TOKENS_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  return parseTokenFile(text, file, minLength);
}
