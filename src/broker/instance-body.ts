import { since } from '../osb/versions.ts';
import type { InstanceAnswer } from '../service/broker-service.ts';

/** The provision/update response body; instance `metadata` arrived in 2.16. */
export function instanceBody(answer: InstanceAnswer, apiMinor: number): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (answer.dashboardUrl) body.dashboard_url = answer.dashboardUrl;
  if (answer.status === 202) body.operation = answer.operation;
  else if (answer.metadata && apiMinor >= since.metadata) body.metadata = answer.metadata;
  return body;
}
