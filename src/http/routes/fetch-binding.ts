// GET /v2/service_instances/:instance_id/service_bindings/:binding_id (OSB 2.14+)
import type { Broker } from '../../broker/index.ts';
import { errors } from '../../osb/errors.ts';
import { since } from '../../osb/versions.ts';
import { fetchedBindingBody } from '../presenters.ts';
import type { Route } from '../reply.ts';
import { parse, schemas } from '../schemas.ts';

export const fetchBinding = (broker: Broker): Route => async ({ params, query, meta }) => {
  if (meta.apiMinor < since.fetch) throw errors.versionTooOld('Fetching a service binding', since.fetch);
  const { instance_id, binding_id } = parse(schemas.bindingParams, params);
  parse(schemas.fetchQuery, query);
  return { status: 200, body: fetchedBindingBody(await broker.bindings.fetch(instance_id, binding_id), meta.apiMinor) };
};
