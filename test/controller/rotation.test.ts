// Issue 15 §2 on the Kubernetes front: the controller renews a ServiceBinding before its credentials' renew_before
// into the same Secret (the real Postgres kind with a short credential_lifetime: both logins work during the
// overlap, the predecessor's is gone afterwards), and shows credentials an instance update made stale
// (CredentialsCurrent=False on a plan whose bindings cannot be rotated; renewed on one whose can).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startStack, instance, binding, waitFor, until, conditionOf, kubectl, type Stack } from './support.ts';
import { ADMIN_URL } from '../support/postgres.ts';

const secretData = async (stack: Stack, ns: string, name: string): Promise<Record<string, string>> => {
  const secret = await stack.core.readNamespacedSecret({ namespace: ns, name });
  return Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
};

async function loginAs(uri: string): Promise<string> {
  const c = new pg.Client({ connectionString: uri });
  await c.connect();
  try {
    return (await c.query('select session_user as u')).rows[0].u as string;
  } finally {
    await c.end();
  }
}

async function roleExists(name: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    return (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount === 1;
  } finally {
    await c.end();
  }
}

describe('controller: credential renewal and stale credentials', () => {
  let stack: Stack;
  let ns: string;
  before(async () => {
    // A grace period longer than the 30 s lifetime: the predecessor is unbound at its own expires_at.
    stack = await startStack({ rotationGraceSeconds: 600 });
    ns = await stack.kube.createNamespace('ctl-rotate');
  });
  after(async () => {
    if (ns) await stack?.kube.deleteNamespace(ns).catch(() => undefined);
    await stack?.stop();
  });

  test('postgresql with credential_lifetime: renewed before renew_before into the same Secret; both logins work until the predecessor is unbound', async () => {
    await stack.apply(ns, instance('short', { offering: 'postgresql', plan: 'expiring' }), binding('short-app', 'short', { secretName: 'short-db' }));
    await waitFor(stack.kube, ns, 'serviceinstance/short');
    await waitFor(stack.kube, ns, 'servicebinding/short-app');
    const first = await secretData(stack, ns, 'short-db');
    const bound = await stack.get('servicebindings', ns, 'short-app');
    assert.ok(bound.status.renewBefore && bound.status.credentialsExpireAt, JSON.stringify(bound.status));
    assert.ok(Date.parse(bound.status.renewBefore) < Date.parse(bound.status.credentialsExpireAt));
    assert.equal(conditionOf(bound, 'CredentialsCurrent')?.status, 'True');
    assert.equal(await loginAs(first.uri!), first.username);

    const rotated = await until(async () => {
      const b = await stack.get('servicebindings', ns, 'short-app');
      return b.status.rotations >= 1 ? b : undefined;
    }, 'the binding renewed', 90_000);
    assert.ok(Date.now() >= Date.parse(bound.status.renewBefore), 'not renewed before renew_before');
    assert.equal(rotated.status.servingBindingID, `${rotated.metadata.uid}-r1`);
    assert.equal(rotated.status.retiring?.bindingID, rotated.metadata.uid);
    assert.equal(rotated.status.retiring.after, bound.status.credentialsExpireAt, 'the predecessor is kept until it expires (grace capped)');
    assert.equal(conditionOf(rotated, 'CredentialsCurrent')?.reason, 'CredentialsRotated');
    assert.ok(Date.parse(rotated.status.credentialsExpireAt) > Date.parse(bound.status.credentialsExpireAt));

    const second = await secretData(stack, ns, 'short-db');
    assert.notEqual(second.username, first.username, 'the Secret holds the successor\'s own login');
    assert.equal(second.database, first.database);
    // The overlap: the predecessor's login still works beside the successor's, unless it expired meanwhile (a loaded machine).
    assert.equal(await loginAs(second.uri!), second.username);
    if (Date.now() < Date.parse(bound.status.credentialsExpireAt) - 1000) assert.equal(await loginAs(first.uri!), first.username);

    await until(async () => ((await stack.get('servicebindings', ns, 'short-app')).status.retiring ? undefined : true), 'the predecessor unbound', 90_000);
    assert.equal(await roleExists(first.username!), false, 'the predecessor\'s login is dropped');
    await assert.rejects(loginAs(first.uri!), /does not exist|password authentication failed|not permitted to log in/);
    assert.equal(await loginAs(second.uri!), second.username);

    await kubectl(stack.kube, ['delete', '-n', ns, 'servicebinding/short-app', '--wait=true', '--timeout=60s']);
    assert.equal(await roleExists(second.username!), false, 'deleting the ServiceBinding unbinds the serving binding');
    await kubectl(stack.kube, ['delete', '-n', ns, 'serviceinstance/short', '--wait=true', '--timeout=60s']);
  });

  test('user-provided: new credentials parameters make the binding stale; CredentialsCurrent=False where it cannot rotate, renewed where it can', async () => {
    const creds = { uri: 'smtp://mail:25', password: 'hunter2' };
    await stack.apply(
      ns,
      instance('fixed', { offering: 'user-provided', plan: 'standard', parameters: { credentials: creds } }),
      binding('fixed-app', 'fixed'),
      instance('renewing', { offering: 'user-provided', plan: 'rotatable', parameters: { credentials: creds } }),
      binding('renewing-app', 'renewing'),
    );
    for (const r of ['serviceinstance/fixed', 'serviceinstance/renewing', 'servicebinding/fixed-app', 'servicebinding/renewing-app']) await waitFor(stack.kube, ns, r);
    assert.equal(conditionOf(await stack.get('servicebindings', ns, 'fixed-app'), 'CredentialsCurrent')?.status, 'True');

    const moved = { uri: 'smtp://mail2:587', password: 'hunter2' };
    await stack.apply(
      ns,
      instance('fixed', { offering: 'user-provided', plan: 'standard', parameters: { credentials: moved } }),
      instance('renewing', { offering: 'user-provided', plan: 'rotatable', parameters: { credentials: moved } }),
    );

    const stale = await until(async () => {
      const c = conditionOf(await stack.get('servicebindings', ns, 'fixed-app'), 'CredentialsCurrent');
      return c?.status === 'False' ? c : undefined;
    }, 'CredentialsCurrent=False on the binding that cannot rotate', 60_000);
    assert.equal(stale.reason, 'CredentialsStale');
    assert.match(stale.message, /credentials \(uri\)/);
    assert.match(stale.message, /refused to rotate/);
    assert.equal((await secretData(stack, ns, 'fixed-app')).uri, creds.uri, 'nothing new was written');

    const renewed = await until(async () => {
      const b = await stack.get('servicebindings', ns, 'renewing-app');
      return b.status.rotations >= 1 && conditionOf(b, 'CredentialsCurrent')?.status === 'True' ? b : undefined;
    }, 'the rotatable binding renewed', 60_000);
    assert.equal(conditionOf(renewed, 'CredentialsCurrent')?.reason, 'CredentialsRotated');
    assert.equal((await secretData(stack, ns, 'renewing-app')).uri, moved.uri, 'the same Secret holds the new credentials');
    // The broker agrees: the successor is current, the predecessor (until unbound) stale.
    const fetched = await stack.berth.client.fetchBinding(renewed.status.instanceID, renewed.status.servingBindingID);
    assert.equal(fetched.body.metadata?.berth_credentials_stale, undefined);

    await kubectl(stack.kube, ['delete', '-n', ns, 'servicebinding/fixed-app', 'servicebinding/renewing-app', '--wait=true', '--timeout=60s']);
    const gone = await stack.berth.client.fetchBinding(renewed.status.instanceID, renewed.metadata.uid);
    assert.equal(gone.status, 404, 'the predecessor was unbound with the ServiceBinding');
    await kubectl(stack.kube, ['delete', '-n', ns, 'serviceinstance/fixed', 'serviceinstance/renewing', '--wait=true', '--timeout=60s']);
  });
});
