// The `berth` executable in Kubernetes mode, run as a child process against the shared test
// control plane with Berth's CRDs, the controller and a Berth behind it (test/controller/support.ts):
// the same walk as broker mode through ServiceInstance/ServiceBinding resources, and the exit codes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { freePort } from '../support/berth.ts';
import { CONTROLLER_CATALOG, SHARD_LABEL, startStack, until, type Stack } from '../controller/support.ts';
import { ADMIN_URL } from '../support/postgres.ts';
import { PATH, runBerth, type Result } from './support.ts';

const show = (r: Result) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
const expectExit = (r: Result, code: number) => assert.equal(r.code, code, show(r));

describe('berth in Kubernetes mode', () => {
  let stack: Stack;
  let ns: string;
  let home: string;
  let env: Record<string, string>;
  /** berth with the test's kubeconfig and namespace; provision and bind get the label that puts them in this stack's shard. */
  const berth = (args: string[], extra: Record<string, string | undefined> = {}) => runBerth([...args, '-n', ns], { ...env, ...extra });
  const label = () => ['-l', `${SHARD_LABEL}=${stack.shard}`];

  before(async () => {
    stack = await startStack();
    ns = await stack.kube.createNamespace('cli-kube');
    home = mkdtempSync(join(tmpdir(), 'berth-cli-kube-'));
    env = { PATH, HOME: home, KUBECONFIG: stack.kube.kubeconfigPath };
  });
  after(async () => {
    if (ns) {
      // Idempotent verbs: whatever a failed test left is removed through the controller before the namespace goes.
      for (const b of ['creds-app', `pg-app`]) await berth(['unbind', b, '--timeout', '60s']).catch(() => undefined);
      for (const i of ['creds', 'orders-db', 'nosuchplan', 'patched']) await berth(['deprovision', i, '--timeout', '60s']).catch(() => undefined);
      await stack?.kube.deleteNamespace(ns).catch(() => undefined);
    }
    await stack?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  test('marketplace and get plans read the ServiceOfferings and ServicePlans the controller published', async () => {
    const plans = await until(async () => {
      const r = await berth(['marketplace']);
      return r.code === 0 && /\npostgresql\s+small\s+free\s+/.test(r.stdout) ? r : undefined;
    }, 'the catalog published as ServicePlans');
    assert.match(plans.stdout, /^OFFERING\s+PLAN\s+FREE\s+DESCRIPTION\n/);
    const offering = await berth(['marketplace', '--offering', 'user-provided']);
    expectExit(offering, 0);
    assert.match(offering.stdout, /provision parameters \(-p key=value\):\n\s+credentials\s+object\s+required/);
  });

  test('user-provided: provision, identical and conflicting repeats, bind, credentials from the Secret, unbind, deprovision', async () => {
    const provision = ['provision', 'creds', '--offering', 'user-provided', '--plan', 'standard', '-p', 'credentials.uri=smtp://mail:25', '-p', 'credentials.port=25', ...label()];
    const created = await berth(provision);
    expectExit(created, 0);
    assert.equal(created.stdout, 'serviceinstance/creds created\n');
    const again = await berth(provision);
    expectExit(again, 0);
    assert.equal(again.stdout, 'serviceinstance/creds already exists (unchanged)\n');
    const conflicting = await berth(['provision', 'creds', '--offering', 'user-provided', '--plan', 'standard', '-p', 'credentials.uri=smtp://other:25', '-p', 'credentials.port=25', ...label()]);
    expectExit(conflicting, 1);
    assert.match(conflicting.stderr, new RegExp(`instance creds already exists in namespace ${ns} with different settings: parameters\\.credentials\\.uri differs`));

    const bound = await berth(['bind', 'creds', '--name', 'creds-app', ...label()]);
    expectExit(bound, 0);
    assert.equal(bound.stdout, 'servicebinding/creds-app created\n');
    const described = await berth(['describe', 'binding', 'creds-app', '--show-secrets', '-o', 'json']);
    expectExit(described, 0);
    const object = JSON.parse(described.stdout);
    assert.equal(object.kind, 'ServiceBinding', 'the resource itself');
    assert.equal(object.credentials.uri, 'smtp://mail:25');
    assert.equal(object.credentials.port, '25', 'Secret values are strings');

    const instances = await berth(['get', 'instances']);
    expectExit(instances, 0);
    assert.match(instances.stdout, /^NAME\s+OFFERING\s+PLAN\s+READY\s+REASON\s+AGE\ncreds\s+user-provided\s+standard\s+True\s+Available\s+\d+s\n$/);
    const text = await berth(['describe', 'instance', 'creds']);
    expectExit(text, 0);
    assert.match(text.stdout, /Conditions:\n\s+TYPE\s+STATUS\s+REASON\s+AGE\s+MESSAGE\n\s+Ready\s+True\s+Available\s+/);
    assert.match(text.stdout, /Bindings:\n\s+NAME\s+SECRET\s+READY\s+AGE\n\s+creds-app\s+creds-app\s+True\s+/);
    const trace = await berth(['trace', 'creds']);
    expectExit(trace, 0);
    assert.match(trace.stdout, /^ServiceInstance\/creds  \(user-provided\/standard at broker berth, instance id [0-9a-f-]{36}\)  Ready=True Available/);
    assert.match(
      trace.stdout,
      /\n│  last operation: create succeeded\n├─ ServiceBinding\/creds-app  Ready=True SecretWritten\n│  │  The credentials are in Secret "creds-app"\.\n│  │  last operation: bind succeeded\n│  └─ Secret\/creds-app: written\n│        keys: .*uri\n└─ provisioned by user-provided \(recorded by the controller at [^)]+\)\n      Nothing: a user-provided instance makes nothing/,
    );
    assert.match(trace.stdout, /\nEvents:\n\s+TYPE\s+REASON\s+AGE\s+MESSAGE\n(.*\n)*\s+Normal\s+Available\s+\d+s\s+The instance is ready\.\n/);

    expectExit(await berth(['unbind', 'creds-app']), 0);
    const unbindAgain = await berth(['unbind', 'creds-app']);
    expectExit(unbindAgain, 0);
    assert.match(unbindAgain.stdout, /does not exist/);
    expectExit(await berth(['deprovision', 'creds']), 0);
    const none = await berth(['get', 'instances', '-o', 'name']);
    expectExit(none, 0);
    assert.equal(none.stdout, '');
  });

  test('postgres: the binding Secret logs in; --timeout is exit 3 and a repeat resumes; unbind revokes the login', async () => {
    const provision = ['provision', 'orders-db', '--offering', 'postgresql', '--plan', 'small', ...label()];
    // 1 ms: the controller cannot have provisioned by then (0.2 s was enough on a quiet machine, and the test raced).
    const timedOut = await berth([...provision, '--timeout', '1ms']);
    expectExit(timedOut, 3);
    assert.match(timedOut.stderr, /berth: timed out after 1 ms while provisioning orders-db is still in progress.*check with `berth describe instance orders-db -n /);
    const resumed = await berth(provision);
    expectExit(resumed, 0);
    assert.equal(resumed.stdout, 'serviceinstance/orders-db already exists (unchanged)\n');

    expectExit(await berth(['bind', 'orders-db', '--name', 'pg-app', '--secret-name', 'pg-app-credentials', ...label()]), 0);
    const described = await berth(['describe', 'binding', 'pg-app', '--show-secrets', '-o', 'json']);
    expectExit(described, 0);
    const credentials = JSON.parse(described.stdout).credentials as { uri: string; username: string };
    const client = new pg.Client({ connectionString: credentials.uri });
    await client.connect();
    try {
      assert.equal((await client.query('SELECT session_user AS who')).rows[0].who, credentials.username);
    } finally {
      await client.end();
    }
    // trace: ServiceInstance → ServiceBinding → its Secret and its login role → the database, from the controller's record.
    const traced = await until(async () => {
      const r = await berth(['trace', 'orders-db']);
      return r.code === 0 && r.stdout.includes(`Role/${credentials.username}: ready`) ? r : undefined;
    }, 'the binding role in the controller\'s record');
    assert.match(traced.stdout, new RegExp(`├─ ServiceBinding/pg-app  Ready=True[^\\n]*\\n(│  [^\\n]*\\n)*│  ├─ Secret/pg-app-credentials: written\\n│  │     keys: [^\\n]*username[^\\n]*\\n│  └─ Role/${credentials.username}: ready\\n│        [^\\n]*logged in with the binding's credentials just now`), traced.stdout);
    assert.match(traced.stdout, /└─ provisioned by postgres \(recorded by the controller at \d{4}-[^)]+\)\n   └─ Database\/berth_i_\w+: ready\n/, traced.stdout);
    // A role dropped behind Berth's back: after a forced resync (--refresh) the record says it is missing.
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    try {
      await admin.query(`DROP ROLE "${credentials.username}"`);
    } finally {
      await admin.end();
    }
    const refreshed = await berth(['trace', 'orders-db', '--refresh']);
    expectExit(refreshed, 0);
    assert.match(refreshed.stdout, new RegExp(`│  └─ Role/${credentials.username}: missing\\n│        The binding's login role does not exist on server "shared"`), refreshed.stdout);

    expectExit(await berth(['unbind', 'pg-app']), 0);
    const refused = new pg.Client({ connectionString: credentials.uri });
    await assert.rejects(refused.connect(), /password authentication failed|does not exist/);
    await refused.end().catch(() => {});
    const deleted = await berth(['deprovision', 'orders-db']);
    expectExit(deleted, 0);
    assert.equal(deleted.stdout, 'serviceinstance/orders-db deleted\n');
  });

  test('exit 1, 2 and 4 in Kubernetes mode', async () => {
    const failed = await berth(['provision', 'nosuchplan', '--offering', 'postgresql', '--plan', 'gigantic', ...label(), '--timeout', '120s']);
    expectExit(failed, 1);
    assert.match(failed.stderr, /^berth: provisioning nosuchplan failed \(PlanNotFound\): .*gigantic.* See `berth describe instance nosuchplan -n /m);
    expectExit(await berth(['deprovision', 'nosuchplan']), 0);

    const upgrade = await berth(['upgrade', 'nosuch']);
    expectExit(upgrade, 1);
    assert.match(upgrade.stderr, /^berth: instance nosuch does not exist in namespace /);

    const port = await freePort();
    const kubeconfig = join(home, 'unreachable.kubeconfig');
    writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n`,
    );
    const down = await berth(['get', 'instances'], { KUBECONFIG: kubeconfig });
    expectExit(down, 4);
    assert.match(down.stderr, new RegExp(`^berth: cannot reach the Kubernetes API server at https://127\\.0\\.0\\.1:${port} while listing serviceinstances`));
  });

  test('upgrade: moves an instance to the catalog\'s new maintenance version through spec.maintenanceInfo; at the latest it exits 0', async () => {
    // The stack's Berth restarted on the same port and database with a catalog whose user-provided plan has a
    // maintenance version: first 1.0.0, then 2.0.0 (the way an operator ships a new version of a plan).
    const restartWith = async (version: string) => {
      const catalog = parseYaml(readFileSync(CONTROLLER_CATALOG, 'utf8'));
      catalog.services[0].plans[0].maintenance_info = { version, description: `user-provided ${version}` };
      // Beside the original, so its relative chart paths still resolve.
      const path = join(dirname(CONTROLLER_CATALOG), `.catalog-controller-${process.pid}-${version}.yaml`);
      writeFileSync(path, toYaml(catalog));
      try {
        await stack.restartBerth(path);
      } finally {
        rmSync(path, { force: true });
      }
    };
    await restartWith('1.0.0');
    const provision = ['provision', 'patched', '--offering', 'user-provided', '--plan', 'standard', '-p', 'credentials.uri=smtp://mail:25', ...label()];
    expectExit(await berth(provision), 0);
    const current = await berth(['upgrade', 'patched']);
    expectExit(current, 0);
    assert.equal(current.stdout, 'serviceinstance/patched is already at maintenance version 1.0.0\n');

    await restartWith('2.0.0');
    const upgraded = await berth(['upgrade', 'patched']);
    expectExit(upgraded, 0);
    assert.equal(upgraded.stdout, 'serviceinstance/patched upgraded to maintenance version 2.0.0 (from 1.0.0)\n');
    assert.match(upgraded.stderr, /upgrading patched: ready/);
    const described = await berth(['describe', 'instance', 'patched']);
    expectExit(described, 0);
    assert.match(described.stdout, /\nMaintenance:\s+2\.0\.0\n/);
    const resource = await stack.get('serviceinstances', ns, 'patched');
    assert.deepEqual(resource.spec.maintenanceInfo, { version: '2.0.0' });
    assert.equal(resource.status.maintenanceInfo.version, '2.0.0');
    // The broker agrees: its instance is at 2.0.0.
    const fetched = await stack.berth.client.request('GET', `/v2/service_instances/${resource.status.instanceID}`);
    assert.equal(fetched.body.maintenance_info?.version, '2.0.0');
    const again = await berth(['upgrade', 'patched']);
    expectExit(again, 0);
    assert.equal(again.stdout, 'serviceinstance/patched is already at maintenance version 2.0.0\n');
    expectExit(await berth(['deprovision', 'patched']), 0);
  });
});
