// A typed client for any Open Service Broker (OSB API v2.13–v2.17). Used by the
// Kubernetes controller (src/controller/), the `berth` CLI and `berth doctor`;
// it loads nothing else from Berth (it shares one pure type with src/osb/errors.ts,
// erased at load) and needs no dependency beyond node:.
//
//   import { OsbClient, OsbError, OsbTransportError } from '../osb-client/index.ts';
//
//   const broker = new OsbClient({
//     url: 'https://broker.example.com',
//     auth: { username, password },          // or { bearerToken }, or omitted
//     apiVersion: '2.17',                    // X-Broker-API-Version (default 2.17)
//     caPem,                                 // trust this CA for https: (optional)
//     timeoutMs: 60_000,                     // per request (default 60 s)
//     originatingIdentity: { platform: 'kubernetes', value: { username: 'alice', uid: '…' } },
//   });
//   const { services } = await broker.catalog();
//   const p = await broker.provision(id, { service_id, plan_id, context, parameters });   // accepts_incomplete=true
//   if (p.outcome === 'accepted') {
//     const op = await broker.instanceLastOperation(id, { operation: p.operation });       // op.state, op.retryAfterSeconds
//   }
//   await broker.update(id, { service_id, plan_id, parameters, previous_values: { plan_id: old } });
//   await broker.fetchInstance(id);
//   const b = await broker.bind(id, bindingId, { service_id, plan_id, context });          // b.credentials
//   await broker.bindingLastOperation(id, bindingId, { operation: b.operation });
//   await broker.fetchBinding(id, bindingId);
//   await broker.unbind(id, bindingId, { service_id, plan_id });                           // outcome 'gone' on 410
//   await broker.deprovision(id, { service_id, plan_id });
//   await broker.provisionedResources(id);       // Berth only (not OSB): what the provisioner made; undefined elsewhere
//   await broker.send('PUT', 'v2/service_instances/x', '{not json');                      // any status, no OsbError (doctor)
//   broker.close();                                                                          // drops kept-alive sockets
//
// Every call takes `{ acceptsIncomplete, originatingIdentity, requestIdentity, timeoutMs, signal, headers, onHeaders }`
// (the first only where the spec has it). Results carry the broker's body fields (spec names), the HTTP
// `status`, an `outcome` word where the status matters, and `retryAfterSeconds` when the broker sent Retry-After.
//
// Failures are values of two classes:
// - OsbError: the broker answered with a status the endpoint does not succeed with. It carries `status`,
//   `error` and `description` exactly as sent (never truncated), `instanceUsable`, `updateRepeatable`,
//   `retryAfterSeconds` and the raw `body`/`text`. `last_operation` 410 is not an error: it is `state: 'gone'`.
// - OsbTransportError: no HTTP answer (`kind`: 'timeout', 'network' or 'aborted').
export { OsbClient, OsbError, OsbTransportError, parseRetryAfter } from './client.ts';
export type { OsbClientOptions, RawAnswer } from './client.ts';
export type * from './types.ts';
