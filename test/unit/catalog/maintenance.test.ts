// Semantic-version precedence of maintenance_info versions (semver.org §11) and where an instance stands.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareVersions, maintenanceTargets, standingOf } from '../../../src/catalog/maintenance.ts';

test('versions compare by semver precedence, not as text', () => {
  const ordered = ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0', '1.2.0', '1.10.0', '2.0.0', '10.0.0'];
  for (let i = 0; i < ordered.length; i++) {
    for (let j = 0; j < ordered.length; j++) {
      assert.equal(Math.sign(compareVersions(ordered[i]!, ordered[j]!)), Math.sign(i - j), `${ordered[i]} vs ${ordered[j]}`);
    }
  }
  assert.equal(compareVersions('1.0.0+build.1', '1.0.0+build.2'), 0, 'build metadata has no precedence');
});

test('an instance is behind, current or ahead of its plan; plans without maintenance_info have no standing', () => {
  assert.equal(standingOf('1.0.0', '1.1.0'), 'behind');
  assert.equal(standingOf(undefined, '1.0.0'), 'behind', 'provisioned before the plan had maintenance_info');
  assert.equal(standingOf('1.1.0', '1.1.0'), 'current');
  assert.equal(standingOf('2.0.0', '1.10.0'), 'ahead');
  assert.equal(standingOf('1.0.0', undefined), 'none');
  assert.deepEqual([...maintenanceTargets([{ id: 'a', maintenanceVersion: '1.0.0' }, { id: 'b', maintenanceVersion: undefined }])], [['a', '1.0.0']]);
});
