// What the doctor's tests share: running `bin/berth doctor` as a user would (child process,
// only the environment given), reading its -o json report, and a toy broker whose faults
// a test chooses.
import http from 'node:http';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import assert from 'node:assert/strict';
import { PATH, runBerth, type Result } from '../cli/support.ts';

export interface Check {
  id: string;
  title: string;
  status: 'pass' | 'warn' | 'fail' | 'skip';
  message: string;
  durationMs?: number;
  details?: Record<string, unknown>;
}

export interface Report {
  target: string;
  ok: boolean;
  summary: Record<string, number>;
  checks: Check[];
}

export const show = (r: Result) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

/** `berth doctor <args> -o json` with exactly `env` (plus PATH and HOME); the parsed report and the raw result. */
export async function doctorJson(args: string[], env: Record<string, string | undefined>, home: string): Promise<{ r: Result; report: Report }> {
  const r = await runBerth(['doctor', ...args, '-o', 'json'], { PATH, HOME: home, ...env });
  let report: Report;
  try {
    report = JSON.parse(r.stdout) as Report;
  } catch {
    assert.fail(`doctor printed no JSON report:\n${show(r)}`);
  }
  return { r, report };
}

export function checkOf(report: Report, id: string): Check {
  const c = report.checks.find((x) => x.id === id);
  assert.ok(c, `no check "${id}" in the report: ${report.checks.map((x) => x.id).join(', ')}`);
  return c;
}

export const failed = (report: Report) => report.checks.filter((c) => c.status === 'fail').map((c) => c.id).sort();

// ---- a toy broker ---------------------------------------------------------------------------

export interface ToyFaults {
  /** Two plans share one id. */
  duplicatePlanIds?: boolean;
  /** Any X-Broker-API-Version is accepted (no 412). */
  acceptsAnyVersion?: boolean;
  /** last_operation of the async plan always says "in progress". */
  neverFinishes?: boolean;
  /** last_operation of an unknown instance answers 200 succeeded. */
  unknownLastOperation200?: boolean;
  /** A conflicting provision answers 200 instead of 409 (and an identical repeat 201). */
  noConflict?: boolean;
  /** Requires these basic-auth credentials. */
  credentials?: { username: string; password: string };
  /** Serves HTTPS with this key and certificate (PEM). */
  tls?: { key: string; cert: string };
}

export interface ToyBroker {
  url: string;
  /** Instance ids provisioned and not deprovisioned. */
  live(): string[];
  close(): Promise<void>;
}

export const TOY = { service: 'toy-service', async: 'toy-async', sync: 'toy-sync', other: 'toy-other' };

/** A deliberately simple OSB broker: an in-memory map, with the faults asked for. */
export async function startToyBroker(faults: ToyFaults = {}): Promise<ToyBroker> {
  const instances = new Map<string, { plan_id: string; space_guid?: string; parameters: string; ready: boolean; operation?: string }>();
  const bindings = new Set<string>();
  const handler: http.RequestListener = (req, res) => {
    let text = '';
    req.on('data', (c) => (text += c));
    req.on('end', () => {
      const reply = (status: number, body: unknown = {}, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
        res.end(JSON.stringify(body));
      };
      if (faults.credentials) {
        const want = 'Basic ' + Buffer.from(`${faults.credentials.username}:${faults.credentials.password}`).toString('base64');
        if (req.headers.authorization !== want) return reply(401, { description: 'unauthorized' });
      }
      const version = req.headers['x-broker-api-version'];
      if (!faults.acceptsAnyVersion && (typeof version !== 'string' || !/^2\.1[3-7]$/.test(version))) return reply(412, { error: 'PreconditionFailed', description: 'version' });
      const url = new URL(req.url ?? '/', 'http://toy');
      const path = url.pathname.split('/').filter(Boolean);
      if (req.method === 'GET' && url.pathname === '/v2/catalog') {
        return reply(200, {
          services: [
            {
              id: TOY.service,
              name: 'toy',
              description: 'a toy',
              bindable: true,
              plans: [
                { id: TOY.async, name: 'async', description: 'async plan' },
                { id: TOY.sync, name: 'sync', description: 'sync plan' },
                { id: faults.duplicatePlanIds ? TOY.sync : TOY.other, name: 'other', description: 'another plan' },
              ],
            },
          ],
        });
      }
      if (path[0] !== 'v2' || path[1] !== 'service_instances' || !path[2]) return reply(404, {});
      const id = path[2];
      const existing = instances.get(id);
      if (path.length === 4 && path[3] === 'last_operation' && req.method === 'GET') {
        if (!existing) return faults.unknownLastOperation200 ? reply(200, { state: 'succeeded' }) : reply(404, { description: 'no such instance' });
        if (!existing.ready && faults.neverFinishes) return reply(200, { state: 'in progress', description: 'still thinking' }, { 'Retry-After': '1' });
        existing.ready = true;
        return reply(200, { state: 'succeeded' });
      }
      if (path.length > 3) {
        // Bindings: synchronous, credentials { token }.
        const binding = `${id}/${path[4]}`;
        if (req.method === 'PUT') {
          const repeat = bindings.has(binding);
          bindings.add(binding);
          return reply(repeat ? 200 : 201, { credentials: { token: 'toy-token' } });
        }
        if (req.method === 'DELETE') return bindings.delete(binding) ? reply(200, {}) : reply(410, {});
        return reply(404, {});
      }
      if (req.method === 'PUT') {
        let body: { service_id?: string; plan_id?: string; space_guid?: string; parameters?: unknown };
        try {
          body = JSON.parse(text);
        } catch {
          return reply(400, { description: 'malformed' });
        }
        if (!body.service_id || !body.plan_id || ![TOY.async, TOY.sync, TOY.other].includes(body.plan_id)) return reply(400, { description: 'bad ids' });
        const isAsync = body.plan_id === TOY.async;
        if (isAsync && url.searchParams.get('accepts_incomplete') !== 'true') return reply(422, { error: 'AsyncRequired', description: 'async only' });
        const attributes = { plan_id: body.plan_id, space_guid: body.space_guid, parameters: JSON.stringify(body.parameters ?? {}) };
        if (existing) {
          const same = existing.plan_id === attributes.plan_id && existing.space_guid === attributes.space_guid && existing.parameters === attributes.parameters;
          if (faults.noConflict) return reply(same ? 201 : 200, {});
          if (!same) return reply(409, { description: 'conflict' });
          if (!existing.ready) return reply(202, { operation: existing.operation });
          return reply(200, {});
        }
        const operation = isAsync ? randomUUID() : undefined;
        instances.set(id, { ...attributes, ready: !isAsync, operation });
        return isAsync ? reply(202, { operation }, { 'Retry-After': '1' }) : reply(201, {});
      }
      if (req.method === 'DELETE') {
        if (!existing) return reply(410, {});
        instances.delete(id);
        return reply(200, {});
      }
      return reply(405, {});
    });
  };
  const server = faults.tls ? https.createServer(faults.tls, handler) : http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `${faults.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    live: () => [...instances.keys()],
    close: () => new Promise((r) => server.close(() => r())),
  };
}
