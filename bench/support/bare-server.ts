// Baselines for bench/broker.bench.ts: a bare node:http server that does the
// least the same request needs. `catalog <file>` returns fixed bytes;
// `last-operation <database-url>` runs the same single-row SELECT with pg: by
// operation id when the query names one (as Berth does), else the instance's latest.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import pg from 'pg';

const [mode, arg, port] = process.argv.slice(2);
let handler: (url: string) => Promise<[number, string | Buffer]>;
if (mode === 'catalog') {
  const body = readFileSync(arg!);
  handler = async () => [200, body];
} else {
  const pool = new pg.Pool({ connectionString: arg, max: 10 });
  handler = async (url) => {
    const parsed = new URL(url, 'http://x');
    const id = decodeURIComponent(parsed.pathname.split('/')[3]!);
    const operation = parsed.searchParams.get('operation');
    const { rows } = operation
      ? await pool.query('SELECT instance_id, state, description FROM operations WHERE id = $1', [operation])
      : await pool.query('SELECT state, description FROM operations WHERE instance_id = $1 AND binding_id IS NULL ORDER BY created_at DESC LIMIT 1', [id]);
    return rows[0] ? [200, JSON.stringify({ state: rows[0].state, description: rows[0].description })] : [404, '{}'];
  };
}
createServer(async (req, res) => {
  const [status, body] = await handler(req.url ?? '/');
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(body);
}).listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
