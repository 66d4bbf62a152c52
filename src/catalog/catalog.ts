// catalog.yaml: the OSB catalog in YAML (same field names as the spec) plus a
// Berth-only `provisioner:` block per plan that is never sent to platforms.
import { catalogPlanFieldSince, catalogServiceFieldSince } from '../osb/versions.ts';
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import type { ValidateFunction } from 'ajv';
import { compileParameterSchema } from './schemas.ts';

export interface PlanProvisioner {
  kind: string;
  config: unknown;
  /** The kind's settings as written in the catalog (the block without `kind` and the plan options); kept in plan snapshots. */
  settings: Record<string, unknown>;
}

/** Berth-only plan settings that apply whatever the provisioner kind (keys of the `provisioner:` block). */
export interface PlanOptions {
  /** Bind requests must name the app (`bind_resource.app_guid`), else 422 RequiresApp. */
  requiresApp: boolean;
  /** Write bindings as Kubernetes Secrets when the platform is Kubernetes; undefined = the global setting. */
  bindingSecret: boolean | undefined;
}

export interface CatalogPlan {
  id: string;
  name: string;
  service: CatalogService;
  bindable: boolean;
  planUpdateable: boolean;
  bindingRotatable: boolean;
  maximumPollingDurationSeconds: number | undefined;
  maintenanceVersion: string | undefined;
  schemas: {
    instanceCreate?: ValidateFunction;
    instanceUpdate?: ValidateFunction;
    bindingCreate?: ValidateFunction;
  };
  provisioner: PlanProvisioner;
  options: PlanOptions;
  /** The plan as platforms see it (OSB fields only). */
  published: Record<string, unknown>;
}

export interface CatalogService {
  id: string;
  name: string;
  bindable: boolean;
  instancesRetrievable: boolean;
  bindingsRetrievable: boolean;
  allowContextUpdates: boolean;
  requires: string[];
  plans: CatalogPlan[];
  published: Record<string, unknown>;
}

export class CatalogError extends Error {
  readonly problems: string[];
  constructor(file: string, problems: string[]) {
    super(`${file}: catalog is invalid:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

/** What a provisioner may need to know about the rest of its plan to check its block: the parameter schemas as written (undefined when absent). */
export interface PlanConfigContext {
  schemas: { instanceCreate: unknown; instanceUpdate: unknown; bindingCreate: unknown };
}

/**
 * Validates a plan's `provisioner:` block for its kind; returns the parsed config or problems (paths relative to the block).
 * `plan` (the plan's schemas) is given at catalog load; it is absent when a recorded plan is read back for an operation
 * (src/catalog/plan-snapshot.ts), whose block was checked against its schemas when its catalog was loaded.
 */
export type ProvisionerConfigParser = (
  kind: string,
  block: Record<string, unknown>,
  plan?: PlanConfigContext,
) => { config: unknown } | { problems: Array<{ path: string; message: string }> };

const nonEmpty = z.string().min(1, 'must be a non-empty string');
const semver = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z-.]+)?(?:\+[0-9A-Za-z-.]+)?$/;

const inputSchema = z.object({ parameters: z.unknown() }).passthrough();
const planSchema = z
  .object({
    id: nonEmpty,
    name: nonEmpty,
    description: nonEmpty,
    metadata: z.record(z.string(), z.unknown()).optional(),
    free: z.boolean().optional(),
    bindable: z.boolean().optional(),
    binding_rotatable: z.boolean().optional(),
    plan_updateable: z.boolean().optional(),
    schemas: z
      .object({
        service_instance: z.object({ create: inputSchema.optional(), update: inputSchema.optional() }).passthrough().optional(),
        service_binding: z.object({ create: inputSchema.optional() }).passthrough().optional(),
      })
      .passthrough()
      .optional(),
    maximum_polling_duration: z.number().int().positive().optional(),
    maintenance_info: z
      .object({ version: z.string().regex(semver, 'must be a semantic version 2.0 string'), description: z.string().optional() })
      .passthrough()
      .optional(),
    provisioner: z.object({ kind: nonEmpty }).passthrough(),
  })
  .passthrough();

const serviceSchema = z
  .object({
    id: nonEmpty,
    name: nonEmpty,
    description: nonEmpty,
    tags: z.array(z.string()).optional(),
    requires: z.array(z.enum(['syslog_drain', 'route_forwarding', 'volume_mount'])).optional(),
    bindable: z.boolean(),
    instances_retrievable: z.boolean().optional(),
    bindings_retrievable: z.boolean().optional(),
    allow_context_updates: z.boolean().optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
    dashboard_client: z.record(z.string(), z.unknown()).optional(),
    plan_updateable: z.boolean().optional(),
    plans: z.array(planSchema).min(1, 'must contain at least one plan'),
  })
  .passthrough();

const catalogSchema = z.object({ services: z.array(serviceSchema) }).strict();

function pathOf(parts: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of parts) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(root)';
}

export class Catalog {
  readonly services: CatalogService[];
  readonly #plans = new Map<string, CatalogPlan>();
  readonly #services = new Map<string, CatalogService>();
  readonly #bodies = new Map<string, Buffer>();

  constructor(services: CatalogService[]) {
    this.services = services;
    for (const s of services) {
      this.#services.set(s.id, s);
      for (const p of s.plans) this.#plans.set(p.id, p);
    }
  }

  service(id: string): CatalogService | undefined {
    return this.#services.get(id);
  }

  plan(id: string): CatalogPlan | undefined {
    return this.#plans.get(id);
  }

  get plans(): CatalogPlan[] {
    return [...this.#plans.values()];
  }

  /** The serialised GET /v2/catalog body for an API minor version, built once. */
  body(minor: number): Buffer {
    const key = String(minor);
    let body = this.#bodies.get(key);
    if (!body) {
      body = Buffer.from(JSON.stringify({ services: this.services.map((s) => publishService(s, minor)) }));
      this.#bodies.set(key, body);
    }
    return body;
  }
}

// Fields newer than the caller's API version are left out (OSB change policy:
// older platforms ignore unknown fields, but some validate strictly).

function publishService(s: CatalogService, minor: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s.published)) if ((catalogServiceFieldSince[k] ?? 0) <= minor) out[k] = v;
  out.plans = s.plans.map((p) => {
    const plan: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(p.published)) if ((catalogPlanFieldSince[k] ?? 0) <= minor) plan[k] = v;
    return plan;
  });
  return out;
}

export function loadCatalog(file: string, parseProvisioner: ProvisionerConfigParser): Catalog {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CatalogError(file, [`cannot read file: ${(err as Error).message}`]);
  }
  return parseCatalog(text, file, parseProvisioner);
}

export function parseCatalog(text: string, file: string, parseProvisioner: ProvisionerConfigParser): Catalog {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, merge: true });
  if (doc.errors.length > 0) {
    throw new CatalogError(file, doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`));
  }
  const raw = doc.toJS({ maxAliasCount: 100 }) as unknown;
  const parsed = catalogSchema.safeParse(raw);
  if (!parsed.success) {
    throw new CatalogError(
      file,
      parsed.error.issues.map((i) => `${pathOf(i.path)}: ${i.message}`),
    );
  }
  const problems: string[] = [];
  const ids = new Map<string, string>();
  const serviceNames = new Map<string, string>();
  const claimId = (id: string, where: string) => {
    const seen = ids.get(id);
    if (seen) problems.push(`${where}.id: "${id}" is already used at ${seen}; ids must be globally unique`);
    else ids.set(id, where);
  };

  const services: CatalogService[] = parsed.data.services.map((rawService, si) => {
    const sWhere = `services[${si}]`;
    claimId(rawService.id, sWhere);
    const seenName = serviceNames.get(rawService.name);
    if (seenName) problems.push(`${sWhere}.name: "${rawService.name}" is already used at ${seenName}`);
    else serviceNames.set(rawService.name, sWhere);

    const { plans: rawPlans, ...servicePublished } = rawService;
    const service: CatalogService = {
      id: rawService.id,
      name: rawService.name,
      bindable: rawService.bindable,
      instancesRetrievable: rawService.instances_retrievable ?? false,
      bindingsRetrievable: rawService.bindings_retrievable ?? false,
      allowContextUpdates: rawService.allow_context_updates ?? false,
      requires: rawService.requires ?? [],
      plans: [],
      published: servicePublished,
    };
    const planNames = new Map<string, string>();
    for (const [pi, rawPlan] of rawPlans.entries()) {
      const pWhere = `${sWhere}.plans[${pi}]`;
      claimId(rawPlan.id, pWhere);
      const seenPlan = planNames.get(rawPlan.name);
      if (seenPlan) problems.push(`${pWhere}.name: "${rawPlan.name}" is already used at ${seenPlan} in this service`);
      else planNames.set(rawPlan.name, pWhere);

      const schemas: CatalogPlan['schemas'] = {};
      const compile = (input: { parameters?: unknown } | undefined, where: string): ValidateFunction | undefined => {
        if (input === undefined) return undefined;
        if (input.parameters === undefined) {
          problems.push(`${where}.parameters: is required`);
          return undefined;
        }
        const result = compileParameterSchema(input.parameters);
        if ('problem' in result) {
          problems.push(`${where}.parameters: ${result.problem}`);
          return undefined;
        }
        return result.validate;
      };
      const sw = `${pWhere}.schemas`;
      schemas.instanceCreate = compile(rawPlan.schemas?.service_instance?.create, `${sw}.service_instance.create`);
      schemas.instanceUpdate = compile(rawPlan.schemas?.service_instance?.update, `${sw}.service_instance.update`);
      schemas.bindingCreate = compile(rawPlan.schemas?.service_binding?.create, `${sw}.service_binding.create`);

      const { provisioner: block, ...planPublished } = rawPlan;
      const { kind, requires_app: requiresApp, binding_secret: bindingSecret, ...rest } = block;
      if (requiresApp !== undefined && typeof requiresApp !== 'boolean') problems.push(`${pWhere}.provisioner.requires_app: must be a boolean`);
      if (bindingSecret !== undefined && typeof bindingSecret !== 'boolean') problems.push(`${pWhere}.provisioner.binding_secret: must be a boolean`);
      const result = parseProvisioner(kind, rest, {
        schemas: {
          instanceCreate: rawPlan.schemas?.service_instance?.create?.parameters,
          instanceUpdate: rawPlan.schemas?.service_instance?.update?.parameters,
          bindingCreate: rawPlan.schemas?.service_binding?.create?.parameters,
        },
      });
      let config: unknown;
      if ('problems' in result) {
        for (const p of result.problems) problems.push(`${pWhere}.provisioner${p.path ? `.${p.path}` : ''}: ${p.message}`);
      } else {
        config = result.config;
      }
      const planUpdateable = rawPlan.plan_updateable ?? rawService.plan_updateable ?? false;
      service.plans.push({
        id: rawPlan.id,
        name: rawPlan.name,
        service,
        bindable: rawPlan.bindable ?? rawService.bindable,
        planUpdateable,
        bindingRotatable: rawPlan.binding_rotatable ?? false,
        maximumPollingDurationSeconds: rawPlan.maximum_polling_duration,
        maintenanceVersion: rawPlan.maintenance_info?.version,
        schemas,
        provisioner: { kind, config, settings: rest },
        options: { requiresApp: requiresApp === true, bindingSecret: bindingSecret as boolean | undefined },
        // Stated on every plan even where they equal the service's: Korifi reads an absent plan-level
        // value as false (and then refused every bind and plan change).
        published: { ...planPublished, bindable: rawPlan.bindable ?? rawService.bindable, plan_updateable: planUpdateable },
      });
    }
    return service;
  });
  if (problems.length > 0) throw new CatalogError(file, problems);
  return new Catalog(services);
}
