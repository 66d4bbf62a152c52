// What PUT (provision) and PATCH (update) of an instance share: the instance id
// from the path, the body by the endpoint's schema, accepts_incomplete, and the
// same response body.
import type { z } from 'zod';
import type { InstanceAnswer, RequestMeta } from '../../broker/types.ts';
import { instanceBody } from '../presenters.ts';
import type { Route } from '../reply.ts';
import { objectBody, parse, schemas } from '../schemas.ts';

export function instanceChange<S extends z.ZodType<object>>(
  bodySchema: S,
  call: (request: z.output<S> & { instanceId: string; acceptsIncomplete: boolean }, meta: RequestMeta) => Promise<InstanceAnswer>,
): Route {
  return async ({ params, query, body, meta }) => {
    const { instance_id } = parse(schemas.instanceParams, params);
    const fields = parse(bodySchema, objectBody(body));
    const { accepts_incomplete } = parse(schemas.asyncQuery, query);
    const answer = await call({ instanceId: instance_id, ...fields, acceptsIncomplete: accepts_incomplete }, meta);
    return { status: answer.status, body: instanceBody(answer, meta.apiMinor) };
  };
}
