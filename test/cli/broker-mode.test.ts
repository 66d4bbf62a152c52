// The `berth` executable in broker mode, run as a child process against a real Berth: the
// developer's walk (provision → bind → log in with the credentials → unbind → deprovision) on
// the user-provided and postgres plans, every exit code, idempotent repeats and output formats.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parse as parseYaml } from 'yaml';
import { freePort } from '../support/berth.ts';
import { ADMIN_URL } from '../support/postgres.ts';
import { startCliWorld, type CliWorld, type Result } from './support.ts';

const show = (r: Result) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
const expectExit = (r: Result, code: number) => assert.equal(r.code, code, show(r));

describe('berth in broker mode', () => {
  let w: CliWorld;
  before(async () => {
    w = await startCliWorld();
  });
  after(async () => {
    await w?.stop();
  });

  test('marketplace lists every plan in kubectl-style columns, and -o json is the OSB catalog', async () => {
    const table = await w.berth(['marketplace']);
    expectExit(table, 0);
    assert.match(table.stdout, /^OFFERING\s+PLAN\s+FREE\s+DESCRIPTION\n/);
    assert.match(table.stdout, /\npostgresql\s+small\s+free\s+A database allowing up to 20 connections/);
    assert.match(table.stdout, /\npaced\s+failing\s+paid\s+/);
    const json = await w.berth(['marketplace', '-o', 'json']);
    expectExit(json, 0);
    const plans = JSON.parse(json.stdout) as Array<{ offering: string; name: string; id: string }>;
    assert.deepEqual(
      plans.map((p) => `${p.offering}/${p.name}`),
      ['user-provided/standard', 'postgresql/small', 'paced/slow', 'paced/failing'],
    );
    const offering = await w.berth(['marketplace', '--offering', 'user-provided']);
    expectExit(offering, 0);
    assert.match(offering.stdout, /provision parameters \(-p key=value\):\n\s+credentials\s+object\s+required\s+What apps receive/);
  });

  test('user-provided: -p builds typed JSON, repeats are idempotent or name the differing key, credentials round-trip', async () => {
    const provision = ['provision', 'stripe', '--offering', 'user-provided', '--plan', 'standard', '-p', 'credentials.key=sk_test_1', '-p', 'credentials.port=443', '-p', 'credentials.live=false'];
    const created = await w.berth(provision);
    expectExit(created, 0);
    assert.equal(created.stdout, 'instance/stripe created\n');

    const again = await w.berth(provision);
    expectExit(again, 0);
    assert.equal(again.stdout, 'instance/stripe already exists (unchanged)\n');

    const conflicting = await w.berth([...provision.slice(0, 6), '-p', 'credentials.key=sk_test_2', '-p', 'credentials.port=443', '-p', 'credentials.live=false']);
    expectExit(conflicting, 1);
    assert.match(conflicting.stderr, /^berth: instance stripe already exists with different settings: parameters\.credentials\.key differs \(another value\)\. Change them with `berth update stripe -p …`/);
    assert.doesNotMatch(conflicting.stderr, /sk_test/, 'parameter values are never echoed');

    const otherPlan = await w.berth(['provision', 'stripe', '--offering', 'postgresql', '--plan', 'small']);
    expectExit(otherPlan, 1);
    assert.match(otherPlan.stderr, /already exists with different settings: offering is "user-provided", not "postgresql"/);

    const bound = await w.berth(['bind', 'stripe', '--name', 'shop']);
    expectExit(bound, 0);
    assert.equal(bound.stdout, 'binding/shop created\n');
    const hidden = await w.berth(['describe', 'binding', 'shop', '-o', 'json']);
    expectExit(hidden, 0);
    assert.deepEqual(JSON.parse(hidden.stdout).binding.credentials, { key: '<hidden>', port: '<hidden>', live: '<hidden>' });
    const shown = await w.berth(['describe', 'binding', 'shop', '-o', 'json', '--show-secrets']);
    expectExit(shown, 0);
    assert.deepEqual(JSON.parse(shown.stdout).binding.credentials, { key: 'sk_test_1', port: 443, live: false });

    const list = await w.berth(['get', 'bindings']);
    expectExit(list, 0);
    assert.match(list.stdout, /^NAME\s+INSTANCE\s+READY\s+REASON\s+AGE\nshop\s+stripe\s+True\s+\d+s\n$/);

    // trace: the binding and its credential keys, and that the provisioner made nothing anywhere.
    const traced = await w.berth(['trace', 'stripe']);
    expectExit(traced, 0);
    assert.match(traced.stdout, /^instance\/stripe  ready=True[^\n]*\n(│  [^\n]*\n)*├─ binding\/shop  ready=True[^\n]*\n│  └─ credentials: key, port, live\n/);
    assert.match(traced.stdout, /└─ provisioned by user-provided \(looked at by the broker at [^)]+\)\n      Nothing: a user-provided instance makes nothing on a server or in a cluster/);
    assert.doesNotMatch(traced.stdout, /sk_test/);

    expectExit(await w.berth(['unbind', 'shop']), 0);
    const unbindAgain = await w.berth(['unbind', 'shop']);
    expectExit(unbindAgain, 0);
    assert.match(unbindAgain.stdout, /^binding\/shop does not exist/);
    const gone = await w.berth(['deprovision', 'stripe']);
    expectExit(gone, 0);
    assert.equal(gone.stdout, 'instance/stripe deleted\n');
    const goneAgain = await w.berth(['deprovision', 'stripe']);
    expectExit(goneAgain, 0);
    assert.match(goneAgain.stdout, /^instance\/stripe does not exist/);
  });

  test('postgres: provision waits with progress on stderr, the binding logs in, unbind revokes the login, deprovision', async () => {
    const name = `cli-pg-${process.pid}`;
    try {
      const provisioned = await w.berth(['provision', name, '--offering', 'postgresql', '--plan', 'small', '-p', 'extensions=["citext"]']);
      expectExit(provisioned, 0);
      assert.equal(provisioned.stdout, `instance/${name} created\n`);
      // stderr is not a terminal here: timestamped lines, ending with the outcome.
      assert.match(provisioned.stderr, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z provisioning ${name}: started\\n`));
      assert.match(provisioned.stderr, new RegExp(`Z provisioning ${name}: succeeded \\(\\d\\d:\\d\\d\\)\\n$`));

      const instances = await w.berth(['get', 'instances', '-o', 'wide']);
      expectExit(instances, 0);
      assert.match(instances.stdout, /^NAME\s+OFFERING\s+PLAN\s+READY\s+REASON\s+AGE\s+INSTANCE-ID\s+MESSAGE\n/);
      assert.match(instances.stdout, new RegExp(`\\n${name}\\s+postgresql\\s+small\\s+True\\s+\\d+s\\s+[0-9a-f-]{36}`));

      const bound = await w.berth(['bind', name, '--name', `${name}-app`, '-o', 'json', '--show-secrets']);
      expectExit(bound, 0);
      const credentials = JSON.parse(bound.stdout).binding.credentials as { uri: string; username: string; database: string };
      const client = new pg.Client({ connectionString: credentials.uri });
      await client.connect();
      try {
        const { rows } = await client.query('SELECT session_user AS who, current_database() AS db');
        assert.deepEqual(rows[0], { who: credentials.username, db: credentials.database });
      } finally {
        await client.end();
      }

      const described = await w.berth(['describe', 'instance', name]);
      expectExit(described, 0);
      assert.match(described.stdout, /^Name:\s+cli-pg-\d+\n/);
      assert.match(described.stdout, /Last operation:\n\s+Type:\s+provision\n\s+State:\s+succeeded\n/);
      assert.match(described.stdout, new RegExp(`Bindings:\\n\\s+NAME\\s+BINDING-ID\\s+AGE\\n\\s+${name}-app\\s+`));

      // trace: instance → binding → its login role (checked by logging in) → the database the provisioner made.
      const traced = await w.berth(['trace', name]);
      expectExit(traced, 0);
      const role = new RegExp(`├─ binding/${name}-app[^\\n]*\\n(│  [^\\n]*\\n)*│  └─ Role/${credentials.username}: ready\\n│        [^\\n]*member of berth_o_\\w+[^\\n]*logged in with the binding's credentials just now`);
      assert.match(traced.stdout, role, traced.stdout);
      assert.match(traced.stdout, new RegExp(`└─ provisioned by postgres \\(looked at by the broker at \\d{4}-[^)]*\\)\\n   └─ Database/${credentials.database}: ready\\n      │  on server "shared"`), traced.stdout);
      assert.match(traced.stdout, /      └─ Role\/berth_o_\w+: ready\n            owner role/);
      const tracedJson = await w.berth(['trace', name, '-o', 'json']);
      expectExit(tracedJson, 0);
      const tree = JSON.parse(tracedJson.stdout);
      assert.equal(tree.provisioned.kind, 'postgres');
      assert.equal(tree.provisioned.resources[0].name, credentials.database);
      assert.ok(!tracedJson.stdout.includes(new URL(credentials.uri).password), 'trace never shows a password');

      // A login role dropped behind Berth's back: trace says it is missing, under its binding.
      const admin = new pg.Client({ connectionString: ADMIN_URL });
      await admin.connect();
      try {
        await admin.query(`DROP ROLE "${credentials.username}"`);
      } finally {
        await admin.end();
      }
      const missing = await w.berth(['trace', name]);
      expectExit(missing, 0);
      assert.match(missing.stdout, new RegExp(`│  └─ Role/${credentials.username}: missing\\n│        The binding's login role does not exist on server "shared"`), missing.stdout);

      expectExit(await w.berth(['unbind', `${name}-app`]), 0);
      const refused = new pg.Client({ connectionString: credentials.uri });
      await assert.rejects(refused.connect(), /password authentication failed|does not exist/);
      await refused.end().catch(() => {});

      const deleted = await w.berth(['deprovision', name]);
      expectExit(deleted, 0);
      assert.equal(deleted.stdout, `instance/${name} deleted\n`);
      const none = await w.berth(['get', 'instances', '-o', 'name']);
      expectExit(none, 0);
      assert.doesNotMatch(none.stdout, new RegExp(name));
    } finally {
      // Both verbs are idempotent: after a failure above they remove what is left on the shared server.
      await w.berth(['unbind', `${name}-app`]);
      await w.berth(['deprovision', name]);
    }
  });

  test('exit 1: a failed operation prints its description and what to do next', async () => {
    const failed = await w.berth(['provision', 'doomed', '--offering', 'paced', '--plan', 'failing']);
    expectExit(failed, 1);
    assert.match(
      failed.stderr,
      /berth: provisioning doomed failed: The paced test service refused to start: its quota is used up \(raise it or pick another plan\)\. See `berth describe instance doomed`; remove it with `berth deprovision doomed`/,
    );
    const described = await w.berth(['get', 'instances', 'doomed']);
    expectExit(described, 0);
    assert.match(described.stdout, /\ndoomed\s+paced\s+failing\s+False\s+ProvisionFailed\s+/);
    expectExit(await w.berth(['deprovision', 'doomed']), 0);
  });

  test('exit 2: usage errors say what is wrong and touch nothing', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['provision', 'x', '--offering', 'paced'], /required option '--plan <plan>' not specified/],
      [['provision', 'x', '--offering', 'paced', '--plan', 'slow', '--colour'], /unknown option '--colour'/],
      [['provision', 'x', '--offering', 'paced', '--plan', 'slow', '-p', 'novalue'], /-p "novalue" is not key=value/],
      [['provision', 'x', '--offering', 'paced', '--plan', 'slow', '-p', 'a=1', '-p', 'a=2'], /-p a is given twice \(-p a=1 and -p a=2\)/],
      [['provision', 'x', '--offering', 'paced', '--plan', 'huge'], /offering "paced" has no plan "huge"; its plans are slow, failing/],
      [['provision', 'Bad_Name', '--offering', 'paced', '--plan', 'slow'], /instance name "Bad_Name" must be lower-case/],
      [['get', 'instances', '-o', 'xml'], /-o xml is not an output format; use one of table, wide, json, yaml, name/],
      [['get', 'widgets'], /cannot get "widgets"; use instances, bindings, offerings or plans/],
      [['provision', 'x', '--offering', 'paced', '--plan', 'slow', '--timeout', 'soon'], /--timeout soon is not a duration/],
      [['bind', 'x', '--secret-name', 's'], /--secret-name only apply in Kubernetes mode/],
      [['frobnicate'], /unknown command 'frobnicate'/],
    ];
    for (const [args, message] of cases) {
      const r = await w.berth(args);
      assert.equal(r.code, 2, `berth ${args.join(' ')}\n${show(r)}`);
      assert.match(r.stderr, message, `berth ${args.join(' ')}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    const noBroker = await w.berth(['get', 'instances'], { BERTH_BROKER_URL: undefined });
    expectExit(noBroker, 2);
    assert.match(noBroker.stderr, /no broker or cluster to talk to: pass --broker URL \(or set BERTH_BROKER_URL.*or a kubeconfig \(--kubeconfig, KUBECONFIG or ~\/\.kube\/config\) for Kubernetes mode/);
    const listed = await w.berth(['get', 'instances', '-o', 'name']);
    assert.doesNotMatch(listed.stdout, /instance\/x\n/);
  });

  test('exit 3: --timeout ends the wait while the operation goes on; a repeat resumes it; --async returns at once', async () => {
    const timedOut = await w.berth(['provision', 'slowpoke', '--offering', 'paced', '--plan', 'slow', '--timeout', '1s']);
    expectExit(timedOut, 3);
    assert.match(timedOut.stderr, /berth: timed out after 1 s while provisioning slowpoke is still in progress \((Queued|Creating the paced service: step \d of 4)\); it goes on at the broker: check with `berth describe instance slowpoke`\./);
    const resumed = await w.berth(['provision', 'slowpoke', '--offering', 'paced', '--plan', 'slow']);
    expectExit(resumed, 0);
    // Created by the operation it waited for; or, when starting the CLI took longer than the rest of the
    // provision (a loaded machine), the instance it finds finished.
    assert.match(resumed.stdout, /^instance\/slowpoke (created|already exists \(unchanged\))\n$/);

    const upgrade = await w.berth(['upgrade', 'slowpoke']);
    expectExit(upgrade, 0);
    assert.equal(upgrade.stdout, 'instance/slowpoke is already at maintenance version 1.0.0\n');

    const quick = await w.berth(['provision', 'quick', '--offering', 'paced', '--plan', 'slow', '--async', '-o', 'name']);
    expectExit(quick, 0);
    assert.equal(quick.stdout, 'instance/quick\n');
    assert.match(quick.stderr, /Provisioning quick is in progress\. Use `berth describe instance quick` to check on it\./);
    const listing = await w.berth(['get', 'instance', 'quick']);
    expectExit(listing, 0);
    assert.match(listing.stdout, /\nquick\s+paced\s+slow\s+False\s+Provisioning\s+/);

    const wait = await w.berth(['provision', 'quick', '--offering', 'paced', '--plan', 'slow', '-o', 'yaml']);
    expectExit(wait, 0);
    const object = parseYaml(wait.stdout) as { name: string; last_operation: { state: string } };
    assert.equal(object.name, 'quick');
    assert.equal(object.last_operation.state, 'succeeded');

    for (const n of ['slowpoke', 'quick']) expectExit(await w.berth(['deprovision', n]), 0);
  });

  test('exit 4: an unreachable broker or refused credentials', async () => {
    const wrong = await w.berth(['marketplace'], { BERTH_BROKER_PASSWORD: 'not-the-password' });
    expectExit(wrong, 4);
    assert.match(wrong.stderr, /^berth: the broker at http:\/\/127\.0\.0\.1:\d+ refused the credentials of "platform" \(HTTP 401\); check --username\/--password/);
    assert.doesNotMatch(wrong.stderr, /not-the-password/);

    const port = await freePort();
    const down = await w.berth(['get', 'plans'], { BERTH_BROKER_URL: `http://127.0.0.1:${port}` });
    expectExit(down, 4);
    assert.match(down.stderr, new RegExp(`^berth: cannot reach the broker at http://127\\.0\\.0\\.1:${port} while reading the catalog: the connection was refused \\(nothing listens there\\)\\.`));
  });

  test('a credentials file gives the broker URL and credentials', async () => {
    const file = join(w.env.XDG_CONFIG_HOME!, '..', 'broker.yaml');
    writeFileSync(file, `url: ${w.broker.url}\nusername: platform\npassword: "p@ss:with:colons"\n`, { mode: 0o600 });
    const r = await w.berth(['get', 'offerings', '-o', 'name', '--credentials-file', file], { BERTH_BROKER_URL: undefined, BERTH_BROKER_USERNAME: undefined, BERTH_BROKER_PASSWORD: undefined });
    expectExit(r, 0);
    assert.equal(r.stdout, 'offering/user-provided\noffering/postgresql\noffering/paced\n');
  });
});

describe('berth against an https broker', () => {
  let w: CliWorld;
  let dir: string;
  let proxy: https.Server;
  let url: string;
  before(async () => {
    w = await startCliWorld();
    dir = mkdtempSync(join(tmpdir(), 'berth-cli-tls-'));
    // A CA of the test's own and a server certificate it signed, for 127.0.0.1.
    const sh = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    sh('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=berth test CA');
    sh('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    sh('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'san.ext');
    // TLS in front of the test's Berth, forwarding every request as it is.
    proxy = https.createServer({ key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.pem')) }, (req, res) => {
      const upstream = http.request(`${w.broker.url}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    url = `https://127.0.0.1:${(proxy.address() as { port: number }).port}`;
  });
  after(async () => {
    proxy?.closeAllConnections();
    await new Promise((r) => proxy?.close(r));
    await w?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a broker certificate from an unknown CA is exit 4 naming --ca-file; with --ca-file (or BERTH_BROKER_CA_FILE) it works', async () => {
    const untrusted = await w.berth(['get', 'plans', '--broker', url]);
    expectExit(untrusted, 4);
    assert.match(untrusted.stderr, /^berth: cannot reach the broker at https:\/\/127\.0\.0\.1:\d+ while reading the catalog: its TLS certificate is not trusted \(.+\); pass the CA with --ca-file/);
    const trusted = await w.berth(['get', 'plans', '--broker', url, '--ca-file', join(dir, 'ca.pem'), '-o', 'name']);
    expectExit(trusted, 0);
    assert.match(trusted.stdout, /^plan\/user-provided\/standard\n/);
    const byEnv = await w.berth(['get', 'offerings', '-o', 'name'], { BERTH_BROKER_URL: url, BERTH_BROKER_CA_FILE: join(dir, 'ca.pem') });
    expectExit(byEnv, 0);
    const missing = await w.berth(['get', 'plans', '--broker', url, '--ca-file', join(dir, 'nope.pem')]);
    expectExit(missing, 2);
    assert.match(missing.stderr, /cannot read the CA file .*nope\.pem \(ENOENT\)/);
  });
});
