// The provisioner kinds Berth ships.
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Provisioner } from './provisioner.ts';
import { UserProvidedProvisioner } from './user-provided/user-provided.ts';

export function builtInProvisioners(_config: Config, _log: Logger): Provisioner[] {
  return [new UserProvidedProvisioner()];
}
