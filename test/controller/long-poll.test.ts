// The push channel the controller uses to learn within milliseconds that an
// operation ended (src/broker/long-poll.ts): a last_operation poll that sends
// X-Berth-Wait-Seconds is held until the operation ends; one that does not (every
// platform) is answered at once, exactly as before. Runs without a cluster.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { REPO, startTestBerth, TEST_CREDENTIALS, type TestBerth } from '../support/berth.ts';
import { release } from '../support/gated-provisioner.ts';
import { OsbClient } from '../../src/osb-client/index.ts';

const CATALOG = join(REPO, 'test/fixtures/catalog-sync-wait.yaml');
const MODULES = join(REPO, 'test/support/gated-provisioner.ts');
const ASYNC_HELD = { service_id: 'svc-sync', plan_id: 'plan-async-held' };
const org = { organization_guid: 'org-1', space_guid: 'space-1' };

describe('long-polled last_operation (X-Berth-Wait-Seconds)', () => {
  let t: TestBerth;
  let broker: OsbClient;
  before(async () => {
    t = await startTestBerth({ catalogPath: CATALOG, env: { BERTH_PROVISIONER_MODULES: MODULES } });
    broker = new OsbClient({ url: t.berth.url, auth: TEST_CREDENTIALS });
  });
  after(async () => {
    release();
    broker.close();
    await t.stop();
  });

  test('without the header the answer is immediate and carries no echo; with it, the poll is held until the operation ends', async () => {
    const p = await broker.provision('lp-1', { ...ASYNC_HELD, ...org });
    assert.equal(p.outcome, 'accepted');
    let echoed: unknown;
    const plain = await broker.instanceLastOperation('lp-1', { operation: p.operation }, { onHeaders: (h) => (echoed = h['x-berth-wait-seconds']) });
    assert.equal(plain.state, 'in progress');
    assert.equal(echoed, undefined, 'platforms see no difference');

    let answered = false;
    const held = broker
      .instanceLastOperation('lp-1', { operation: p.operation }, { headers: { 'X-Berth-Wait-Seconds': '20' }, onHeaders: (h) => (echoed = h['x-berth-wait-seconds']) })
      .then((op) => {
        answered = true;
        return op;
      });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(answered, false, 'held while the operation runs');
    release('lp-1');
    const op = await held;
    assert.equal(op.state, 'succeeded');
    assert.equal(echoed, '20', 'the answer says the wait was honoured');
  });

  test('a finished operation answers a long poll at once; nonsense values are ignored', async () => {
    const p = await broker.provision('lp-2', { ...ASYNC_HELD, ...org });
    release('lp-2');
    const op = await broker.instanceLastOperation('lp-2', { operation: p.operation }, { headers: { 'X-Berth-Wait-Seconds': '5' } });
    assert.ok(['in progress', 'succeeded'].includes(op.state));
    let echoed: unknown = 'unset';
    await broker.instanceLastOperation('lp-2', { operation: p.operation }, { headers: { 'X-Berth-Wait-Seconds': 'soon' }, onHeaders: (h) => (echoed = h['x-berth-wait-seconds']) });
    assert.equal(echoed, undefined);
  });
});
