// The `provisioner:` block of a helm plan.
import { z } from 'zod';
import { parsePlanBlock, type JsonObject } from '../provisioner.ts';
import type { PlanConfigContext } from '../../catalog/catalog.ts';
import { perBindingSchema } from './per-binding.ts';

const dnsLabel = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

export const helmPlanSchema = z
  .object({
    /** A chart directory or .tgz (relative to the catalog file), an oci:// reference, or a chart name in `repository`. */
    chart: z.string().min(1),
    repository: z.string().url().optional(),
    /** Accept an http:// repository (charts and their index travel unauthenticated); https is required otherwise. */
    allow_insecure_repository: z.boolean().default(false),
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
         *   "service-ip:<service name>"       the Service's ClusterIP (clusters without DNS)
         *   "service:<service name>:<port>"   a Service port (by name or number)
         *   "template:<text>"                 text with {entry} / {entry|url} of other entries
         *   anything else                     literal text
         * Names and text may use {release}, {namespace} and {instance_id}.
         */
        entries: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/), z.string()),
        /**
         * A login per binding inside the server the release runs, instead of the chart's
         * one admin login: `engine` (postgresql | redis), the Service/port to reach it
         * through the Kubernetes API, and where the admin login is (entry syntax). The
         * entries `username` and `password` (and templates using them) then carry the
         * binding's own login. Absent: every binding gets what the entries name.
         */
        per_binding: perBindingSchema.optional(),
      })
      .optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const remote = c.repository !== undefined || c.chart.startsWith('oci://');
    if (remote && !c.version) ctx.addIssue({ code: 'custom', path: ['version'], message: 'a chart from a repository or OCI registry needs a pinned version' });
    if (c.repository !== undefined) {
      const scheme = new URL(c.repository).protocol;
      if (scheme === 'http:' && !c.allow_insecure_repository) {
        ctx.addIssue({
          code: 'custom',
          path: ['repository'],
          message: 'uses http://, which lets anyone on the path swap the chart; use https://, or set allow_insecure_repository: true for a repository you trust on a private network',
        });
      } else if (scheme !== 'http:' && scheme !== 'https:') {
        ctx.addIssue({ code: 'custom', path: ['repository'], message: 'must be an https:// URL of a chart repository' });
      }
    }
  });

export type HelmPlanConfig = z.infer<typeof helmPlanSchema>;

export function parseHelmPlan(block: JsonObject, plan?: PlanConfigContext) {
  const parsed = parsePlanBlock(helmPlanSchema, block);
  if ('problems' in parsed || !plan) return parsed;
  const problems = unvalidatedParameters((parsed.config as HelmPlanConfig).parameters, plan);
  return problems.length > 0 ? { problems } : parsed;
}

/**
 * User parameters become chart values, so each mapped parameter must be one the
 * plan's schemas declare: without that, a user could put any JSON (objects,
 * huge arrays) into the release's values. Provision validates against
 * service_instance.create; update against service_instance.update, else create.
 */
function unvalidatedParameters(mapping: Record<string, string>, plan: PlanConfigContext): Array<{ path: string; message: string }> {
  const mapped = Object.keys(mapping);
  if (mapped.length === 0) return [];
  const operations: Array<[string, unknown]> = [['service_instance.create', plan.schemas.instanceCreate]];
  if (plan.schemas.instanceUpdate !== undefined) operations.push(['service_instance.update', plan.schemas.instanceUpdate]);
  const problems: Array<{ path: string; message: string }> = [];
  for (const [operation, schema] of operations) {
    if (schema === undefined) {
      problems.push({
        path: 'parameters',
        message: `maps user parameters into chart values, but the plan has no schemas.${operation}.parameters; add a JSON schema that declares ${mapped.join(', ')}`,
      });
      continue;
    }
    const declared = (schema as { properties?: unknown }).properties;
    for (const name of mapped) {
      if (typeof declared !== 'object' || declared === null || !Object.hasOwn(declared, name)) {
        problems.push({ path: `parameters.${name}`, message: `is not declared in schemas.${operation}.parameters.properties; declare it so users' values are validated` });
      }
    }
  }
  return problems;
}
