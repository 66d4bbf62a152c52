// A SCRAM-SHA-256 password verifier in the form PostgreSQL stores (RFC 5802 /
// RFC 7677), computed here so that CREATE/ALTER ROLE ... PASSWORD carries the
// verifier, never the password itself: statement logs (log_statement = ddl)
// and pg_stat_statements then hold nothing an attacker can log in with.
// This is what psql's \password and libpq's PQencryptPasswordConn do.
import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

export const SCRAM_ITERATIONS = 4096;

/** Runs PBKDF2 on libuv's thread pool, so the event loop (and the HTTP API) does not wait for it. */
export async function scramSha256Verifier(password: string, salt: Buffer = randomBytes(16), iterations = SCRAM_ITERATIONS): Promise<string> {
  // PostgreSQL runs SASLprep on the password first; it leaves printable ASCII unchanged, and
  // Berth's passwords are base64url, so SASLprep is not needed (and non-ASCII is refused).
  if (!/^[\x20-\x7e]*$/.test(password)) throw new Error('scramSha256Verifier supports printable ASCII passwords only');
  const salted = await pbkdf2Async(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
