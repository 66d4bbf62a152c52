// `berth controller`, and the controller beside `berth serve` in one process
// (BERTH_CONTROLLER=true): reads its settings from the environment Berth's config
// module passed through, and runs until stopped.
//
//   BERTH_BROKER_URL                the local Berth's URL (default http://127.0.0.1:$PORT; beside serve: its own URL)
//   BROKER_USERNAME/BROKER_PASSWORD the local Berth's credentials (as for serve); without them its first
//                                   static bearer token (BERTH_BEARER_TOKENS or BERTH_BEARER_TOKENS_FILE)
//   BERTH_BROKER_CA_FILE            the CA to trust when the local Berth serves HTTPS (e.g. the Secret's ca.crt)
//   BERTH_CONTROLLER_NAMESPACE      the Lease's and ClusterServiceBroker auth Secrets' namespace (default $POD_NAMESPACE or berth-system)
//   BERTH_CONTROLLER_LEASE_SECONDS  lease duration (default 15)
//   BERTH_CONTROLLER_WORKERS        reconciles in parallel (default 8)
//   BERTH_CONTROLLER_METRICS_PORT   serve /metrics and /healthz on 127.0.0.1 (or BERTH_CONTROLLER_METRICS_HOST) at this port
//   BERTH_CONTROLLER_LEASE_NAME     the Lease's name (default berth-controller)
//   BERTH_CONTROLLER_SELECTOR       reconcile only resources matching this label selector (one shard of a cluster)
//   BERTH_CONTROLLER_LONG_POLL      false: poll Berth's last_operation as Retry-After says instead of long-polling
//   BERTH_CONTROLLER_ROTATION_GRACE_SECONDS  how long a rotated binding's predecessor keeps working (default 60)
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Config } from '../config.ts';
import { KubernetesAccess } from '../kubernetes/client.ts';
import { Controller } from './controller.ts';

const envSchema = z.object({
  BERTH_BROKER_URL: z.string().url().optional(),
  BERTH_BROKER_CA_FILE: z.string().min(1).optional(),
  BERTH_CONTROLLER_NAMESPACE: z.string().min(1).optional(),
  POD_NAMESPACE: z.string().min(1).optional(),
  BERTH_CONTROLLER_LEASE_SECONDS: z.coerce.number().int().min(2).max(600).default(15),
  BERTH_CONTROLLER_WORKERS: z.coerce.number().int().min(1).max(64).default(8),
  BERTH_CONTROLLER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  BERTH_CONTROLLER_METRICS_HOST: z.string().default('127.0.0.1'),
  BERTH_CONTROLLER_ID: z.string().min(1).optional(),
  BERTH_CONTROLLER_LEASE_NAME: z.string().min(1).default('berth-controller'),
  BERTH_CONTROLLER_SELECTOR: z.string().min(1).optional(),
  BERTH_CONTROLLER_LONG_POLL: z.enum(['true', 'false']).default('true'),
  BERTH_CONTROLLER_ROTATION_GRACE_SECONDS: z.coerce.number().int().min(0).max(86_400).default(60),
});

export interface RunningController {
  controller: Controller;
  metricsUrl: string | undefined;
  stop(): Promise<void>;
}

/** Starts the controller; `brokerUrl` and `brokerAuth` (a Berth started in this process, its generated credentials too) override the environment's. */
export async function startController(
  config: Config,
  log: Logger,
  opts: { brokerUrl?: string; brokerAuth?: { username: string; password: string }; onLostLeadership?: () => void } = {},
): Promise<RunningController> {
  const parsed = envSchema.safeParse(config.env);
  if (!parsed.success) {
    throw new Error(`controller settings: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const env = parsed.data;
  const kube = new KubernetesAccess(config);
  const kubeConfig = await kube.kubeConfig();
  const controller = new Controller({
    kubeConfig,
    log,
    broker: {
      url: opts.brokerUrl ?? env.BERTH_BROKER_URL ?? `${config.tls ? 'https' : 'http'}://127.0.0.1:${config.port}`,
      auth: opts.brokerAuth ?? config.credentials[0] ?? staticToken(config),
      caPem: env.BERTH_BROKER_CA_FILE ? readCaFile(env.BERTH_BROKER_CA_FILE) : undefined,
    },
    namespace: env.BERTH_CONTROLLER_NAMESPACE ?? env.POD_NAMESPACE ?? 'berth-system',
    workers: env.BERTH_CONTROLLER_WORKERS,
    leaseSeconds: env.BERTH_CONTROLLER_LEASE_SECONDS,
    rotationGraceSeconds: env.BERTH_CONTROLLER_ROTATION_GRACE_SECONDS,
    identity: env.BERTH_CONTROLLER_ID,
    leaseName: env.BERTH_CONTROLLER_LEASE_NAME,
    selector: env.BERTH_CONTROLLER_SELECTOR,
    longPoll: env.BERTH_CONTROLLER_LONG_POLL === 'true',
    onLostLeadership: opts.onLostLeadership,
  });
  await controller.start();
  let server: Server | undefined;
  let metricsUrl: string | undefined;
  if (env.BERTH_CONTROLLER_METRICS_PORT !== undefined) {
    server = createServer((req, res) => {
      if (req.url === '/metrics') {
        controller.metrics.metrics().then(
          (text) => res.writeHead(200, { 'Content-Type': controller.metrics.contentType }).end(text),
          () => res.writeHead(500).end(),
        );
      } else if (req.url === '/healthz') {
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ leading: controller.leading }));
      } else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server!.listen(env.BERTH_CONTROLLER_METRICS_PORT, env.BERTH_CONTROLLER_METRICS_HOST, r));
    const address = server.address() as { port: number };
    metricsUrl = `http://${env.BERTH_CONTROLLER_METRICS_HOST}:${address.port}`;
    log.info({ url: metricsUrl }, 'controller metrics are served');
  }
  return {
    controller,
    metricsUrl,
    stop: async () => {
      await controller.stop();
      await new Promise((r) => (server ? server.close(r) : r(undefined)));
    },
  };
}

/** A bearer-only Berth (no username/password): the controller uses its first static token. */
function staticToken(config: Config): { bearerToken: string } | undefined {
  const token = config.bearer.tokens[0] ?? config.bearer.fileTokens[0];
  return token === undefined ? undefined : { bearerToken: token };
}

function readCaFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`controller settings: BERTH_BROKER_CA_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
}
