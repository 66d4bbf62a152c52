// Initialising a PGlite cluster (its initdb) takes 10 s or more, so the first
// embedded start copies a cluster that was initialised and migrated once, at
// install time (`npm install` runs scripts/embedded-template.ts) or on the
// first start that finds none. Templates live in node_modules/.cache/berth,
// keyed by the PGlite version and the migration files: a changed migration or
// PGlite makes a new one. Migrations added after a data directory was seeded
// apply on top at start, as for any database.
import { createHash } from 'node:crypto';
import { cpSync, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = join(import.meta.dirname, '../..');
const CACHE = join(REPO_ROOT, 'node_modules/.cache/berth');
const MIGRATIONS = join(import.meta.dirname, 'migrations');

/** Initialises and migrates a PGlite cluster in `<dataDir>/pgdata`. */
export type BuildDataDir = (dataDir: string) => Promise<void>;

async function templateKey(): Promise<string> {
  const hash = createHash('sha256');
  const pglite = join(dirname(fileURLToPath(import.meta.resolve('@electric-sql/pglite'))), '../package.json');
  hash.update(JSON.parse(await readFile(pglite, 'utf8')).version);
  for (const file of (await readdir(MIGRATIONS)).sort()) hash.update(file).update(await readFile(join(MIGRATIONS, file)));
  return hash.digest('hex').slice(0, 16);
}

/** The template cluster for this PGlite and these migrations, built if there is none yet. */
export async function embeddedTemplate(build: BuildDataDir): Promise<string> {
  const template = join(CACHE, `pglite-${await templateKey()}`);
  if (existsSync(join(template, 'PG_VERSION'))) return template;
  await mkdir(CACHE, { recursive: true });
  const work = await mkdtemp(join(CACHE, 'building-'));
  try {
    await build(work);
    // Whoever renames first wins; a concurrent builder's copy is as good.
    await rename(join(work, 'pgdata'), template).catch((err: NodeJS.ErrnoException) => {
      if (!existsSync(join(template, 'PG_VERSION'))) throw err;
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return template;
}

/**
 * Gives an empty or missing PGlite data directory the template's contents
 * (copied next to it, then renamed, so a kill mid-copy leaves no half cluster).
 * Without a usable template (e.g. a read-only node_modules) PGlite initialises
 * the directory itself, as slowly as before.
 */
export async function seedDataDir(pgdata: string, build: BuildDataDir): Promise<void> {
  const entries = await readdir(pgdata).catch(() => []);
  if (entries.length > 0) return;
  let template: string;
  try {
    template = await embeddedTemplate(build);
  } catch {
    return;
  }
  const staging = `${pgdata}.seeding-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  // Synchronous: nothing is served yet, and Node's native copy of the ~1,000
  // files is several times faster than the promise-based one.
  cpSync(template, staging, { recursive: true });
  await rm(pgdata, { recursive: true, force: true });
  await rename(staging, pgdata);
}
