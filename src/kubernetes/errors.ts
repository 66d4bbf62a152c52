// One place that decides what a failed Kubernetes API call means for an
// operation. A 4xx other than 409 Conflict and 429 Too Many Requests says the
// request itself is wrong (invalid object, missing permission, gone resource):
// retrying the same request gets the same answer, so it is permanent and the
// operation fails at once. 409, 429, 5xx and network errors may pass, so they
// are retried. Either way the description is one short sentence built from
// the Kubernetes Status (message and field causes): never the client's
// exception text, which carries the raw body and the HTTP headers.
import { PermanentError } from '../osb/errors.ts';

const MAX_REASON = 300;

/** The HTTP status of a failed @kubernetes/client-node call, if it is one. */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

/** True for failures that the same request, sent again later, may not hit. */
export function isTransientKubernetesError(err: unknown): boolean {
  const status = statusOf(err);
  if (status === undefined) return true; // no answer: network, TLS, DNS
  return status === 409 || status === 429 || status >= 500 || status < 400;
}

interface KubernetesStatus {
  message?: string;
  reason?: string;
  details?: { causes?: Array<{ field?: string; message?: string; reason?: string }> };
}

function statusBody(err: unknown): KubernetesStatus | undefined {
  const body = (err as { body?: unknown })?.body;
  if (typeof body === 'object' && body !== null) return body as KubernetesStatus;
  if (typeof body !== 'string') return undefined;
  try {
    const parsed = JSON.parse(body) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as KubernetesStatus) : undefined;
  } catch {
    return undefined;
  }
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > MAX_REASON ? `${flat.slice(0, MAX_REASON - 1)}…` : flat;
}

/**
 * What Kubernetes said, in one short line: the field causes of an invalid
 * object, else the Status message, else the status code. Network errors give
 * their error code or first line.
 */
export function reasonOf(err: unknown): string {
  const status = statusOf(err);
  const body = statusBody(err);
  const causes = (body?.details?.causes ?? [])
    .map((c) => [c.field, c.message].filter(Boolean).join(': '))
    .filter((c) => c !== '');
  if (status === 422 && causes.length > 0) return oneLine(causes.join('; '));
  if (body?.message) return oneLine(body.message);
  if (status !== undefined) return `HTTP ${status}${body?.reason ? ` ${body.reason}` : ''}`;
  const code = (err as { code?: unknown; cause?: { code?: unknown } })?.cause?.code;
  if (typeof code === 'string') return code;
  return oneLine(err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err));
}

/** What to tell the user to change, by status; the defaults fit most calls. */
export type Remedies = Partial<Record<400 | 401 | 403 | 404 | 422 | 'other', string>>;

const DEFAULT_REMEDIES: Required<Remedies> = {
  400: 'this is a defect in Berth or the chart; report it',
  401: "renew the token in Berth's kubeconfig (KUBECONFIG) or its ServiceAccount",
  403: 'grant it in deploy/rbac.yaml and deploy/admission-policy.yaml, or use a namespace Berth may write to',
  404: 'check that it exists',
  422: 'change what it names',
  other: 'check the request against the cluster’s API',
};

/**
 * The error an operation should throw for a failed Kubernetes call made to
 * `action` (e.g. `write Secret app/berth-binding-x`): a PermanentError with a
 * one-sentence description that says what to change, or a plain Error (short,
 * retried) for transient failures. `requestStatuses`: the 4xx statuses that,
 * for this call, mean the broker request's own data is wrong (e.g. 404 for a
 * namespace the bind request named); those failures are marked causedByRequest.
 */
export function kubernetesFailure(err: unknown, action: string, remedies: Remedies = {}, requestStatuses: readonly number[] = []): Error {
  if (err instanceof PermanentError) return err;
  const failure = classify(err, action, remedies);
  const status = statusOf(err);
  if (failure instanceof PermanentError && status !== undefined && requestStatuses.includes(status)) {
    return new PermanentError(failure.message, { causedByRequest: true });
  }
  return failure;
}

function classify(err: unknown, action: string, remedies: Remedies): Error {
  const status = statusOf(err);
  const reason = reasonOf(err);
  if (isTransientKubernetesError(err)) {
    return new Error(
      status === undefined
        ? `The Kubernetes API could not be reached to ${action} (${reason}).`
        : `The Kubernetes API answered ${status} to ${action} (${reason}).`,
    );
  }
  const remedy = (key: keyof Remedies) => remedies[key] ?? DEFAULT_REMEDIES[key];
  switch (status) {
    case 401:
      // Retried (with backoff, by any replica), not permanent: in a cluster the token is this replica's own, and it
      // is invalidated when its Pod is deleted (a replica being replaced or killed) while another replica's works;
      // a rotated kubeconfig token also recovers. A token that never works ends the operation after its attempts,
      // with this description.
      return new Error(`Kubernetes did not accept Berth's credentials to ${action}; ${remedy(401)}.`);
    case 403:
      return new PermanentError(`Berth may not ${action} (${reason}); ${remedy(403)}.`);
    case 404:
      return new PermanentError(`Kubernetes could not ${action} because it does not exist (${reason}); ${remedy(404)}.`);
    case 422:
      return new PermanentError(`Kubernetes refused to ${action} as invalid (${reason}); ${remedy(422)}.`);
    case 400:
      return new PermanentError(`Kubernetes refused to ${action} as a bad request (${reason}); ${remedy(400)}.`);
    default:
      return new PermanentError(`Kubernetes refused to ${action} with HTTP ${status} (${reason}); ${remedy('other')}.`);
  }
}
