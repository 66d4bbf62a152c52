// `berth doctor --local`: Berth's own installation, from the configuration `berth serve`
// reads (src/config.ts): the database and its migrations, the encryption keys against every
// stored secret, each catalog plan's provisioner (servers reachable, helm and its charts,
// cluster permissions), and the TLS certificate. It reads and never writes: no migration,
// no re-seal, no helm install.
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, loadConfig, type Config } from '../config.ts';
import { CatalogError, loadCatalog } from '../catalog/catalog.ts';
import { openDatabase } from '../db/database.ts';
import { migrationSource } from '../db/migrations/index.ts';
import { SecretBox, UndecryptableError } from '../secret-box.ts';
import { SECRET_TABLES } from '../store/reseal.ts';
import { fail, pass, skip, warn, type Check, type Outcome } from './check.ts';
import { kubernetesPermissions, provisioners } from './local-plans.ts';
import { redactUrl, why, type LocalContext } from './local-context.ts';

export { localContext, type LocalContext } from './local-context.ts';

const config: Check<LocalContext> = {
  id: 'config',
  title: 'Configuration',
  async run(ctx) {
    try {
      ctx.config = loadConfig(ctx.env);
    } catch (err) {
      if (err instanceof ConfigError) return fail(`${err.message}\nFix the environment berth serve runs with.`);
      throw err;
    }
    const c = ctx.config;
    return pass(c.databaseUrl ? `valid; database ${redactUrl(c.databaseUrl)}` : `valid; embedded database in ${c.dataDir}`);
  },
};

const catalog: Check<LocalContext> = {
  id: 'catalog',
  title: 'Catalog',
  async run(ctx) {
    if (!ctx.config) return skip('needs a valid configuration');
    const { loadProvisioners } = await import('../main.ts');
    ctx.provisioners = await loadProvisioners(ctx.config, ctx.log);
    try {
      ctx.catalog = loadCatalog(ctx.config.catalogPath, ctx.provisioners.parseConfig);
    } catch (err) {
      if (err instanceof CatalogError) return fail(`${ctx.config.catalogPath} is invalid (berth serve would not start):\n${err.problems.join('\n')}`);
      throw err;
    }
    return pass(`${ctx.config.catalogPath}: ${ctx.catalog.services.length} offerings, ${ctx.catalog.plans.length} plans`);
  },
};

const database: Check<LocalContext> = {
  id: 'database',
  title: 'Database reachable',
  async run(ctx) {
    const c = ctx.config;
    if (!c) return skip('needs a valid configuration');
    const where = c.databaseUrl ? redactUrl(c.databaseUrl) : `the embedded database in ${c.dataDir}`;
    if (!c.databaseUrl && !existsSync(join(c.dataDir, 'pgdata'))) {
      // Opening it would create it: the doctor only looks.
      ctx.databaseProblem = 'there is no embedded database yet';
      return warn(`there is no embedded database in ${c.dataDir} yet (berth serve creates it at its first start); set DATABASE_URL or BERTH_DATA_DIR if Berth keeps its state elsewhere`);
    }
    try {
      ctx.database = await openDatabase({ url: c.databaseUrl, dataDir: c.dataDir, poolSize: 1, log: ctx.log });
      const { rows } = await ctx.database.knex.raw<{ rows: Array<{ version: string }> }>('SELECT version() AS version');
      return pass(`${where}: ${rows[0]?.version.split(' ').slice(0, 2).join(' ') ?? 'connected'}`);
    } catch (err) {
      const reason = why(err);
      await ctx.database?.close().catch(() => {});
      ctx.database = undefined;
      if (/another Berth process is serving the embedded database/.test(reason)) {
        ctx.databaseProblem = 'a running Berth holds the embedded database';
        return skip(`${where} is in use by a running Berth (embedded mode allows one process); stop it to check the database, or check the running broker with berth doctor --broker`);
      }
      ctx.databaseProblem = 'the database is unreachable';
      return fail(`cannot connect to ${where}: ${reason}. Check DATABASE_URL and that the server is running and accepts Berth's user.`);
    }
  },
};

const migrations: Check<LocalContext> = {
  id: 'migrations',
  title: 'Database migrated',
  async run(ctx) {
    const knex = ctx.database?.knex;
    if (!knex) return skip(ctx.databaseProblem ? `skipped: ${ctx.databaseProblem}` : 'needs the database');
    const known = (await migrationSource.getMigrations([])).map((m) => migrationSource.getMigrationName(m));
    let recorded: string[];
    try {
      recorded = await knex('knex_migrations').orderBy('id').pluck('name');
    } catch {
      return fail(`the database has no migrations at all (no knex_migrations table); run \`berth migrate\` (berth serve also migrates at start)`);
    }
    const pending = known.filter((n) => !recorded.includes(n));
    const unknown = recorded.filter((n) => !known.includes(n));
    const details = { known: known.length, applied: recorded.length, pending, unknown };
    if (unknown.length > 0) {
      return fail(`the database has ${unknown.length} migration(s) this Berth does not know (${unknown.join(', ')}): a newer Berth migrated it; run that version, not this one`, details);
    }
    if (pending.length > 0) return fail(`${pending.length} of ${known.length} migrations not applied (${pending.join(', ')}); run \`berth migrate\``, details);
    return pass(`all ${known.length} migrations applied (latest ${known.at(-1)})`, details);
  },
};

async function secretBoxOf(c: Config): Promise<SecretBox | undefined> {
  if (c.encryptionKeys) return new SecretBox(c.encryptionKeys);
  if (c.databaseUrl) return undefined;
  const { embeddedKeyFile } = await import('../main.ts');
  const keys = await readFile(embeddedKeyFile(c), 'utf8').catch(() => undefined);
  return keys?.trim() ? new SecretBox(keys.trim()) : undefined;
}

const PAGE = 1000;

const encryptionKeys: Check<LocalContext> = {
  id: 'encryption-keys',
  title: 'Encryption keys open every row',
  async run(ctx) {
    const knex = ctx.database?.knex;
    if (!knex || !ctx.config) return skip(ctx.databaseProblem ? `skipped: ${ctx.databaseProblem}` : 'needs the database');
    const box = await secretBoxOf(ctx.config);
    if (!box) return fail('no encryption keys: set BERTH_ENCRYPTION_KEYS (embedded mode: the key file in the data directory is missing)');
    const perKey: Record<string, number> = {};
    const unreadable: string[] = [];
    const legacy: string[] = [];
    let rowsSeen = 0;
    for (const { table, key, columns } of SECRET_TABLES) {
      if (!(await knex.schema.hasTable(table))) continue;
      for (let offset = 0; ; offset += PAGE) {
        const rows = (await knex(table)
          .select([...key, ...columns])
          .orderBy(key.map((column) => ({ column })))
          .limit(PAGE)
          .offset(offset)) as Array<Record<string, string | null>>;
        for (const row of rows) {
          rowsSeen++;
          const rowKey = key.map((k) => String(row[k]));
          const shown = `${table} ${rowKey.join('/')}`;
          const problems: string[] = [];
          for (const column of columns) {
            const sealed = row[column];
            if (sealed == null) continue;
            const keyId = sealed.split(':')[1] ?? '?';
            try {
              box.open(sealed, { table, row: rowKey, column });
              perKey[keyId] = (perKey[keyId] ?? 0) + 1;
            } catch (err) {
              if (!(err instanceof UndecryptableError)) throw err;
              if (err.reason === 'legacy-format') {
                legacy.push(`${shown} ${column}`);
                perKey[keyId] = (perKey[keyId] ?? 0) + 1;
              } else {
                problems.push(`${column} (${err.reason === 'unknown-key' ? `sealed with key "${err.keyId}", not configured` : err.reason === 'not-authentic' ? `does not open with key "${err.keyId}": a different key under that id, or altered` : 'not a Berth ciphertext'})`);
              }
            }
          }
          if (problems.length > 0) unreadable.push(`${shown}: ${problems.join(', ')}`);
        }
        if (rows.length < PAGE) break;
      }
    }
    const counts = Object.entries(perKey).map(([k, n]) => `${n} under "${k}"`).join(', ') || 'no stored secrets yet';
    const details = { rows: rowsSeen, secretsPerKeyId: perKey, activeKeyId: box.activeKeyId, unreadable, legacy };
    if (unreadable.length > 0) {
      const shown = unreadable.slice(0, 20);
      return fail(
        `${unreadable.length} row(s) no configured key opens (BERTH_ENCRYPTION_KEYS is wrong or lacks a key); the broker cannot serve them:\n${shown.join('\n')}${unreadable.length > shown.length ? `\n… and ${unreadable.length - shown.length} more (-o json lists all)` : ''}`,
        details,
      );
    }
    if (legacy.length > 0) return warn(`${counts}; ${legacy.length} secret(s) in the old format not bound to their row: run \`berth keys rotate\``, details);
    const old = Object.keys(perKey).filter((k) => k !== box.activeKeyId);
    if (old.length > 0) return pass(`${rowsSeen} rows, secrets ${counts}; rows under ${old.map((k) => `"${k}"`).join(', ')} move to "${box.activeKeyId}" with \`berth keys rotate\``, details);
    return pass(rowsSeen === 0 ? 'no stored secrets yet' : `${rowsSeen} rows, secrets ${counts}`, details);
  },
};

// ---- TLS -----------------------------------------------------------------------------------

const DAY = 86_400_000;

/** The certificate check on its own, for unit tests: `now` decides. */
export function certificateOutcome(pem: string, file: string, now = Date.now()): Outcome {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    return fail(`${file} holds no readable PEM certificate (${why(err)})`);
  }
  const expires = Date.parse(cert.validTo);
  const days = Math.floor((expires - now) / DAY);
  const subject = cert.subject.split('\n').find((l) => l.startsWith('CN=')) ?? cert.subject.split('\n')[0];
  const details = { file, subject, validTo: new Date(expires).toISOString() };
  if (expires <= now) return fail(`the certificate in ${file} (${subject}) expired on ${new Date(expires).toISOString()}; clients refuse it: renew it`, details);
  if (days < 30) return warn(`the certificate in ${file} (${subject}) expires in ${days} day(s), on ${new Date(expires).toISOString()}; renew it`, details);
  return pass(`${subject}, valid until ${new Date(expires).toISOString()} (${days} days)`, details);
}

const tlsCertificate: Check<LocalContext> = {
  id: 'tls-certificate',
  title: 'TLS certificate',
  async run(ctx) {
    const file = (ctx.config?.env ?? ctx.env).BERTH_TLS_CERT_FILE;
    if (!file) return skip('BERTH_TLS_CERT_FILE is not set (Berth serves plain HTTP)');
    let pem: string;
    try {
      pem = await readFile(file, 'utf8');
    } catch (err) {
      return fail(`cannot read BERTH_TLS_CERT_FILE ${file} (${(err as NodeJS.ErrnoException).code ?? why(err)})`);
    }
    return certificateOutcome(pem, file);
  },
};

export const LOCAL_CHECKS: Check<LocalContext>[] = [config, catalog, database, migrations, encryptionKeys, provisioners, kubernetesPermissions, tlsCertificate];
