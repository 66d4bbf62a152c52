// A throwaway PostgreSQL cluster for tests that stop and restart the server
// (never the machine's shared one): initdb into a temp dir, pg_ctl start on a
// free port with its socket in that dir. Stopped with pg_ctl (fast or
// immediate), and at the end by the postmaster's PID if it is still there.
// Running as root, initdb and pg_ctl run as the `postgres` user (they refuse
// to run as root), in a directory that user owns.
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './berth.ts';

const run = promisify(execFile);

export const PG_BIN = process.env.BERTH_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface ThrowawayPostgres {
  port: number;
  dir: string;
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  url(database?: string): string;
  /** The postmaster's PID while it runs. */
  pid(): number | undefined;
  start(): Promise<void>;
  /** fast: disconnect clients and shut down cleanly; immediate: like a crash (recovery on the next start). */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Stops the server (by PID if pg_ctl cannot) and removes the directory. */
  destroy(): Promise<void>;
}

async function asPostgres(cmd: string, args: string[], dir: string) {
  const isRoot = userInfo().uid === 0;
  const file = isRoot ? 'runuser' : cmd;
  const argv = isRoot ? ['-u', 'postgres', '--', cmd, ...args] : args;
  return run(file, argv, { cwd: dir, timeout: 120_000 });
}

/**
 * `passwordAuth`: every role but `postgres` logs in over TCP with its password (scram-sha-256), so
 * what the server checks only for passwords (VALID UNTIL) is in effect; `postgres` is still trusted.
 */
export async function startThrowawayPostgres(opts: { passwordAuth?: boolean } = {}): Promise<ThrowawayPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-pg-'));
  if (userInfo().uid === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const data = join(dir, 'data');
  const port = await freePort();
  await asPostgres(join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions'], dir);
  if (opts.passwordAuth) {
    // Rewritten in place: the file keeps the owner (postgres) initdb gave it.
    writeFileSync(
      join(data, 'pg_hba.conf'),
      ['local all all trust', 'host all postgres 127.0.0.1/32 trust', 'host all all 127.0.0.1/32 scram-sha-256', ''].join('\n'),
    );
  }

  const pid = (): number | undefined => {
    const file = join(data, 'postmaster.pid');
    if (!existsSync(file)) return undefined;
    const n = Number(readFileSync(file, 'utf8').split('\n')[0]);
    if (!Number.isInteger(n) || n <= 0) return undefined;
    try {
      process.kill(n, 0);
      return n;
    } catch {
      return undefined;
    }
  };
  const start = async () => {
    await asPostgres(
      join(PG_BIN, 'pg_ctl'),
      ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start'],
      dir,
    );
  };
  const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
    await asPostgres(join(PG_BIN, 'pg_ctl'), ['-D', data, '-m', mode, '-w', '-t', '60', 'stop'], dir);
  };
  await start();
  return {
    port,
    dir,
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    pid,
    start,
    stop,
    destroy: async () => {
      const p = pid();
      if (p !== undefined) {
        try {
          await stop('immediate');
        } catch {
          process.kill(p, 'SIGQUIT');
        }
        for (let i = 0; i < 100 && pid() !== undefined; i++) await new Promise((r) => setTimeout(r, 100));
        const left = pid();
        if (left !== undefined) process.kill(left, 'SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
