// Baseline for bench/embedded-start.bench.ts: what every first embedded start
// paid before templates, PGlite initialising a cluster in an empty directory.
import { PGlite } from '@electric-sql/pglite';

const db = await PGlite.create({ dataDir: process.argv[2]! });
await db.query('SELECT 1');
await db.close();
