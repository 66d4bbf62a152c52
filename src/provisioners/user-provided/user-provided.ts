// `user-provided`: hands an external service's credentials to apps. The
// credentials are the instance's parameters (like `cf create-user-provided-service`):
//   { "credentials": {...}, "syslog_drain_url": "...", "route_service_url": "..." }
// Nothing is created anywhere, so every operation is synchronous.
//
// Credential names are whatever the user chose. When a bind writes a binding
// Secret, each name becomes a Secret key, and Kubernetes accepts only
// `[-._a-zA-Z0-9]+`: such a bind is refused with 400 before anything is queued
// (the names are not rewritten, so an app never sees a key it was not given).
import type { CatalogPlan } from '../../catalog/catalog.ts';
import { bindingSecretKeysRefusal } from '../../kubernetes/binding-secrets.ts';
import { isDeepStrictEqual } from 'node:util';
import { PermanentError, type BindResult, type InstanceOperation, type InstanceResult, type JsonObject, type Provisioner, type UpdateOperation } from '../provisioner.ts';

/** The namespace a bind with this context writes its binding Secret into, if it writes one. */
export type BindingSecretNamespace = (plan: CatalogPlan, bindContext: JsonObject | undefined) => string | undefined;

export class UserProvidedProvisioner implements Provisioner {
  readonly kind = 'user-provided';
  readonly parametersAreSecret = true;
  readonly #bindingSecretNamespace: BindingSecretNamespace;

  constructor(bindingSecretNamespace: BindingSecretNamespace = () => undefined) {
    this.#bindingSecretNamespace = bindingSecretNamespace;
  }

  parsePlanConfig(block: JsonObject) {
    const keys = Object.keys(block);
    if (keys.length > 0) return { problems: keys.map((k) => ({ path: k, message: 'unknown setting for kind user-provided (it takes none)' })) };
    return { config: {} };
  }

  isAsync(): boolean {
    return false;
  }

  checkParameters(_plan: CatalogPlan, parameters: JsonObject): string | undefined {
    return parametersProblem(parameters);
  }

  async provision(op: InstanceOperation): Promise<void> {
    credentialsOf(op.instance.parameters);
  }

  /** Bindings hand out the parameters as they were at bind: new ones make every existing binding stale. */
  async update(op: UpdateOperation): Promise<InstanceResult> {
    credentialsOf(op.instance.parameters);
    const changed = ['credentials', 'syslog_drain_url', 'route_service_url'].filter((k) => !isDeepStrictEqual(op.previous.parameters[k], op.instance.parameters[k]));
    if (changed.length === 0) return {};
    const before = op.previous.parameters.credentials;
    const after = op.instance.parameters.credentials as JsonObject;
    // Names of the credential entries that changed, never their values.
    const keys = isObject(before) ? [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => !isDeepStrictEqual(before[k], after[k])) : Object.keys(after);
    const what = changed.map((k) => (k === 'credentials' ? `credentials (${keys.sort().join(', ')})` : k)).join(', ');
    return { credentialsChanged: `An update of the instance changed its ${what}; bind again (or rotate) to get the new values.` };
  }

  async deprovision(): Promise<void> {}

  checkBind(plan: CatalogPlan, instanceParameters: JsonObject, bindContext: JsonObject | undefined): string | undefined {
    const namespace = this.#bindingSecretNamespace(plan, bindContext);
    const credentials = instanceParameters.credentials;
    if (namespace === undefined || typeof credentials !== 'object' || credentials === null || Array.isArray(credentials)) return undefined;
    return bindingSecretKeysRefusal(Object.keys(credentials), namespace);
  }

  async bind(op: { instance: { parameters: JsonObject } }): Promise<BindResult> {
    const p = op.instance.parameters;
    return {
      credentials: credentialsOf(p),
      ...(typeof p.syslog_drain_url === 'string' ? { syslogDrainUrl: p.syslog_drain_url } : {}),
      ...(typeof p.route_service_url === 'string' ? { routeServiceUrl: p.route_service_url } : {}),
    };
  }

  async unbind(): Promise<void> {}

  /** Nothing is made anywhere: the credentials live sealed in Berth's own database. */
  async describe(): Promise<[]> {
    return [];
  }
}

/** Why these parameters cannot make a user-provided instance, in a sentence that says what to send; undefined when they can. */
export function parametersProblem(parameters: JsonObject): string | undefined {
  const c = parameters.credentials;
  if (c === undefined) {
    return 'A user-provided instance needs parameters.credentials: a JSON object with the credentials to hand out, e.g. {"credentials": {"uri": "…"}}.';
  }
  if (typeof c !== 'object' || c === null || Array.isArray(c)) {
    return `parameters.credentials must be a JSON object with the credentials to hand out, e.g. {"uri": "…"}, not ${c === null ? 'null' : Array.isArray(c) ? 'an array' : `a ${typeof c}`}.`;
  }
  for (const key of ['syslog_drain_url', 'route_service_url']) {
    const v = parameters[key];
    if (v !== undefined && typeof v !== 'string') return `parameters.${key} must be a string (a URL), not ${v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`}.`;
  }
  return undefined;
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function credentialsOf(parameters: JsonObject): JsonObject {
  const c = parameters.credentials;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) {
    throw new PermanentError('user-provided instances need parameters.credentials: a JSON object with the credentials to hand out');
  }
  return c as JsonObject;
}
