// `berth admin …` run as a user runs it (bin/berth) against a real Berth's admin API.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseYaml } from 'yaml';
import { release } from '../support/gated-provisioner.ts';
import { PATH, runBerth } from '../cli/support.ts';
import { ADMIN_TOKEN, AdminBerth, PLANS } from './support.ts';

let h: AdminBerth;
let env: Record<string, string>;
before(async () => {
  h = await AdminBerth.start();
  const home = mkdtempSync(join(tmpdir(), 'berth-admin-cli-'));
  env = { PATH, HOME: home, BERTH_ADMIN_URL: h.url, BERTH_ADMIN_TOKEN: ADMIN_TOKEN };
});
after(async () => {
  release();
  await h?.stop();
});

const berth = (args: string[], extra: Record<string, string | undefined> = {}) => runBerth(['admin', ...args], { ...env, ...extra });

async function provisionGated(plan: 'held' | 'failing'): Promise<{ id: string; operation: string }> {
  const id = `cli-${randomUUID()}`;
  const r = await h.test.client.provision(id, { service_id: PLANS.gated.service_id, plan_id: PLANS.gated[plan], organization_guid: 'o', space_guid: 's' });
  assert.equal(r.status, 202, r.text);
  return { id, operation: r.body.operation };
}

test('berth admin: credentials and usage errors exit 2 or 4 with a sentence', async () => {
  const noToken = await berth(['list', 'instances'], { BERTH_ADMIN_TOKEN: undefined });
  assert.equal(noToken.code, 2, noToken.stderr);
  assert.match(noToken.stderr, /no admin token: set BERTH_ADMIN_TOKEN/);
  const wrong = await berth(['list', 'instances'], { BERTH_ADMIN_TOKEN: 'not-the-admin-token-000000' });
  assert.equal(wrong.code, 4, wrong.stderr);
  assert.match(wrong.stderr, /refused the token/);
  const file = join(env.HOME!, 'token');
  writeFileSync(file, `${ADMIN_TOKEN}\n`);
  assert.equal((await berth(['list', 'instances', '--admin-token-file', file], { BERTH_ADMIN_TOKEN: undefined })).code, 0);
  const unreachable = await berth(['list', 'instances', '--admin-url', 'http://127.0.0.1:1']);
  assert.equal(unreachable.code, 4);
  assert.match(unreachable.stderr, /cannot reach the admin API/);
  assert.equal((await berth(['list', 'things'])).code, 2);
  const stuck = await berth(['list', 'operations', '--stuck', 'soon']);
  assert.equal(stuck.code, 2);
  assert.match(stuck.stderr, /must be a duration/);
  const noReason = await berth(['purge', 'x']);
  assert.equal(noReason.code, 2);
  assert.match(noReason.stderr, /--reason is required/);
  assert.equal((await berth(['sweep', '--only', 'x'])).code, 2);
  assert.equal((await berth(['sweep', '--delete'])).code, 2);
});

test('berth admin list, fail, retry, repair, purge, audit and sweep', async () => {
  const held = await provisionGated('held');
  const failing = await provisionGated('failing');
  await h.ended(failing.operation);

  const failed = await berth(['list', 'instances', '--failed', '--offering', 'admin-gated', '-o', 'json']);
  assert.equal(failed.code, 0, failed.stderr);
  const failedIds = JSON.parse(failed.stdout).map((i: any) => i.id);
  assert.ok(failedIds.includes(failing.id) && !failedIds.includes(held.id));
  const table = await berth(['list', 'operations', '--instance', held.id]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^ID\s+KIND\s+STATE\s+INSTANCE\s+DESCRIPTION\s+AGE$/m);
  assert.match(table.stdout, new RegExp(`${held.operation}\\s+provision\\s+in progress`));
  const names = await berth(['list', 'operations', '--instance', held.id, '-o', 'name']);
  assert.equal(names.stdout, `operation/${held.operation}\n`);

  // Until a worker holds it, then end it.
  for (let i = 0; i < 1200; i++) {
    if ((await h.test.berth.stores.knex('operations').where({ id: held.operation }).first('attempts')).attempts > 0) break;
    await sleep(50);
  }
  const fail = await berth(['fail', held.operation, '--reason', 'stuck in the test']);
  assert.equal(fail.code, 0, fail.stderr);
  assert.match(fail.stdout, /Failed by an administrator \(alice\): stuck in the test/);
  const again = await berth(['fail', held.operation, '--reason', 'twice']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already ended \(failed\)/);

  release(held.id);
  const retry = await berth(['retry', held.operation, '--reason', 'released', '-o', 'json']);
  assert.equal(retry.code, 0, retry.stderr);
  const retried = JSON.parse(retry.stdout);
  assert.equal((await h.ended(retried.operationId)).state, 'succeeded');

  const repair = await berth(['repair', held.id, '--reason', 'check the gate', '-o', 'yaml']);
  assert.equal(repair.code, 0, repair.stderr);
  const repaired = parseYaml(repair.stdout);
  assert.equal((await h.ended(repaired.operationId)).state, 'succeeded');

  const purge = await berth(['purge', failing.id, '--reason', 'gone for good']);
  assert.equal(purge.code, 0, purge.stderr);
  assert.equal(await h.test.berth.stores.instances.stateOf(failing.id), 'deleted');

  const audit = await berth(['audit', '--instance', held.id, '-o', 'json']);
  assert.deepEqual(
    JSON.parse(audit.stdout).map((e: any) => [e.action, e.actor, e.reason]),
    [
      ['admin-repair', 'alice', 'check the gate'],
      ['admin-retry', 'alice', 'released'],
      ['admin-fail', 'alice', 'stuck in the test'],
    ],
  );

  const sweep = await berth(['sweep', '-o', 'json']);
  assert.equal(sweep.code, 0, sweep.stderr);
  const report = JSON.parse(sweep.stdout);
  assert.ok(Array.isArray(report.orphans) && Array.isArray(report.missing));
  assert.equal(report.deleteRequested, false);
  assert.match(sweep.stderr, /orphan\(s\) \(nothing deleted; add --delete --reason/);
});
