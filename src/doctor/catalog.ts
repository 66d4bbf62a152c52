// A broker's published catalog (GET /v2/catalog), checked as platforms check it. The
// structural rules (required fields, unique ids and names, valid parameter schemas,
// maintenance_info versions) are the ones Berth applies to its own catalog.yaml
// (src/catalog/catalog.ts), reused here; on top come what particular platforms refuse.
import { CatalogError, parseCatalog } from '../catalog/catalog.ts';
import { compileParameterSchema } from '../catalog/schemas.ts';

export interface CatalogFindings {
  /** What platforms refuse: the catalog (or the whole broker) is rejected. */
  problems: string[];
  /** What some platforms refuse or handle badly. */
  warnings: string[];
  services: number;
  plans: number;
}

// Kubernetes Service Catalog names its ClusterServiceClass/ClusterServicePlan objects after the
// ids and validates the names (pkg/apis/servicecatalog/validation): letters, digits, '-', '.'
// (and '_' in ids and plan names), at most 63 characters.
const SC_ID = /^[a-zA-Z0-9\-_.]{1,63}$/;
const SC_SERVICE_NAME = /^[a-zA-Z0-9\-.]{1,63}$/;
const SC_PLAN_NAME = /^[a-zA-Z0-9\-_.]{1,63}$/;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export function checkPublishedCatalog(body: unknown): CatalogFindings {
  const findings: CatalogFindings = { problems: [], warnings: [], services: 0, plans: 0 };
  if (!isObject(body) || !Array.isArray(body.services)) {
    findings.problems.push('the body is not a JSON object with a "services" array');
    return findings;
  }
  const services = body.services as unknown[];
  findings.services = services.length;
  if (services.length === 0) findings.warnings.push('the catalog offers no services; platforms register the broker but there is nothing to provision');
  // Berth's own validation wants its `provisioner:` block on every plan: a neutral one is added, never looked at.
  const asBerthCatalog = {
    services: services.map((s) =>
      isObject(s) && Array.isArray(s.plans) ? { ...s, plans: s.plans.map((p) => (isObject(p) ? { ...p, provisioner: { kind: 'published' } } : p)) } : s,
    ),
  };
  try {
    parseCatalog(JSON.stringify(asBerthCatalog), 'catalog', () => ({ config: null }));
  } catch (err) {
    if (!(err instanceof CatalogError)) throw err;
    findings.problems.push(...err.problems.map((p) => p.replace(/^YAML: /, 'JSON: ')));
  }
  // parseCatalog stops at the first structural problem; uniqueness and schemas are looked at all the same,
  // in its words, so one run names everything a platform would refuse.
  const seen = new Set(findings.problems);
  const add = (p: string) => !seen.has(p) && (seen.add(p), findings.problems.push(p));
  const ids = new Map<string, string>();
  const serviceNames = new Map<string, string>();
  const claim = (id: unknown, where: string) => {
    if (typeof id !== 'string') return;
    const at = ids.get(id);
    if (at) add(`${where}.id: "${id}" is already used at ${at}; ids must be globally unique`);
    else ids.set(id, where);
  };
  for (const [si, s] of services.entries()) {
    if (!isObject(s)) continue;
    claim(s.id, `services[${si}]`);
    if (typeof s.name === 'string') {
      const at = serviceNames.get(s.name);
      if (at) add(`services[${si}].name: "${s.name}" is already used at ${at}`);
      else serviceNames.set(s.name, `services[${si}]`);
    }
    const planNames = new Map<string, string>();
    for (const [pi, p] of (Array.isArray(s.plans) ? s.plans : []).entries()) {
      if (!isObject(p)) continue;
      const where = `services[${si}].plans[${pi}]`;
      claim(p.id, where);
      if (typeof p.name === 'string') {
        const at = planNames.get(p.name);
        if (at) add(`${where}.name: "${p.name}" is already used at ${at} in this service`);
        else planNames.set(p.name, where);
      }
      const schemas = isObject(p.schemas) ? p.schemas : {};
      for (const [group, action] of [['service_instance', 'create'], ['service_instance', 'update'], ['service_binding', 'create']] as const) {
        const input = isObject(schemas[group]) ? (schemas[group] as Json)[action] : undefined;
        if (!isObject(input) || input.parameters === undefined) continue;
        const compiled = compileParameterSchema(input.parameters);
        if ('problem' in compiled) add(`${where}.schemas.${group}.${action}.parameters: ${compiled.problem}`);
      }
    }
  }

  for (const [si, s] of services.entries()) {
    if (!isObject(s)) continue;
    const where = `services[${si}]${typeof s.name === 'string' ? ` (${s.name})` : ''}`;
    if (typeof s.id === 'string' && !SC_ID.test(s.id)) findings.warnings.push(`${where}.id "${s.id}": Kubernetes Service Catalog refuses ids other than 1–63 letters, digits, "-", "_" or "."`);
    if (typeof s.name === 'string' && !SC_SERVICE_NAME.test(s.name)) findings.warnings.push(`${where}.name: Kubernetes Service Catalog refuses offering names other than 1–63 letters, digits, "-" or "."; use a CLI-friendly name`);
    const plans = Array.isArray(s.plans) ? s.plans : [];
    findings.plans += plans.length;
    for (const [pi, p] of plans.entries()) {
      if (!isObject(p)) continue;
      const pWhere = `${where}.plans[${pi}]${typeof p.name === 'string' ? ` (${p.name})` : ''}`;
      if (typeof p.id === 'string' && !SC_ID.test(p.id)) findings.warnings.push(`${pWhere}.id "${p.id}": Kubernetes Service Catalog refuses ids other than 1–63 letters, digits, "-", "_" or "."`);
      if (typeof p.name === 'string' && !SC_PLAN_NAME.test(p.name)) findings.warnings.push(`${pWhere}.name: Kubernetes Service Catalog refuses plan names other than 1–63 letters, digits, "-", "_" or "."; use a CLI-friendly name`);
    }
  }
  return findings;
}
