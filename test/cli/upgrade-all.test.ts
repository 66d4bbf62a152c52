// `berth upgrade --all` in broker mode against a real Berth (spawned, embedded state) whose catalog is
// replaced by one with new maintenance versions, as an operator rolls one out: --dry-run changes nothing,
// --plan limits the rollout, a failure is summed up and a second run continues where the first stopped.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, spawnBerth, TEST_CREDENTIALS, type BerthProcess } from '../support/berth.ts';
import { MODULES, PATH, runBerth, type Result } from './support.ts';

const show = (r: Result) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
const expectExit = (r: Result, code: number) => assert.equal(r.code, code, show(r));

function catalog(dir: string, versions: { fast: string; other: string }): string {
  const plan = (id: string, name: string, version: string) => ({
    id,
    name,
    description: `paced, ${name}`,
    maintenance_info: { version },
    provisioner: { kind: 'paced', steps: 1, step_ms: 100 },
  });
  const file = join(dir, `catalog-${versions.fast}-${versions.other}.yaml`);
  writeFileSync(
    file,
    JSON.stringify({
      services: [
        {
          id: 'svc-upgrade-all',
          name: 'paced',
          description: 'paced',
          bindable: false,
          instances_retrievable: true,
          plan_updateable: true,
          plans: [plan('plan-fast', 'fast', versions.fast), plan('plan-other', 'other', versions.other)],
        },
      ],
    }),
  );
  return file;
}

describe('berth upgrade --all (broker mode)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-upgrade-all-'));
  let port: number;
  let broker: BerthProcess | undefined;
  const env = () => ({
    PATH,
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'config'),
    BERTH_BROKER_URL: `http://127.0.0.1:${port}`,
    BERTH_BROKER_USERNAME: TEST_CREDENTIALS.username,
    BERTH_BROKER_PASSWORD: TEST_CREDENTIALS.password,
  });
  const berth = (args: string[]) => runBerth(args, env());

  /** (Re)starts the broker on the same port and state with `catalogPath`. */
  async function serve(catalogPath: string): Promise<void> {
    if (broker) {
      broker.child.kill('SIGTERM');
      await broker.exited;
    }
    broker = await spawnBerth(
      { CATALOG_PATH: catalogPath, BERTH_PROVISIONER_MODULES: MODULES, BERTH_DATA_DIR: join(dir, 'data'), BERTH_POLL_INTERVAL_MS: '50', BERTH_KUBERNETES_SECRETS: 'false', LOG_LEVEL: 'warn' },
      { port },
    );
  }

  const versionOf = async (name: string) => {
    const r = await berth(['describe', 'instance', name, '-o', 'json']);
    expectExit(r, 0);
    return JSON.parse(r.stdout).instance?.maintenance_info?.version;
  };

  before(async () => {
    port = await freePort();
    await serve(catalog(dir, { fast: '1.0.0', other: '1.0.0' }));
    for (const [name, plan, extra] of [['alpha', 'fast', []], ['bravo', 'fast', []], ['charlie', 'other', ['-p', 'refuse_changes=true']]] as const) {
      expectExit(await berth(['provision', name, '--offering', 'paced', '--plan', plan, ...extra]), 0);
    }
    await serve(catalog(dir, { fast: '2.0.0', other: '1.1.0' }));
  });

  after(async () => {
    broker?.child.kill('SIGTERM');
    await broker?.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  test('--dry-run lists every instance behind and changes nothing', async () => {
    const r = await berth(['upgrade', '--all', '--dry-run']);
    expectExit(r, 0);
    assert.equal(
      r.stdout,
      [
        'instance/alpha would be upgraded (paced/fast) from 1.0.0 to 2.0.0',
        'instance/bravo would be upgraded (paced/fast) from 1.0.0 to 2.0.0',
        'instance/charlie would be upgraded (paced/other) from 1.0.0 to 1.1.0',
        '',
      ].join('\n'),
    );
    assert.match(r.stderr, /dry run: 3 to upgrade, 0 already current/);
    assert.equal(await versionOf('alpha'), '1.0.0');
    const again = await berth(['upgrade', '--all', '--dry-run']);
    assert.equal(again.stdout, r.stdout, 'a dry run is repeatable: nothing moved');
  });

  test('--plan upgrades only that plan\'s instances, with progress on stderr and a summary', async () => {
    const r = await berth(['upgrade', '--all', '--plan', 'fast', '--concurrency', '2']);
    expectExit(r, 0);
    assert.equal(
      r.stdout.split('\n').filter(Boolean).sort().join('\n'),
      ['instance/alpha upgraded to maintenance version 2.0.0', 'instance/bravo upgraded to maintenance version 2.0.0'].join('\n'),
    );
    assert.match(r.stderr, /\[1\/2\] upgrading (alpha|bravo) \(paced\/fast\) from 1\.0\.0 to 2\.0\.0/);
    // Each wait's progress as whole lines (several run at once), ending in how it went.
    assert.match(r.stderr, /Z upgrading alpha: succeeded \(\d\d:\d\d\)\n/);
    assert.match(r.stderr, /Z upgrading bravo: succeeded \(\d\d:\d\d\)\n/);
    assert.match(r.stderr, /upgrade --all: 2 upgraded, 0 already current, 0 failed/);
    assert.equal(await versionOf('alpha'), '2.0.0');
    assert.equal(await versionOf('bravo'), '2.0.0');
    assert.equal(await versionOf('charlie'), '1.0.0');
  });

  test('a failed upgrade is summed up (exit 1); re-running after the cause is fixed continues where it stopped', async () => {
    const failed = await berth(['upgrade', '--all']);
    expectExit(failed, 1);
    assert.match(failed.stderr, /upgrade --all: 0 upgraded, 2 already current, 1 failed/);
    assert.match(failed.stderr, /charlie: upgrading charlie failed: The paced test service refused the change: it is locked/);
    assert.match(failed.stderr, /run `berth upgrade --all` again after fixing the cause \(finished ones are skipped\)/);
    assert.equal(await versionOf('charlie'), '1.0.0');

    // An update without maintenance_info changes the parameter, not the maintenance version.
    expectExit(await berth(['update', 'charlie', '-p', 'refuse_changes=false']), 0);
    assert.equal(await versionOf('charlie'), '1.0.0');

    const resumed = await berth(['upgrade', '--all']);
    expectExit(resumed, 0);
    assert.equal(resumed.stdout, 'instance/charlie upgraded to maintenance version 1.1.0\n');
    assert.match(resumed.stderr, /upgrade --all: 1 upgraded, 2 already current, 0 failed/);
    assert.equal(await versionOf('charlie'), '1.1.0');

    const nothing = await berth(['upgrade', '--all']);
    expectExit(nothing, 0);
    assert.equal(nothing.stdout, '');
    assert.match(nothing.stderr, /upgrade --all: 0 upgraded, 3 already current, 0 failed/);
  });

  test('usage: a name and --all together, --plan without --all, an unknown plan, a bad --concurrency', async () => {
    for (const [args, message] of [
      [['upgrade', 'alpha', '--all'], /give an instance name or --all, not both/],
      [['upgrade', 'alpha', '--plan', 'fast'], /--plan goes with --all/],
      [['upgrade'], /name the instance to upgrade, or give --all/],
      [['upgrade', '--all', '--plan', 'huge'], /no plan "huge" in the broker's catalog; plans: paced\/fast, paced\/other/],
      [['upgrade', '--all', '--concurrency', '0'], /--concurrency 0 must be a whole number from 1 to 64/],
    ] as const) {
      const r = await berth([...args]);
      assert.equal(r.code, 2, `berth ${args.join(' ')}\n${show(r)}`);
      assert.match(r.stderr, message);
    }
  });
});
