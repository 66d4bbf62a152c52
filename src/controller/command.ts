// `berth controller`: runs the controller until SIGTERM/SIGINT (then releases the
// Lease), or exits 1 when it loses leadership, so a restarted process campaigns
// afresh and no two processes reconcile at once.
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { routeProcessWarnings } from '../observability/logger.ts';
import { startController } from './start.ts';

export async function runControllerCommand(config: Config, log: Logger): Promise<number> {
  routeProcessWarnings(log);
  let lost = false;
  let end: () => void = () => {};
  const ended = new Promise<void>((resolve) => (end = resolve));
  const onSignal = (signal: string) => {
    log.info({ signal }, 'signal received');
    end();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  let controller;
  try {
    controller = await startController(config, log, {
      onLostLeadership: () => {
        lost = true;
        end();
      },
    });
  } catch (err) {
    process.stderr.write(`berth: the controller could not start: ${(err as Error).message}\n`);
    return 2;
  }
  await ended;
  await controller.stop();
  return lost ? 1 : 0;
}
