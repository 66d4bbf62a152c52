// The provisioner kinds Berth ships.
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Provisioner } from './provisioner.ts';
import { UserProvidedProvisioner } from './user-provided/user-provided.ts';
import { PostgresProvisioner } from './postgres/postgres.ts';
import { MysqlProvisioner } from './mysql/mysql.ts';
import { HelmProvisioner } from './helm/helm-provisioner.ts';
import type { KubernetesAccess } from '../kubernetes/client.ts';
import { KubernetesClusters } from '../kubernetes/clusters.ts';
import { bindingSecretNamespace } from '../kubernetes/binding-secrets.ts';

export function builtInProvisioners(config: Config, log: Logger, kube: KubernetesAccess | KubernetesClusters): Provisioner[] {
  const clusters = KubernetesClusters.of(config, kube);
  return [
    new UserProvidedProvisioner((plan, context) => bindingSecretNamespace(plan, context, clusters, config.kubernetesSecrets)),
    new PostgresProvisioner(config, log),
    new MysqlProvisioner(config, log),
    new HelmProvisioner(config, clusters),
  ];
}
