import { pino, type Logger } from 'pino';

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

export function createLogger(level: string): Logger {
  return pino({ level, redact, base: { service: 'berth' } });
}
