import type { Response } from 'express';
import type { LastOperationReport } from '../service/broker-service.ts';
import { errors } from '../osb/errors.ts';

const FLOOR_SECONDS = 1;
const CEILING_SECONDS = 15;

/**
 * Seconds a platform should wait before polling an unfinished operation again.
 * Most operations end within a second or two, so a fresh one is polled after
 * the 1 s floor; the longer one has run (a Helm install waiting for its pods,
 * a retry backing off), the longer the wait: a quarter of its age, so a poll
 * lands at most ~25 % after the end, capped at 15 s and never past the plan's
 * deadline (maximum_polling_duration), when the outcome is certain to be known.
 */
export function retryAfterSeconds(op: { startedAt: Date; deadlineAt: Date | undefined }, now = Date.now()): number {
  const ageSeconds = Math.max(0, now - op.startedAt.getTime()) / 1000;
  let seconds = Math.min(CEILING_SECONDS, Math.ceil(ageSeconds / 4));
  if (op.deadlineAt) seconds = Math.min(seconds, Math.ceil((op.deadlineAt.getTime() - now) / 1000));
  return Math.max(FLOOR_SECONDS, seconds);
}

export function sendLastOperation(res: Response, result: LastOperationReport | 'gone'): void {
  if (result === 'gone') throw errors.gone();
  if (result.view.state === 'in progress') res.set('Retry-After', String(retryAfterSeconds(result)));
  res.status(200).json(result.view);
}
