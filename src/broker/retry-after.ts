import type { Response } from 'express';
import type { LastOperationView } from '../service/broker-service.ts';
import { errors } from './errors.ts';

/** Seconds a platform should wait before polling an unfinished operation again. */
export const POLL_AFTER_SECONDS = 2;

export function sendLastOperation(res: Response, result: LastOperationView | 'gone'): void {
  if (result === 'gone') throw errors.gone();
  if (result.state === 'in progress') res.set('Retry-After', String(POLL_AFTER_SECONDS));
  res.status(200).json(result);
}
