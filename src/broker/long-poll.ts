// Long-polling last_operation, for Berth's own Kubernetes controller: a poll that
// sends `X-Berth-Wait-Seconds: N` is answered when the operation ends (or after N
// seconds, at most 30), so the controller learns of the end within milliseconds
// without polling. Platforms that do not send the header (Service Catalog, Cloud
// Foundry, Korifi) are answered at once, as before. The answer echoes the header
// with the seconds honoured, so a client can tell a Berth that waited from a
// broker that ignored the header.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LastOperationReport } from '../service/broker-service.ts';

export const WAIT_HEADER = 'x-berth-wait-seconds';
const MAX_WAIT_SECONDS = 30;
/** The safety net under the end signal (e.g. a lost cross-replica NOTIFY): re-read at least this often. */
const RECHECK_MS = 1000;

/** The seconds the request asks to wait (0 when it did not ask). */
export function requestedWaitSeconds(req: IncomingMessage): number {
  const raw = req.headers[WAIT_HEADER];
  const n = typeof raw === 'string' && /^\d{1,4}$/.test(raw) ? Number(raw) : 0;
  return Math.min(n, MAX_WAIT_SECONDS);
}

/**
 * Reads the operation's state, and while it is in progress waits for its end
 * signal (or a re-check, or the client leaving) until the requested time is up.
 */
export async function readWaiting(
  req: IncomingMessage,
  res: ServerResponse,
  read: () => Promise<LastOperationReport | 'gone'>,
  waitForEnd: (operationId: string, signal: AbortSignal) => Promise<boolean>,
  operationId: string | undefined,
): Promise<LastOperationReport | 'gone'> {
  const seconds = requestedWaitSeconds(req);
  if (seconds === 0) return read();
  res.setHeader('X-Berth-Wait-Seconds', String(seconds));
  const until = Date.now() + seconds * 1000;
  const left = new AbortController();
  const onClose = () => left.abort();
  res.once('close', onClose);
  try {
    for (;;) {
      const waiting = AbortSignal.any([left.signal, AbortSignal.timeout(Math.max(0, Math.min(RECHECK_MS, until - Date.now())))]);
      // Subscribed before reading, so an end between the read and the wait is not missed.
      const ended = operationId ? waitForEnd(operationId, waiting) : new Promise<boolean>((r) => waiting.addEventListener('abort', () => r(false), { once: true }));
      const result = await read();
      if (result === 'gone' || result.view.state !== 'in progress' || Date.now() >= until || left.signal.aborted) {
        return result;
      }
      await ended;
    }
  } finally {
    res.off('close', onClose);
  }
}
