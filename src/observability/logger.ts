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
