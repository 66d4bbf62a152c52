// Honest bind: Berth logs in with the new credentials before answering, so a
// bind whose credentials cannot log in fails (after the engine's retries)
// instead of handing them out; the platform's unbind then removes the login.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mysqlNames, pgNames } from '../../src/provisioners/sql/names.ts';
import { DbBerth, MY, PG, mysqlUserExists, pgRoleExists } from './support.ts';

let h: DbBerth;
before(async () => {
  h = await DbBerth.start({ BERTH_MAX_ATTEMPTS: '2' });
});
after(async () => {
  await h?.stop();
});

test('postgres: a database nobody may connect to (connection limit 0) gets no successful bind', async () => {
  const id = await h.provisioned(PG.service, PG.closed);
  const { id: bindingId, reply } = await h.bind(id, PG.service, PG.closed);
  assert.equal(reply.status, 500, reply.text);
  assert.match(reply.body.description, /logging in with the new credentials failed/);
  assert.equal((await h.client.fetchBinding(id, bindingId)).status, 404, 'no credentials are served');
  const role = pgNames.bindingRole(id, bindingId);
  assert.equal((await h.unbind(id, bindingId, PG.service, PG.closed)).status, 200);
  assert.equal(await pgRoleExists(role), false);
  assert.equal((await h.deprovision(id, PG.service, PG.closed)).body?.state, 'succeeded');
});

test('mysql: a user that cannot log in from where Berth runs gets no successful bind', async () => {
  const id = await h.provisioned(MY.service, MY.unreachableUsers);
  const { id: bindingId, reply } = await h.bind(id, MY.service, MY.unreachableUsers);
  assert.equal(reply.status, 500, reply.text);
  assert.match(reply.body.description, /logging in with the new credentials failed/);
  assert.equal((await h.client.fetchBinding(id, bindingId)).status, 404);
  const user = mysqlNames.bindingUser(id, bindingId);
  assert.equal(await mysqlUserExists(user), true, 'the user was created (and will be removed by unbind)');
  assert.equal((await h.unbind(id, bindingId, MY.service, MY.unreachableUsers)).status, 200);
  assert.equal(await mysqlUserExists(user), false);
  assert.equal((await h.deprovision(id, MY.service, MY.unreachableUsers)).body?.state, 'succeeded');
});
