// BERTH_DASHBOARD_URL and BERTH_DASHBOARD_LINK_DAYS (config.ts): dashboards only when asked for, a usable base URL or a sentence.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../../src/config.ts';

test('no BERTH_DASHBOARD_URL: no dashboards', () => {
  assert.equal(loadConfig({}).dashboard, undefined);
  assert.equal(loadConfig({ BERTH_DASHBOARD_URL: '  ' }).dashboard, undefined);
});

test('a base URL, with a path prefix, without its trailing slash; the link lifetime in days', () => {
  assert.deepEqual(loadConfig({ BERTH_DASHBOARD_URL: 'https://apps.example.com/berth/' }).dashboard, { baseUrl: 'https://apps.example.com/berth', linkLifetimeMs: 365 * 86_400_000 });
  assert.equal(loadConfig({ BERTH_DASHBOARD_URL: 'http://127.0.0.1:8080', BERTH_DASHBOARD_LINK_DAYS: '7' }).dashboard?.linkLifetimeMs, 7 * 86_400_000);
});

test('what cannot be a base URL is refused with a sentence naming the variable', () => {
  for (const bad of ['berth.example.com', 'ftp://berth.example.com', 'https://berth.example.com/?a=1', 'https://u:p@berth.example.com']) {
    assert.throws(() => loadConfig({ BERTH_DASHBOARD_URL: bad }), (err: Error) => err instanceof ConfigError && /BERTH_DASHBOARD_URL/.test(err.message), bad);
  }
  assert.throws(() => loadConfig({ BERTH_DASHBOARD_URL: 'https://b.example', BERTH_DASHBOARD_LINK_DAYS: '0' }), /BERTH_DASHBOARD_LINK_DAYS/);
});
