// The `provisioner:` block of a helm plan.
import { z } from 'zod';
import { parsePlanBlock, type JsonObject } from '../provisioner.ts';

const dnsLabel = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

export const helmPlanSchema = z
  .object({
    /** A chart directory or .tgz (relative to the catalog file), an oci:// reference, or a chart name in `repository`. */
    chart: z.string().min(1),
    repository: z.string().url().optional(),
    /** Required for oci:// and repository charts: pinned, never "latest". */
    version: z.string().min(1).optional(),
    values: z.record(z.string(), z.unknown()).default({}),
    /** User parameter name → dotted path in the chart's values. */
    parameters: z.record(z.string(), z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'must be a dotted values path')).default({}),
    namespace: z
      .discriminatedUnion('strategy', [
        z.object({ strategy: z.literal('per-instance'), prefix: z.string().regex(/^[a-z][-a-z0-9]{0,20}$/, 'must be a short DNS label prefix').default('berth-') }),
        z.object({ strategy: z.literal('fixed'), name: z.string().regex(dnsLabel, 'must be a DNS label').max(63) }),
      ])
      .default({ strategy: 'per-instance', prefix: 'berth-' }),
    /** Seconds to wait for workloads to become ready after an install or upgrade. */
    timeout: z.number().int().positive().max(24 * 3600).default(600),
    credentials: z
      .object({
        /** servicebinding.io type, e.g. postgresql. */
        type: z.string().regex(/^[a-z0-9][-a-z0-9.]*$/),
        provider: z.string().default('berth'),
        /**
         * Each entry is one of:
         *   "secret:<secret name>:<key>"      a key of a Secret the chart creates
         *   "service:<service name>"          the Service's cluster DNS name
         *   "service:<service name>:<port>"   a Service port (by name or number)
         *   "template:<text>"                 text with {entry} / {entry|url} of other entries
         *   anything else                     literal text
         * Names and text may use {release}, {namespace} and {instance_id}.
         */
        entries: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/), z.string()),
      })
      .optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const remote = c.repository !== undefined || c.chart.startsWith('oci://');
    if (remote && !c.version) ctx.addIssue({ code: 'custom', path: ['version'], message: 'a chart from a repository or OCI registry needs a pinned version' });
  });

export type HelmPlanConfig = z.infer<typeof helmPlanSchema>;

export function parseHelmPlan(block: JsonObject) {
  return parsePlanBlock(helmPlanSchema, block);
}
