// Recognises "the database is not there right now" so requests answer 503
// and workers wait, instead of treating an outage as a failure of the work.
const unavailableCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
]);

export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e: any = err, depth = 0; e && depth < 5; e = e.cause, depth++) {
    if (typeof e.code === 'string' && (unavailableCodes.has(e.code) || e.code.startsWith('08'))) return true;
    const msg = typeof e.message === 'string' ? e.message : '';
    if (
      e.name === 'KnexTimeoutError' ||
      msg.includes('Connection terminated') ||
      msg.includes('Timeout acquiring a connection') ||
      msg.includes('Client has encountered a connection error') ||
      msg.includes('connect ECONNREFUSED')
    ) {
      return true;
    }
  }
  return false;
}

/**
 * Whether the database refused a value the request carried (SQLSTATE class 22, data exception, or
 * 54000, an index row too large): the input's fault, answered 400, not the broker's.
 */
export function isRejectedInput(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code === '54000');
}
