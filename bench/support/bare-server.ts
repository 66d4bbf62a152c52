// Baselines for bench/broker.bench.ts: a bare node:http server that does the
// least the same request needs. `catalog <file>` returns fixed bytes;
// `last-operation <database-url>` runs the same single-row SELECT with pg (the
// very statement text Berth's status read uses, unprepared, as a plain pg server
// would send it): by operation id when the query names one (as Berth does),
// else the instance's latest.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { STATUS_BY_ID, STATUS_LATEST_OF_INSTANCE } from '../../src/store/operations.ts';

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
    const halfLease = 15_000; // Berth's default lease (30 s) halved, as its status read binds it
    const { rows } = operation ? await pool.query(STATUS_BY_ID.text, [halfLease, operation]) : await pool.query(STATUS_LATEST_OF_INSTANCE.text, [halfLease, id]);
    return rows[0] ? [200, JSON.stringify({ state: rows[0].state, description: rows[0].description })] : [404, '{}'];
  };
}
createServer(async (req, res) => {
  const [status, body] = await handler(req.url ?? '/');
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(body);
}).listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
