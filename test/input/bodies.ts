// Request bodies shared by the input tests and bench/parameters.bench.ts.

/** The sample catalog's postgres service and its `small` plan (schema: `extensions`, an enum array with uniqueItems). */
export const SAMPLE_PG = { service_id: '82790cc2-051a-40c8-b207-642e1e0ca4c0', plan_id: 'e268e07b-5a23-4995-b892-8257ac2bc247' };

/** The audit's request (issue 16 point 1): a provision just under 1 MB whose `extensions` holds 165,000 unique items. */
export function hugeExtensionsBody(): string {
  const items = Array.from({ length: 165_000 }, (_, i) => i).join(',');
  return `{"service_id":"${SAMPLE_PG.service_id}","plan_id":"${SAMPLE_PG.plan_id}","organization_guid":"org-1","space_guid":"space-1","parameters":{"extensions":[${items}]}}`;
}
