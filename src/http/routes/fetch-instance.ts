// GET /v2/service_instances/:instance_id (OSB 2.14+)
import type { Broker } from '../../broker/index.ts';
import { errors } from '../../osb/errors.ts';
import { since } from '../../osb/versions.ts';
import { fetchedInstanceBody } from '../presenters.ts';
import type { Route } from '../reply.ts';
import { parse, schemas } from '../schemas.ts';

export const fetchInstance = (broker: Broker): Route => async ({ params, query, meta }) => {
  if (meta.apiMinor < since.fetch) throw errors.versionTooOld('Fetching a service instance', since.fetch);
  const { instance_id } = parse(schemas.instanceParams, params);
  parse(schemas.fetchQuery, query);
  return { status: 200, body: fetchedInstanceBody(await broker.instances.fetch(instance_id), meta.apiMinor) };
};
