// Instance metadata (OSB `metadata.labels` / `metadata.attributes`) of the database kinds, on the machine's real
// PostgreSQL and MariaDB servers: which server and database an instance lives in, as a fetched instance (2.17)
// answers it, kept through an update (which never makes their bindings stale: names come from ids, the server
// cannot change).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mysqlNames, pgNames } from '../../src/provisioners/sql/names.ts';
import { DbBerth, MY, PG } from './support.ts';

let h: DbBerth;
before(async () => {
  h = await DbBerth.start();
});
after(async () => {
  await h?.stop();
});

const fetch = (id: string, version: string) => h.client.request('GET', `/v2/service_instances/${id}`, { headers: { 'X-Broker-API-Version': version } });

for (const k of [
  { name: 'postgres', ids: PG, service: PG.service, from: PG.small, to: PG.large, database: pgNames.database, host: /^127\.0\.0\.1:5432$|:\d+$/ },
  { name: 'mysql', ids: MY, service: MY.service, from: MY.small, to: MY.large, database: mysqlNames.database, host: /:\d+$/ },
]) {
  test(`${k.name}: a fetched instance names its server and database; an update keeps them and leaves bindings current`, async () => {
    const instance = await h.provisioned(k.service, k.from);
    const binding = await h.bound(instance, k.service, k.from);
    const g = await fetch(instance, '2.17');
    assert.equal(g.status, 200, g.text);
    assert.deepEqual(g.body.metadata.labels, { 'berth.dev/server': 'local', 'berth.dev/database': k.database(instance) });
    assert.equal(g.body.metadata.attributes['berth.dev/kind'], k.name);
    assert.match(g.body.metadata.attributes['berth.dev/address'], k.host);
    assert.doesNotMatch(JSON.stringify(g.body.metadata), /password|@/, 'no credential in instance metadata');
    assert.equal((await fetch(instance, '2.16')).body.metadata, undefined, 'a fetched instance carries metadata from 2.17');

    const u = await h.update(instance, k.service, { plan_id: k.to, previous_values: { plan_id: k.from } });
    assert.equal(u.last.body.state, 'succeeded', u.last.text);
    assert.deepEqual((await fetch(instance, '2.17')).body.metadata, g.body.metadata);
    const b = await h.client.request('GET', `/v2/service_instances/${instance}/service_bindings/${binding.id}`);
    assert.equal(b.body.metadata, undefined, 'moving between plans on one server changes no credentials');
  });
}
