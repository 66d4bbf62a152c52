// Builds the admin API and the orphan sweeper for the composition root (main.ts): one call there,
// everything else here. The sweeper runs periodically when BERTH_SWEEP_INTERVAL_SECONDS is set; the
// admin listener exists only when admin tokens are configured.
import type { Logger } from 'pino';
import type { Server } from 'node:http';
import type { Catalog } from '../catalog/catalog.ts';
import type { Config } from '../config.ts';
import { AuthThrottle } from '../http/auth-throttle.ts';
import { createBerthHttpServer, type HttpsOptions } from '../http/server.ts';
import type { KubernetesAccess } from '../kubernetes/client.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { OperationEngine } from '../operations/worker.ts';
import type { ProvisionerRegistry } from '../provisioners/provisioner.ts';
import type { Stores } from '../store/unit-of-work.ts';
import { kubernetesBackend, mysqlBackend, postgresBackend, sqlServers, type Backend } from '../sweeper/backends.ts';
import { OrphanSweeper } from '../sweeper/sweeper.ts';
import { createAdminApp, type AdminApiDeps } from './api.ts';
import { AdminQueries } from './queries.ts';
import { AdminService } from './service.ts';

/** A backend that cannot be looked at: each sweep reports why (its orphans are unknown, not absent). */
function unusable(name: string, problem: string): Backend {
  return {
    name,
    list: async () => {
      throw new Error(problem);
    },
    remove: async () => {
      throw new Error(problem);
    },
  };
}

export interface AdminParts {
  /** Where the admin API listens; undefined when it is off (no admin tokens). */
  url: string | undefined;
  sweeper: OrphanSweeper;
  stop(deadline: number): Promise<void>;
}

export async function startAdmin(deps: {
  config: Config;
  stores: Stores;
  engine: OperationEngine;
  catalog: Catalog;
  provisioners: ProvisionerRegistry;
  kube: KubernetesAccess;
  log: Logger;
  metrics: Metrics;
  tls: HttpsOptions | undefined;
  listen: (server: Server, port: number, host: string) => Promise<number>;
  /** More instance filters for GET /admin/v1/instances (see AdminApiDeps). */
  instanceFilters?: AdminApiDeps['instanceFilters'];
}): Promise<AdminParts> {
  const { config, stores, log } = deps;
  const backends = (): Backend[] => {
    const list: Backend[] = [];
    // Two server names with one admin URL are one server: listed once.
    const urls = new Set<string>();
    for (const s of sqlServers(deps.catalog, config.env)) {
      if ('problem' in s) {
        list.push(unusable(`${s.engine}:${s.name}`, s.problem));
        continue;
      }
      if (urls.has(s.server.adminUrl)) continue;
      urls.add(s.server.adminUrl);
      list.push(s.engine === 'postgres' ? postgresBackend(s.server) : mysqlBackend(s.server));
    }
    if (deps.kube.configured) list.push(kubernetesBackend(deps.kube, config, log));
    return list;
  };
  const sweeper = new OrphanSweeper({
    stores,
    catalog: deps.catalog,
    provisioners: deps.provisioners,
    backends,
    log,
    graceMs: config.admin.sweepGraceMs,
    registry: deps.metrics.registry,
  });
  sweeper.start(config.admin.sweepIntervalMs);
  if (config.admin.tokens.length === 0) {
    return { url: undefined, sweeper, stop: () => sweeper.stop() };
  }
  const app = createAdminApp({
    tokens: config.admin.tokens,
    service: new AdminService({ stores, engine: deps.engine, catalog: deps.catalog }),
    queries: new AdminQueries(stores.knex),
    sweeper,
    catalog: deps.catalog,
    auditSweep: async (actor, reason, deleted) => {
      await stores.transaction(async (tx) => {
        for (const o of deleted) {
          await tx.audit.record({
            operationId: undefined,
            // The audit table is keyed by instance; an orphan known only by its name hash has none.
            instanceId: o.instanceId ?? '',
            bindingId: o.bindingId,
            action: 'admin-sweep-delete',
            platform: 'admin',
            originatingIdentity: undefined,
            requestIdentity: undefined,
            outcome: o.id,
            actor,
            reason,
          });
        }
      });
    },
    log,
    throttle: new AuthThrottle({ limit: config.auth.failureLimit, windowMs: config.auth.failureWindowMs }),
    ...(deps.instanceFilters ? { instanceFilters: deps.instanceFilters } : {}),
  });
  const limits = { ...config.http, keepAliveTimeoutMs: 65_000 };
  // A sweep over many backends takes longer than an OSB request may.
  const http = createBerthHttpServer({ ...limits, requestTimeoutMs: Math.max(limits.requestTimeoutMs, 600_000) }, app, log, deps.tls && { ...deps.tls, clientCa: undefined });
  const port = await deps.listen(http.server, config.admin.port, config.admin.host);
  const url = `${deps.tls ? 'https' : 'http'}://${config.admin.host.includes(':') ? `[${config.admin.host}]` : config.admin.host}:${port}`;
  log.info({ url, tokens: config.admin.tokens.map((t) => t.name), sweepIntervalS: config.admin.sweepIntervalMs / 1000 }, 'admin API is serving');
  return {
    url,
    sweeper,
    async stop(deadline) {
      await http.drain(deadline);
      await sweeper.stop();
      await http.close();
    },
  };
}
