// `berth admin …`: the admin API (src/admin/api.ts) from a terminal. Where to connect, first found wins:
//   URL    --admin-url, BERTH_ADMIN_URL, else http://127.0.0.1:8081 (the admin listener's default)
//   token  BERTH_ADMIN_TOKEN, the file named by --admin-token-file or BERTH_ADMIN_TOKEN_FILE
//          (the token itself is never an argument: argv is visible to other users)
//   CA     --admin-ca-file, BERTH_ADMIN_CA_FILE (an https admin listener with a private CA)
// Output follows the CLI's conventions: -o table|wide|json|yaml|name on stdout, messages on stderr.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { CliError, EXIT, usageError } from '../errors.ts';
import { age, formatOf, render, type View } from '../output.ts';
import type { Handler, Options } from '../program.ts';

interface Connection {
  url: URL;
  token: string;
  ca: Buffer | undefined;
}

function connectionOf(opts: Options, env: NodeJS.ProcessEnv = process.env): Connection {
  const raw = opts.adminUrl ?? env.BERTH_ADMIN_URL ?? 'http://127.0.0.1:8081';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usageError(`--admin-url ${raw} is not a URL; write e.g. http://127.0.0.1:8081`);
  }
  let token = env.BERTH_ADMIN_TOKEN?.trim();
  const file = opts.adminTokenFile ?? env.BERTH_ADMIN_TOKEN_FILE;
  if (!token && file) {
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw usageError(`cannot read the admin token file ${file} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    }
  }
  if (!token) throw usageError('no admin token: set BERTH_ADMIN_TOKEN, or --admin-token-file / BERTH_ADMIN_TOKEN_FILE to a file holding it (a token of BERTH_ADMIN_TOKENS, without its name)');
  const caFile = opts.adminCaFile ?? env.BERTH_ADMIN_CA_FILE;
  let ca: Buffer | undefined;
  if (caFile) {
    try {
      ca = readFileSync(caFile);
    } catch (err) {
      throw usageError(`cannot read the CA file ${caFile} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    }
  }
  return { url, token, ca };
}

async function call(c: Connection, method: string, path: string, body?: unknown): Promise<any> {
  const target = new URL(`${c.url.pathname.replace(/\/$/, '')}/admin/v1${path}`, c.url);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const lib = target.protocol === 'https:' ? https : http;
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = lib.request(
      target,
      {
        method,
        headers: { Authorization: `Bearer ${c.token}`, Accept: 'application/json', ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}) },
        ...(target.protocol === 'https:' && c.ca ? { ca: c.ca } : {}),
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (data += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: data }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  }).catch((err: NodeJS.ErrnoException) => {
    throw new CliError(EXIT.unreachable, `cannot reach the admin API at ${c.url.origin} (${err.code ?? err.message}); is Berth running with BERTH_ADMIN_TOKENS set, and is --admin-url / BERTH_ADMIN_URL right?`);
  });
  let parsed: any;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    throw new CliError(EXIT.unreachable, `${c.url.origin} did not answer as Berth's admin API (HTTP ${status}, not JSON); check --admin-url`);
  }
  if (status >= 200 && status < 300) return parsed;
  const description = parsed?.description ?? `HTTP ${status}`;
  if (status === 401 || status === 429) throw new CliError(EXIT.unreachable, `the admin API refused the token: ${description}`);
  if (status === 400) throw usageError(description);
  throw new CliError(EXIT.failed, description);
}

function reasonOf(opts: Options): string {
  const reason = typeof opts.reason === 'string' ? opts.reason.trim() : '';
  if (reason.length < 3) throw usageError('--reason is required: say why (it is recorded in the audit table with your token\'s name)');
  return reason;
}

const LISTS = ['instances', 'bindings', 'operations'] as const;
type ListKind = (typeof LISTS)[number];

const views: Record<ListKind, View<any>> = {
  instances: {
    name: (i) => `instance/${i.id}`,
    columns: [
      { header: 'ID', value: (i) => i.id },
      { header: 'PLAN', value: (i) => i.planId },
      { header: 'STATE', value: (i) => i.state },
      { header: 'BINDINGS', value: (i) => String(i.bindings) },
      { header: 'LAST OPERATION', value: (i) => (i.lastOperation ? `${i.lastOperation.kind} ${i.lastOperation.state}` : '') },
      { header: 'VERSION', value: (i) => i.maintenanceVersion ?? '', wide: true },
      { header: 'DESCRIPTION', value: (i) => i.lastOperation?.description ?? '', wide: true },
      { header: 'AGE', value: (i) => age(i.createdAt) },
    ],
    full: (i) => i,
  },
  bindings: {
    name: (b) => `binding/${b.instanceId}/${b.id}`,
    columns: [
      { header: 'INSTANCE', value: (b) => b.instanceId },
      { header: 'ID', value: (b) => b.id },
      { header: 'PLAN', value: (b) => b.planId },
      { header: 'STATE', value: (b) => b.state },
      { header: 'EXPIRES', value: (b) => b.expiresAt ?? '', wide: true },
      { header: 'AGE', value: (b) => age(b.createdAt) },
    ],
    full: (b) => b,
  },
  operations: {
    name: (o) => `operation/${o.id}`,
    columns: [
      { header: 'ID', value: (o) => o.id },
      { header: 'KIND', value: (o) => o.kind },
      { header: 'STATE', value: (o) => o.state },
      { header: 'INSTANCE', value: (o) => o.instanceId },
      { header: 'BINDING', value: (o) => o.bindingId ?? '', wide: true },
      { header: 'ATTEMPTS', value: (o) => String(o.attempts), wide: true },
      { header: 'DESCRIPTION', value: (o) => o.description },
      { header: 'AGE', value: (o) => age(o.createdAt) },
    ],
    full: (o) => o,
  },
};

/** `berth admin list instances|bindings|operations [filters]`: every page with --all, else the first --limit. */
export const list: Handler = async ([what], opts) => {
  if (!LISTS.includes(what as ListKind)) throw usageError(`berth admin list ${what ?? ''}: say what to list: ${LISTS.join(', ')}`);
  const format = formatOf(opts.output);
  const c = connectionOf(opts);
  const q = new URLSearchParams();
  for (const [flag, param] of [['state', 'state'], ['plan', 'plan'], ['offering', 'offering'], ['instance', 'instance'], ['kind', 'kind'], ['stuck', 'stuck'], ['limit', 'limit']] as const) {
    if (opts[flag] !== undefined) q.set(param, String(opts[flag]));
  }
  if (opts.failed) q.set('failed', 'true');
  const items: unknown[] = [];
  let next: string | undefined;
  do {
    if (next) q.set('continue', next);
    const page = await call(c, 'GET', `/${what}?${q}`);
    items.push(...page.items);
    next = opts.all ? page.continue : undefined;
    if (!opts.all && page.continue) process.stderr.write(`(more ${what} than --limit; add --all for every page)\n`);
  } while (next);
  process.stdout.write(await render(items, views[what as ListKind], format));
  if (items.length === 0 && format === 'table') process.stderr.write(`no ${what} match\n`);
};

const auditView: View<any> = {
  name: (e) => `audit/${e.at}`,
  columns: [
    { header: 'AT', value: (e) => e.at },
    { header: 'ACTOR', value: (e) => e.actor },
    { header: 'ACTION', value: (e) => e.action },
    { header: 'INSTANCE', value: (e) => e.instanceId },
    { header: 'OPERATION', value: (e) => e.operationId ?? '', wide: true },
    { header: 'OUTCOME', value: (e) => e.outcome ?? '', wide: true },
    { header: 'REASON', value: (e) => e.reason },
  ],
  full: (e) => e,
};

export const audit: Handler = async (_args, opts) => {
  const format = formatOf(opts.output);
  const q = new URLSearchParams();
  if (opts.instance) q.set('instance', opts.instance);
  if (opts.limit) q.set('limit', String(opts.limit));
  const page = await call(connectionOf(opts), 'GET', `/audit?${q}`);
  process.stdout.write(await render(page.items, auditView, format));
};

const resultView: View<any> = {
  name: (r) => (r.operationId ? `operation/${r.operationId}` : `instance/${r.instanceId}`),
  columns: [
    { header: 'INSTANCE', value: (r) => r.instanceId },
    { header: 'OPERATION', value: (r) => r.operationId ?? '' },
    { header: 'DESCRIPTION', value: (r) => r.description },
  ],
  full: (r) => r,
};

const action =
  (path: (id: string) => string): Handler =>
  async ([id], opts) => {
    const format = formatOf(opts.output);
    const reason = reasonOf(opts);
    const result = await call(connectionOf(opts), 'POST', path(encodeURIComponent(id!)), { reason });
    process.stdout.write(await render([result], resultView, format, { single: true }));
  };

export const retry = action((id) => `/operations/${id}/retry`);
export const fail = action((id) => `/operations/${id}/fail`);
export const purge = action((id) => `/instances/${id}/purge`);
export const repair = action((id) => `/instances/${id}/repair`);

const orphanView: View<any> = {
  name: (o) => `orphan/${o.id}`,
  columns: [
    { header: 'BACKEND', value: (o) => o.backend },
    { header: 'KIND', value: (o) => o.kind },
    { header: 'NAME', value: (o) => (o.namespace ? `${o.namespace}/${o.name}` : o.name) },
    { header: 'INSTANCE', value: (o) => o.instanceId ?? '', wide: true },
    { header: 'ID', value: (o) => o.id, wide: true },
    { header: 'DELETED', value: (o) => (o.deleted === undefined ? '' : o.deleted ? 'yes' : `no: ${o.error}`) },
  ],
  full: (o) => o,
};

/** `berth admin sweep [--delete --reason R [--only ID…]]`: the report (table: orphans, then what is missing, then problems on stderr). */
export const sweep: Handler = async (_args, opts) => {
  const format = formatOf(opts.output);
  const only: string[] | undefined = opts.only;
  if (only && !opts.delete) throw usageError('--only selects orphans to delete: use it with --delete');
  const body = opts.delete ? { delete: true, reason: reasonOf(opts), ...(only ? { only } : {}) } : { delete: false };
  const report = await call(connectionOf(opts), 'POST', '/sweep', body);
  if (format === 'json' || format === 'yaml') {
    process.stdout.write(await render([report], { name: () => 'sweep', columns: [], full: (r) => r }, format, { single: true }));
  } else {
    process.stdout.write(await render(report.orphans, orphanView, format));
    if (format !== 'name' && report.missing.length > 0) {
      process.stdout.write(`\nMissing (live instances whose resources are gone; repair or purge them):\n`);
      process.stdout.write(
        await render(report.missing, {
          name: (m: any) => m.name,
          columns: [
            { header: 'INSTANCE', value: (m: any) => m.instanceId },
            { header: 'KIND', value: (m: any) => m.kind },
            { header: 'NAME', value: (m: any) => m.name },
            { header: 'BINDING', value: (m: any) => m.bindingId ?? '' },
          ],
          full: (m: any) => m,
        }, format),
      );
    }
  }
  process.stderr.write(
    `${report.orphans.length} orphan(s)${opts.delete ? `, ${report.orphans.filter((o: any) => o.deleted).length} deleted` : ' (nothing deleted; add --delete --reason "…")'}, ${report.missing.length} missing\n`,
  );
  for (const p of report.problems) process.stderr.write(`not swept: ${p.backend}: ${p.message}\n`);
  const failed = report.orphans.some((o: any) => o.deleted === false);
  return failed ? EXIT.failed : EXIT.ok;
};
