// The one mapping from anything thrown while serving a request to the OSB
// error that answers it: OSB errors as they are, body-parser failures as 400 or
// 413, an outage of the database as 503, a secret that cannot be opened as a
// plain 500, data the database refused as 400; anything else is a 500 with a
// reference to the log line, never a stack trace or a library's text.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { isDatabaseUnavailable, isRejectedInput } from '../db/errors.ts';
import { errors, OsbError } from '../osb/errors.ts';
import { UndecryptableError } from '../secret-box.ts';

export function toOsbError(err: unknown, log: Logger, route: string | undefined): OsbError {
  const e = err as { type?: string; status?: number; limit?: number };
  if (err instanceof OsbError) return err;
  if (e?.type === 'entity.parse.failed') return errors.badRequest('The request body is not valid JSON.');
  if (e?.type === 'entity.too.large') return errors.payloadTooLarge(`${Math.round((e.limit ?? 0) / 1024)} kB`);
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') return errors.badRequest('The request body uses an unsupported encoding or charset; send UTF-8 JSON.');
  if (e?.type === 'request.aborted') return errors.badRequest('The request was aborted by the client.');
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) return errors.badRequest('The request is malformed.');
  if (err instanceof UndecryptableError) {
    log.error({ route, table: err.field.table, column: err.field.column, keyId: err.keyId, reason: err.reason }, 'a stored secret cannot be decrypted');
    return errors.undecryptable(err.message);
  }
  if (isDatabaseUnavailable(err)) {
    log.warn({ route }, 'database unavailable');
    return errors.unavailable();
  }
  if (isRejectedInput(err)) {
    log.warn({ route, code: (err as { code?: unknown }).code }, 'input rejected by the database');
    return errors.badRequest('The request contains a value that cannot be stored.');
  }
  const ref = randomUUID();
  log.error({ err, ref, route }, 'unhandled error');
  return errors.internal(ref);
}
