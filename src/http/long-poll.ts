// Long-polling last_operation, for Berth's own Kubernetes controller: a poll that
// sends `X-Berth-Wait-Seconds: N` is answered when the operation ends (or after N
// seconds, at most 30), so the controller learns of the end within milliseconds
// without polling. Platforms that do not send the header (Service Catalog, Cloud
// Foundry, Korifi) are answered at once, as before. The answer echoes the header
// with the seconds honoured, so a client can tell a Berth that waited from a
// broker that ignored the header.
import type { IncomingHttpHeaders } from 'node:http';
import type { OperationStatus } from '../broker/types.ts';
import type { Reply } from './reply.ts';

export const WAIT_HEADER = 'x-berth-wait-seconds';
const MAX_WAIT_SECONDS = 30;
/** The safety net under the end signal (e.g. a lost cross-replica NOTIFY): re-read at least this often. */
const RECHECK_MS = 1000;

/** The seconds a request asks to wait (0 when it did not ask, or asked nonsense). */
export function requestedWaitSeconds(headers: IncomingHttpHeaders): number {
  const raw = headers[WAIT_HEADER];
  const n = typeof raw === 'string' && /^\d{1,4}$/.test(raw) ? Number(raw) : 0;
  return Math.min(n, MAX_WAIT_SECONDS);
}

/**
 * Reads the operation's state; while it is in progress and the request asked to
 * wait, waits for its end signal (or a re-check) until the time is up.
 */
export async function readWaiting(
  waitSeconds: number,
  read: () => Promise<OperationStatus | 'gone'>,
  waitForEnd: (operationId: string, signal: AbortSignal) => Promise<boolean>,
  operationId: string | undefined,
): Promise<OperationStatus | 'gone'> {
  if (waitSeconds === 0) return read();
  const until = Date.now() + waitSeconds * 1000;
  for (;;) {
    const waiting = AbortSignal.timeout(Math.max(0, Math.min(RECHECK_MS, until - Date.now())));
    // Subscribed before reading, so an end between the read and the wait is not missed.
    const ended = operationId ? waitForEnd(operationId, waiting) : new Promise<boolean>((r) => waiting.addEventListener('abort', () => r(false), { once: true }));
    const status = await read();
    if (status === 'gone' || status.state !== 'in progress' || Date.now() >= until) return status;
    await ended;
  }
}

/** The reply with the echo that says the wait was honoured. */
export function withWaitEcho(reply: Reply, waitSeconds: number): Reply {
  return waitSeconds === 0 ? reply : { ...reply, headers: { ...reply.headers, 'X-Berth-Wait-Seconds': String(waitSeconds) } };
}
