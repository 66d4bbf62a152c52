// A broker's published catalog (GET /v2/catalog), checked as platforms check it. The
// structural rules (required fields, unique ids and names, valid parameter schemas,
// maintenance_info versions) are the ones Berth applies to its own catalog.yaml
// (src/catalog/catalog.ts), reused here; on top come what particular platforms refuse.
import { CatalogError, parseCatalog } from '../catalog/catalog.ts';

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
