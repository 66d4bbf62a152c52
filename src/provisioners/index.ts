// The provisioner kinds Berth ships.
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Provisioner } from './provisioner.ts';
import { UserProvidedProvisioner } from './user-provided/user-provided.ts';
import { HelmProvisioner } from './helm/helm-provisioner.ts';
import type { KubernetesAccess } from '../kubernetes/client.ts';

export function builtInProvisioners(config: Config, log: Logger, kube: KubernetesAccess): Provisioner[] {
  return [
    new UserProvidedProvisioner(),
    new HelmProvisioner(config, kube, log),
  ];
}
