// `user-provided`: hands an external service's credentials to apps. The
// credentials are the instance's parameters (like `cf create-user-provided-service`):
//   { "credentials": {...}, "syslog_drain_url": "...", "route_service_url": "..." }
// Nothing is created anywhere, so every operation is synchronous.
import { PermanentError, type BindResult, type InstanceOperation, type JsonObject, type Provisioner } from '../provisioner.ts';

export class UserProvidedProvisioner implements Provisioner {
  readonly kind = 'user-provided';
  readonly parametersAreSecret = true;

  parsePlanConfig(block: JsonObject) {
    const keys = Object.keys(block);
    if (keys.length > 0) return { problems: keys.map((k) => ({ path: k, message: 'unknown setting for kind user-provided (it takes none)' })) };
    return { config: {} };
  }

  isAsync(): boolean {
    return false;
  }

  async provision(op: InstanceOperation): Promise<void> {
    credentialsOf(op.instance.parameters);
  }

  async update(op: InstanceOperation): Promise<void> {
    credentialsOf(op.instance.parameters);
  }

  async deprovision(): Promise<void> {}

  async bind(op: { instance: { parameters: JsonObject } }): Promise<BindResult> {
    const p = op.instance.parameters;
    return {
      credentials: credentialsOf(p),
      ...(typeof p.syslog_drain_url === 'string' ? { syslogDrainUrl: p.syslog_drain_url } : {}),
      ...(typeof p.route_service_url === 'string' ? { routeServiceUrl: p.route_service_url } : {}),
    };
  }

  async unbind(): Promise<void> {}
}

function credentialsOf(parameters: JsonObject): JsonObject {
  const c = parameters.credentials;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) {
    throw new PermanentError('user-provided instances need parameters.credentials: a JSON object with the credentials to hand out');
  }
  return c as JsonObject;
}
