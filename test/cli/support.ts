// Runs the real `berth` executable (bin/berth, as a user's shell would) against a real Berth
// started as `npm start` starts it, with the CLI's test catalog and the paced test provisioner.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { REPO, spawnBerth, TEST_CREDENTIALS, type BerthProcess } from '../support/berth.ts';
import { ADMIN_URL } from '../support/postgres.ts';

export const BERTH_BIN = join(REPO, 'bin/berth');
export const CATALOG = join(REPO, 'test/fixtures/catalog-cli.yaml');
export const MODULES = join(REPO, 'test/cli/paced-provisioner.ts');

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliWorld {
  broker: BerthProcess;
  /** The CLI's environment: the broker's URL and credentials, and a config dir of its own (the name state file). */
  env: Record<string, string>;
  berth(args: string[], extraEnv?: Record<string, string | undefined>): Promise<Result>;
  stop(): Promise<void>;
}

/** PATH with this Node 24 first, so bin/berth runs it and not an older node. */
export const PATH = `${dirname(process.execPath)}:${process.env.PATH}`;

export function runBerth(args: string[], env: Record<string, string | undefined>): Promise<Result> {
  return new Promise((resolve) => {
    execFile(BERTH_BIN, args, { env: env as NodeJS.ProcessEnv, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function startCliWorld(): Promise<CliWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-cli-test-'));
  const broker = await spawnBerth({
    CATALOG_PATH: CATALOG,
    BERTH_PROVISIONER_MODULES: MODULES,
    BERTH_DATA_DIR: join(dir, 'data'),
    BERTH_POSTGRES_SHARED_URL: ADMIN_URL,
    BERTH_POLL_INTERVAL_MS: '50',
    BERTH_KUBERNETES_SECRETS: 'false',
    LOG_LEVEL: 'warn',
  });
  const env: Record<string, string> = {
    PATH,
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'config'),
    BERTH_BROKER_URL: broker.url,
    BERTH_BROKER_USERNAME: TEST_CREDENTIALS.username,
    BERTH_BROKER_PASSWORD: TEST_CREDENTIALS.password,
  };
  return {
    broker,
    env,
    berth: (args, extraEnv = {}) => runBerth(args, { ...env, ...extraEnv }),
    async stop() {
      broker.child.kill('SIGTERM');
      await broker.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
