// charts/berth installed on the real node, the way an operator installs it: the
// registry-free image (localhost/berth:test, tools/build-images.sh), 2 replicas,
// the controller, Berth's own ClusterServiceBroker as its registration, and a
// PostgreSQL Pod in the cluster as Berth's database (the machine's shared
// PostgreSQL is not reachable from the node's network namespace) which also
// serves the catalog's `postgres` plan. Then, in order, on the one installation:
//   1. both replicas Ready, the ClusterServiceBroker Ready with the catalog's offerings;
//   2. a Helm `redis` instance and a `postgres` instance provisioned through the
//      in-cluster Berth, their bindings used by a client Pod;
//   3. `helm upgrade` to a changed catalog rolls the Deployment while a client Pod
//      polls the catalog through the Service: no request fails, and every old Pod
//      logged its graceful stop (SIGTERM reached node through tini);
//   4. a Berth Pod killed during a redis install: the other replica finishes it,
//      with exactly one Helm release.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { execa, type ResultPromise } from 'execa';
import { parseAllDocuments, stringify } from 'yaml';
import { realNodeCluster, type RealNodeCluster } from '../support/kube/shared.ts';
import { portForward, type PortForward } from '../support/kube/port-forward.ts';
import { OsbClient } from '../support/osb-client.ts';
import { REPO } from '../support/berth.ts';
import { releaseName } from '../../src/provisioners/helm/helm-provisioner.ts';
import { idHash } from '../../src/kubernetes/names.ts';

const CHART = path.join(REPO, 'charts/berth');
const RELEASE = 'inst';
const FULLNAME = 'inst-berth';
const PG = { service_id: 'svc-pg', plan_id: 'plan-pg' };
const REDIS = { service_id: 'svc-redis', plan_id: 'plan-redis' };
const org = { organization_guid: 'org', space_guid: 'space' };

/** The catalog the installation serves; `marker` goes into a description, so a client sees which version answered. */
function catalog(marker: string): string {
  return stringify({
    services: [
      {
        id: 'svc-redis', name: 'redis', description: `Redis in the cluster (${marker})`, bindable: true, bindings_retrievable: true,
        plans: [{
          id: 'plan-redis', name: 'small', description: 'small', maximum_polling_duration: 300,
          provisioner: {
            kind: 'helm',
            chart: '/app/charts/redis', // baked into the image
            values: { image: { repository: 'localhost/redis', tag: '7', pullPolicy: 'Never' } },
            timeout: 180,
            credentials: {
              type: 'redis',
              entries: {
                // No cluster DNS on the test node: the ClusterIP.
                host: 'service-ip:{release}',
                port: 'service:{release}:redis',
                password: 'secret:{release}-credentials:password',
                uri: 'template:redis://:{password|url}@{host}:{port}',
              },
            },
          },
        }],
      },
      {
        id: 'svc-pg', name: 'postgresql', description: 'A database on the in-cluster PostgreSQL', bindable: true, bindings_retrievable: true,
        plans: [{ id: 'plan-pg', name: 'small', description: 'small', provisioner: { kind: 'postgres', server: 'shared', connection_limit: 10 } }],
      },
    ],
  });
}

const isReady = (p: V1Pod): boolean => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

describe('charts/berth on the real node', () => {
  let kube: RealNodeCluster;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let custom: CustomObjectsApi;
  let ns: string;
  let appNs: string;
  let dir: string;
  let serviceIP: string;
  let password: string;
  let pf: PortForward | undefined;
  let osb: OsbClient;
  const brokerName = `inst-${randomBytes(3).toString('hex')}`;
  const dbPassword = randomBytes(12).toString('hex');
  const instances: Array<{ id: string; service_id: string; plan_id: string }> = [];
  const followers: ResultPromise[] = [];

  const kubectl = (args: string[], input?: string) => execa(kube.kubectlBin, [...args, '--kubeconfig', kube.kubeconfigPath], { input, reject: false });
  const helm = (args: string[]) => execa(kube.helmBin, args, { env: kube.helmEnv(), reject: false });

  async function waitFor<T>(what: string, ms: number, fn: () => Promise<T | undefined>): Promise<T> {
    const until = Date.now() + ms;
    let last: unknown;
    for (;;) {
      try {
        const v = await fn();
        if (v !== undefined) return v;
      } catch (err) {
        last = err;
      }
      if (Date.now() > until) throw new Error(`${what}: not within ${ms / 1000} s${last ? ` (last error: ${(last as Error).message})` : ''}`);
      await sleep(500);
    }
  }

  const berthPods = async () =>
    (await core.listNamespacedPod({ namespace: ns, labelSelector: `app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=broker` })).items
      .filter((p) => !p.metadata?.deletionTimestamp);

  /** (Re)opens the port-forward to the Service (it follows one Pod, which the tests replace). */
  async function reconnect(): Promise<void> {
    await pf?.close().catch(() => undefined);
    pf = await portForward(kube, ns, `svc/${FULLNAME}`, 80);
    osb = new OsbClient(`http://127.0.0.1:${pf.port}`, { username: 'platform', password });
  }

  async function waitForOperation(id: string, operation: string | undefined, ms = 300_000): Promise<any> {
    return waitFor(`last_operation of ${id}`, ms, async () => {
      const r = await osb.lastOperation(id, operation).catch(async (err) => {
        await reconnect();
        throw err;
      });
      if (r.status === 200 && r.body.state !== 'in progress') return r.body;
      return undefined;
    });
  }

  /** A Pod running a node script from the Berth image, with env from a Secret; returns its log once it ended. */
  async function runClient(name: string, script: string, env: Record<string, string>): Promise<string> {
    await core.createNamespacedSecret({ namespace: appNs, body: { metadata: { name }, stringData: env } });
    await core.createNamespacedPod({
      namespace: appNs,
      body: {
        metadata: { name },
        spec: {
          restartPolicy: 'Never',
          containers: [{ name: 'client', image: 'localhost/berth:test', imagePullPolicy: 'Never', command: ['/usr/local/bin/node', '-e', script], envFrom: [{ secretRef: { name } }] }],
        },
      },
    });
    const pod = await waitFor(`client Pod ${name} ends`, 180_000, async () => {
      const p = await core.readNamespacedPod({ name, namespace: appNs });
      return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
    });
    const log = await core.readNamespacedPodLog({ name, namespace: appNs });
    assert.equal(pod.status?.phase, 'Succeeded', log);
    return log;
  }

  before(async () => {
    kube = await realNodeCluster();
    core = kube.kubeConfig().makeApiClient(CoreV1Api);
    apps = kube.kubeConfig().makeApiClient(AppsV1Api);
    custom = kube.kubeConfig().makeApiClient(CustomObjectsApi);
    dir = mkdtempSync(path.join(os.tmpdir(), 'berth-install-'));
    ns = await kube.createNamespace('install');
    appNs = await kube.createNamespace('install-app');
    for (const n of [ns, appNs]) {
      await waitFor(`default ServiceAccount in ${n}`, 30_000, async () =>
        (await core.listNamespacedServiceAccount({ namespace: n })).items.some((s) => s.metadata?.name === 'default') || undefined);
    }
  });

  after(async () => {
    for (const f of followers) f.kill();
    await pf?.close().catch(() => undefined);
    if (instances.length > 0 && osb) {
      await reconnect().catch(() => undefined);
      for (const i of instances) {
        const d = await osb.deprovision(i.id, i.service_id, i.plan_id).catch(() => undefined);
        if (d?.status === 202) await waitForOperation(i.id, d.body.operation).catch(() => undefined);
      }
      await pf?.close().catch(() => undefined);
    }
    await helm(['uninstall', RELEASE, '-n', ns, '--wait', '--timeout', '2m']);
    for (const i of instances.filter((x) => x.service_id === REDIS.service_id)) await kube.deleteNamespace(`berth-${idHash(i.id)}`).catch(() => undefined);
    if (appNs) await kube.deleteNamespace(appNs).catch(() => undefined);
    if (ns) await kube.deleteNamespace(ns).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  test('install: 2 replicas Ready, registered as a ClusterServiceBroker; redis and postgres provisioned, bindings work from a client Pod; upgrade rolls with no failed request; a killed Pod\'s operation finished by the other replica', async (t) => {
    // --- Berth's database: PostgreSQL in the cluster ---------------------------------------
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'db', labels: { app: 'db' } },
        spec: {
          securityContext: { runAsUser: 999, runAsGroup: 999, fsGroup: 999, runAsNonRoot: true },
          containers: [{
            name: 'postgresql', image: 'localhost/postgresql:15', imagePullPolicy: 'Never',
            env: [{ name: 'POSTGRES_PASSWORD', value: dbPassword }, { name: 'POSTGRES_DB', value: 'berth' }, { name: 'PGDATA', value: '/var/lib/postgresql/data/pgdata' }],
            ports: [{ name: 'postgresql', containerPort: 5432 }],
            readinessProbe: { exec: { command: ['pg_isready', '-h', '127.0.0.1', '-U', 'postgres'] }, periodSeconds: 1 },
            volumeMounts: [{ name: 'data', mountPath: '/var/lib/postgresql/data' }],
          }],
          volumes: [{ name: 'data', emptyDir: {} }],
        },
      },
    });
    const dbSvc = await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'db' }, spec: { selector: { app: 'db' }, ports: [{ port: 5432, targetPort: 'postgresql' }] } } });
    const dbIP = dbSvc.spec!.clusterIP!;
    await waitFor('the database Pod is Ready', 180_000, async () => (isReady(await core.readNamespacedPod({ name: 'db', namespace: ns })) ? true : undefined));
    // The postgres plan's server (BERTH_POSTGRES_SHARED_URL), from a Secret of the operator's, not from values.
    await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'plan-servers' }, stringData: { BERTH_POSTGRES_SHARED_URL: `postgres://postgres:${dbPassword}@${dbIP}:5432/postgres` } } });

    // --- cluster objects shared with other real-node tests ---------------------------------
    // The ClusterRole berth-instance has a fixed name (Berth binds it) and test/helm applies deploy/rbac.yaml,
    // which holds it, to this cluster: apply the same object the same way, and let the chart leave it alone.
    const instanceRole = parseAllDocuments(readFileSync(path.join(REPO, 'deploy/rbac.yaml'), 'utf8'))
      .map((d) => d.toJS()).find((o) => o?.kind === 'ClusterRole' && o.metadata?.name === 'berth-instance');
    let r = await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=berth-tests', '-f', '-'], stringify(instanceRole));
    assert.equal(r.exitCode, 0, r.stderr);
    // Likewise the CRDs (the chart's CRD toggle is covered by the dry run in chart.test.ts).
    r = await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=berth-tests', '-f', path.join(REPO, 'deploy/crds')]);
    assert.equal(r.exitCode, 0, r.stderr);
    await kubectl(['wait', '--for=condition=Established', '--timeout=60s', '-f', path.join(REPO, 'deploy/crds')]);

    // --- helm install ----------------------------------------------------------------------
    // A ClusterIP of our own choosing: without cluster DNS, the controller and the registration need an address up front.
    const taken = new Set((await core.listServiceForAllNamespaces()).items.map((s) => s.spec?.clusterIP));
    serviceIP = [...Array(200).keys()].map((i) => `10.96.${200 + (i % 50)}.${10 + Math.floor(i / 50) + randomBytes(1)[0]! % 200}`).find((ip) => !taken.has(ip))!;
    const values = (marker: string) => ({
      image: { repository: 'localhost/berth', tag: 'test', pullPolicy: 'Never' },
      replicaCount: 2,
      credentials: { databaseUrl: `postgres://postgres:${dbPassword}@${dbIP}:5432/berth` },
      catalog: { content: catalog(marker) },
      service: { clusterIP: serviceIP },
      rbac: { createInstanceRole: false },
      // A lease a killed replica's operation is taken over after.
      extraEnv: [{ name: 'BERTH_LEASE_SECONDS', value: '5' }, { name: 'BERTH_POLL_INTERVAL_MS', value: '200' }],
      extraEnvFrom: [{ secretRef: { name: 'plan-servers' } }],
      resources: { requests: { cpu: '50m', memory: '192Mi' }, limits: { memory: '512Mi' } },
      controller: { enabled: true, installCRDs: false, brokerUrl: `http://${serviceIP}:80` },
      registration: { berth: { enabled: true, name: brokerName, url: `http://${serviceIP}:80` } },
    });
    const valuesFile = (marker: string) => {
      const f = path.join(dir, `values-${marker}.yaml`);
      writeFileSync(f, stringify(values(marker))); // credentials in a file, not on argv
      return f;
    };
    const started = Date.now();
    r = await helm(['install', RELEASE, CHART, '-n', ns, '-f', valuesFile('v1'), '--wait', '--timeout', '8m']);
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}\n${await describePods()}`);
    t.diagnostic(`helm install --wait: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const dep = await apps.readNamespacedDeployment({ name: FULLNAME, namespace: ns });
    assert.equal(dep.status?.readyReplicas, 2);
    const pods = await berthPods();
    assert.equal(pods.length, 2);
    assert.ok(pods.every(isReady), 'both replicas Ready');
    assert.ok(pods.every((p) => p.spec?.containers[0]?.image === 'localhost/berth:test'));
    assert.equal(pods[0]!.spec?.containers[0]?.securityContext?.readOnlyRootFilesystem, true);
    const secret = await core.readNamespacedSecret({ name: FULLNAME, namespace: ns });
    password = Buffer.from(secret.data!.BROKER_PASSWORD!, 'base64').toString();
    assert.equal(password.length, 32, 'a generated broker password');

    // --- registration: Berth's own ClusterServiceBroker, reconciled by the chart's controller ---
    const csb = await waitFor('the ClusterServiceBroker is Ready', 180_000, async () => {
      const o = (await custom.getClusterCustomObject({ group: 'services.berth.dev', version: 'v1alpha1', plural: 'clusterservicebrokers', name: brokerName })) as any;
      return o.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') ? o : undefined;
    }).catch(async (err) => {
      const logs = await kubectl(['logs', '-n', ns, `deploy/${FULLNAME}-controller`, '--tail=30']);
      throw new Error(`${(err as Error).message}\ncontroller log:\n${logs.stdout}${logs.stderr}`);
    });
    assert.equal(csb.status.offerings, 2);

    // --- provision through the in-cluster Berth --------------------------------------------
    await reconnect();
    const pgId = `inst-pg-${randomBytes(3).toString('hex')}`;
    const redisId = `inst-redis-${randomBytes(3).toString('hex')}`;
    instances.push({ id: pgId, ...PG }, { id: redisId, ...REDIS });
    const p1 = await osb.provision(pgId, { ...PG, ...org });
    assert.ok(p1.status === 201 || p1.status === 202, p1.text);
    const p2 = await osb.provision(redisId, { ...REDIS, ...org });
    assert.equal(p2.status, 202, p2.text);
    if (p1.status === 202) assert.equal((await waitForOperation(pgId, p1.body.operation)).state, 'succeeded');
    const redisDone = await waitForOperation(redisId, p2.body.operation);
    assert.equal(redisDone.state, 'succeeded', JSON.stringify(redisDone));
    const bind = async (id: string, plan: typeof PG) => {
      const b = await osb.bind(id, `${id}-b`, { ...plan });
      assert.ok(b.status === 201 || b.status === 202, b.text);
      if (b.status === 202) await waitFor(`binding of ${id}`, 120_000, async () => ((await osb.bindingLastOperation(id, `${id}-b`, b.body.operation)).body.state === 'succeeded' ? true : undefined));
      return (await osb.fetchBinding(id, `${id}-b`)).body.credentials as Record<string, string | number>;
    };
    const pgCreds = await bind(pgId, PG);
    const redisCreds = await bind(redisId, REDIS);
    assert.equal(pgCreds.host, dbIP);

    // An app Pod uses both bindings through the addresses they carry (kube-proxy). A Service just created
    // may answer "unreachable" until kube-proxy has its endpoints: the client retries for up to 30 s.
    const appLog = await runClient('app', `
      const { Client } = require('/app/node_modules/pg'); const { createClient } = require('/app/node_modules/redis');
      const retry = async (f, n = 30) => { for (;;) { try { return await f(); } catch (e) { if (--n <= 0) throw e; await new Promise((r) => setTimeout(r, 1000)); } } };
      (async () => {
        const pg = new Client({ connectionString: process.env.PG_URI });
        await retry(() => pg.connect());
        await pg.query('CREATE TABLE orders (id int PRIMARY KEY, item text)');
        await pg.query("INSERT INTO orders VALUES (1, 'from the app Pod')");
        console.log('postgres: ' + (await pg.query('SELECT item FROM orders')).rows[0].item + ' as ' + (await pg.query('SELECT session_user AS u')).rows[0].u);
        await pg.end();
        const redis = createClient({ url: process.env.REDIS_URI });
        redis.on('error', () => {});
        await retry(() => redis.connect());
        await redis.set('greeting', 'hello from the app Pod');
        console.log('redis: ' + (await redis.get('greeting')));
        await redis.quit();
      })().catch((e) => { console.log('failed: ' + e.message); process.exit(1); });`,
      { PG_URI: String(pgCreds.uri), REDIS_URI: String(redisCreds.uri) });
    assert.match(appLog, new RegExp(`postgres: from the app Pod as ${pgCreds.username}`));
    assert.match(appLog, /redis: hello from the app Pod/);

    // --- helm upgrade to a changed catalog, a client polling through the Service ------------
    const auth = 'Basic ' + Buffer.from(`platform:${password}`).toString('base64');
    await core.createNamespacedSecret({ namespace: appNs, body: { metadata: { name: 'poller' }, stringData: { TARGET: serviceIP, AUTH: auth } } });
    // One new connection per request (no keep-alive), like a platform's occasional calls: every request
    // is routed afresh by kube-proxy. Counting starts at the first answer (a new Pod's first packets to a
    // ClusterIP can be refused until kube-proxy is programmed, which has nothing to do with Berth).
    await core.createNamespacedPod({
      namespace: appNs,
      body: {
        metadata: { name: 'poller' },
        spec: {
          restartPolicy: 'Never',
          containers: [{
            name: 'poller', image: 'localhost/berth:test', imagePullPolicy: 'Never', envFrom: [{ secretRef: { name: 'poller' } }],
            command: ['/usr/local/bin/node', '-e', `
              const http = require('node:http');
              let ok = 0, failed = 0, v2 = 0, counting = false;
              const once = () => new Promise((resolve) => {
                const req = http.get({ host: process.env.TARGET, port: 80, path: '/v2/catalog', agent: false, timeout: 10000,
                  headers: { authorization: process.env.AUTH, 'x-broker-api-version': '2.17' } }, (res) => {
                  let body = ''; res.on('data', (c) => (body += c));
                  res.on('end', () => { resolve(res.statusCode === 200 ? (body.includes('(v2)') ? 'v2' : 'ok') : 'HTTP ' + res.statusCode + ' ' + body.slice(0, 200)); });
                  res.on('error', (e) => resolve('response error ' + e.message));
                });
                req.on('timeout', () => req.destroy(new Error('timeout')));
                req.on('error', (e) => resolve('request error ' + e.code + ' ' + e.message));
              });
              setInterval(() => console.log('TALLY ok=' + ok + ' failed=' + failed + ' v2=' + v2), 1000);
              (async () => { for (;;) {
                const r = await once();
                if (r === 'ok' || r === 'v2') { counting = true; ok++; if (r === 'v2') v2++; }
                else if (counting) { failed++; console.log('FAILED ' + new Date().toISOString() + ' ' + r); }
                await new Promise((res) => setTimeout(res, 50));
              } })();`],
          }],
        },
      },
    });
    const tally = async () => {
      const log = await core.readNamespacedPodLog({ name: 'poller', namespace: appNs });
      const last = [...log.matchAll(/TALLY ok=(\d+) failed=(\d+) v2=(\d+)/g)].at(-1);
      return { ok: Number(last?.[1] ?? 0), failed: Number(last?.[2] ?? 0), v2: Number(last?.[3] ?? 0), log };
    };
    await waitFor('the poller gets answers', 120_000, async () => ((await tally()).ok > 10 ? true : undefined));
    // Each old Pod's log, followed to its end: it must show Berth's graceful stop.
    const oldPods = await berthPods();
    const oldLogs = oldPods.map((p) => {
      const f = execa(kube.kubectlBin, ['logs', '-f', '-n', ns, p.metadata!.name!, '--kubeconfig', kube.kubeconfigPath], { reject: false });
      followers.push(f);
      return f;
    });
    const upgradeStarted = Date.now();
    r = await helm(['upgrade', RELEASE, CHART, '-n', ns, '-f', valuesFile('v2'), '--wait', '--timeout', '8m']);
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}\n${await describePods()}`);
    await waitFor('the rollout is complete', 180_000, async () => {
      const d = await apps.readNamespacedDeployment({ name: FULLNAME, namespace: ns });
      const current = await berthPods();
      const oldGone = !current.some((p) => oldPods.some((o) => o.metadata?.uid === p.metadata?.uid));
      return d.status?.updatedReplicas === 2 && d.status?.readyReplicas === 2 && d.status?.replicas === 2 && oldGone ? true : undefined;
    });
    const rolloutSeconds = (Date.now() - upgradeStarted) / 1000;
    // The generated password and keys survived the upgrade (the chart read its Secret back).
    const kept = await core.readNamespacedSecret({ name: FULLNAME, namespace: ns });
    assert.equal(kept.data!.BROKER_PASSWORD, secret.data!.BROKER_PASSWORD);
    assert.equal(kept.data!.BERTH_ENCRYPTION_KEYS, secret.data!.BERTH_ENCRYPTION_KEYS);
    const beforeEnd = (await tally()).ok;
    await waitFor('the poller sees the new catalog and keeps going', 60_000, async () => {
      const n = await tally();
      return n.v2 > 0 && n.ok > beforeEnd + 20 ? true : undefined;
    });
    const polled = await tally();
    t.diagnostic(`rollout ${rolloutSeconds.toFixed(1)} s; poller: ${polled.ok} answered (${polled.v2} from the new catalog), ${polled.failed} failed`);
    assert.equal(polled.failed, 0, polled.log.split('\n').filter((l) => l.startsWith('FAILED')).join('\n'));
    for (const [i, follow] of oldLogs.entries()) {
      const out = await follow;
      assert.match(out.stdout, /"msg":"shutting down"/, `${oldPods[i]!.metadata!.name} got SIGTERM: ${out.stdout.slice(-2000)}`);
      assert.match(out.stdout, /"msg":"stopped"/, `${oldPods[i]!.metadata!.name} stopped gracefully`);
    }
    await core.deleteNamespacedPod({ name: 'poller', namespace: appNs, gracePeriodSeconds: 0 });

    // --- a Berth Pod killed during an operation ---------------------------------------------
    await reconnect();
    const killId = `inst-kill-${randomBytes(3).toString('hex')}`;
    instances.push({ id: killId, ...REDIS });
    const p3 = await osb.provision(killId, { ...REDIS, ...org });
    assert.equal(p3.status, 202, p3.text);
    // The replica that runs the install logged "operation started" for it (each replica claims from the shared queue).
    const logOf = (name: string) => core.readNamespacedPodLog({ name, namespace: ns }).catch(() => '');
    const mentions = (log: string, msg: string) =>
      log.split('\n').some((l) => l.includes(`"instance":"${killId}"`) && l.includes(`"msg":"${msg}"`));
    const running = await waitFor('a replica starts the new instance\'s operation', 120_000, async () => {
      for (const p of await berthPods()) if (mentions(await logOf(p.metadata!.name!), 'operation started')) return p;
      return undefined;
    });
    // SIGKILL, the Pod deleted at once: no graceful stop, its lease is left to expire.
    const victim = running.metadata!.name!;
    assert.ok(!mentions(await logOf(victim), 'operation succeeded'), 'the operation is still running when its replica is killed');
    await kubectl(['exec', '-n', ns, victim, '-c', 'berth', '--', '/usr/local/bin/node', '-e',
      `const fs=require('node:fs');for(const d of fs.readdirSync('/proc')){if(!/^\\d+$/.test(d)||d===String(process.pid))continue;let c='';try{c=fs.readFileSync('/proc/'+d+'/cmdline','utf8')}catch{}if(c.includes('/app/src/cli.ts')&&c.includes('serve'))process.kill(Number(d),'SIGKILL')}`]);
    r = await kubectl(['delete', 'pod', '-n', ns, victim, '--grace-period=0', '--force', '--wait=false']);
    assert.equal(r.exitCode, 0, r.stderr);
    const survivor = (await berthPods()).find((p) => p.metadata!.name !== victim && isReady(p));
    assert.ok(survivor, 'the other replica is still serving');
    await reconnect();
    const killed = await waitForOperation(killId, p3.body.operation);
    assert.equal(killed.state, 'succeeded', JSON.stringify(killed));
    const list = await helm(['list', '-n', `berth-${idHash(killId)}`, '-o', 'json', '--deployed', '--failed', '--pending', '--superseded', '--uninstalling']);
    assert.equal(list.exitCode, 0, list.stderr);
    const releases = JSON.parse(list.stdout) as Array<{ name: string; status: string }>;
    assert.deepEqual(releases.map((x) => [x.name, x.status]), [[releaseName(killId), 'deployed']]);
    // Another replica (the survivor, or the Pod that replaced the killed one) took the operation over once the
    // killed one's lease expired, and finished it.
    const finisher = await waitFor('the replica that finished the operation', 30_000, async () => {
      for (const p of await berthPods()) if (p.metadata!.name !== victim && mentions(await logOf(p.metadata!.name!), 'operation succeeded')) return p;
      return undefined;
    });
    t.diagnostic(`killed ${victim} (SIGKILL, Pod force-deleted) during the install; ${finisher.metadata!.name} finished it (${finisher.metadata!.name === survivor.metadata!.name ? 'the other original replica' : 'the replacement Pod'})`);
  });

  async function describePods(): Promise<string> {
    const d = await kubectl(['get', 'pods,events', '-n', ns, '-o', 'wide']);
    return d.stdout + d.stderr;
  }
});

