// BERTH_CLUSTERS_FILE: the Kubernetes clusters one Berth serves, each with its
// own kubeconfig (and so its own credentials and permissions). Read and checked
// once, by src/config.ts; without the file Berth has its one cluster
// (KUBECONFIG or its ServiceAccount) and ignores context.clusterid.
import { accessSync, constants, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';

export interface ClusterEntry {
  /** The id platforms send as context.clusterid. */
  id: string;
  /** Absolute path of the cluster's kubeconfig (its current context is used). */
  kubeconfig: string;
}

export interface ClustersConfig {
  file: string;
  clusters: ClusterEntry[];
  /**
   * The cluster of requests that name none (no context.clusterid, e.g. Cloud Foundry or Korifi) and of
   * Helm instances provisioned before the file existed; undefined: such requests are refused when they need a cluster.
   */
  defaultId: string | undefined;
}

const fileSchema = z
  .object({
    default: z.string().min(1).optional(),
    clusters: z
      .record(z.string().min(1).max(253), z.object({ kubeconfig: z.string().min(1) }).strict())
      .refine((c) => Object.keys(c).length > 0, 'name at least one cluster'),
  })
  .strict();

/** Reads and checks the file; throws an Error whose message says what to change. */
export function readClustersFile(path: string): ClustersConfig {
  const file = resolve(path);
  let raw: unknown;
  try {
    raw = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`BERTH_CLUSTERS_FILE ${file} cannot be read as YAML (${(err as Error).message.split('\n')[0]})`);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`);
    throw new Error(
      `BERTH_CLUSTERS_FILE ${file} is not a clusters file (expected "clusters: {ID: {kubeconfig: PATH}, ...}" and an optional "default: ID"):\n  ${lines.join('\n  ')}`,
    );
  }
  const clusters = Object.entries(parsed.data.clusters).map(([id, c]) => ({ id, kubeconfig: resolve(dirname(file), c.kubeconfig) }));
  for (const c of clusters) {
    try {
      accessSync(c.kubeconfig, constants.R_OK);
    } catch {
      throw new Error(`BERTH_CLUSTERS_FILE ${file}: the kubeconfig of cluster "${c.id}" (${c.kubeconfig}) cannot be read`);
    }
  }
  const defaultId = parsed.data.default;
  if (defaultId !== undefined && !clusters.some((c) => c.id === defaultId)) {
    throw new Error(`BERTH_CLUSTERS_FILE ${file}: default "${defaultId}" is not one of its clusters (${clusters.map((c) => c.id).join(', ')})`);
  }
  return { file, clusters, defaultId };
}
