import { pino, type DestinationStream, type Logger } from 'pino';

// Credentials must never reach a log line, whatever a caller passes in.
const redact = {
  paths: [
    'req.headers.authorization',
    'headers.authorization',
    'authorization',
    'password',
    '*.password',
    'credentials',
    '*.credentials',
    'parameters',
    '*.parameters',
    'values',
    '*.values',
  ],
  censor: '[redacted]',
};

/** JSON lines to stdout, or to `destination` (tests read what Berth logs). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, redact, base: { service: 'berth' } }, destination);
}

/**
 * Process warnings (a driver's deprecation notice, MaxListenersExceeded…) go to the log as JSON
 * instead of Node's default "(node:1) Warning: …" lines on stderr, which break JSON log collectors.
 */
export function routeProcessWarnings(log: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => log.warn({ warning: { name: warning.name, message: warning.message, code: (warning as { code?: unknown }).code } }, 'process warning'));
}
