// Where an instance stands against its plan's maintenance_info.version: the
// version an instance is at is the one it was provisioned or last upgraded
// with (instances.maintenance_version); the catalog's is the one a platform's
// update may move it to. Versions are compared by semantic-version precedence
// (semver.org §11), which the catalog already requires of them.

/** Compares two semantic versions by precedence: negative when a < b, 0 when equal (build metadata ignored), positive when a > b. */
export function compareVersions(a: string, b: string): number {
  const [ma, pa] = parts(a);
  const [mb, pb] = parts(b);
  for (let i = 0; i < 3; i++) if (ma[i] !== mb[i]) return ma[i]! < mb[i]! ? -1 : 1;
  // A version without a pre-release is above the same version with one.
  if (pa.length === 0 || pb.length === 0) return pb.length - pa.length;
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    if (nx && ny) return BigInt(x) < BigInt(y) ? -1 : 1;
    // Numeric identifiers are below alphanumeric ones; alphanumeric ones compare in ASCII order.
    if (nx !== ny) return nx ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

function parts(version: string): [bigint[], string[]] {
  const withoutBuild = version.split('+', 1)[0]!;
  const dash = withoutBuild.indexOf('-');
  const core = dash < 0 ? withoutBuild : withoutBuild.slice(0, dash);
  const pre = dash < 0 ? [] : withoutBuild.slice(dash + 1).split('.');
  const numbers = core.split('.').map((n) => (/^\d+$/.test(n) ? BigInt(n) : 0n));
  while (numbers.length < 3) numbers.push(0n);
  return [numbers, pre];
}

/**
 * How an instance's version relates to its plan's: `behind` (an upgrade is available), `current`, `ahead`
 * (the catalog was rolled back; Berth does not downgrade), or `none` (the plan has no maintenance_info).
 * An instance with no recorded version on a plan that has one (provisioned before the plan had
 * maintenance_info) is behind.
 */
export type MaintenanceStanding = 'behind' | 'current' | 'ahead' | 'none';

export function standingOf(instanceVersion: string | undefined, planVersion: string | undefined): MaintenanceStanding {
  if (planVersion === undefined) return 'none';
  if (instanceVersion === undefined) return 'behind';
  const c = compareVersions(instanceVersion, planVersion);
  return c < 0 ? 'behind' : c > 0 ? 'ahead' : 'current';
}

/** The maintenance version of every plan of the catalog that has one, by plan id. */
export function maintenanceTargets(plans: ReadonlyArray<{ id: string; maintenanceVersion: string | undefined }>): Map<string, string> {
  const targets = new Map<string, string>();
  for (const p of plans) if (p.maintenanceVersion !== undefined) targets.set(p.id, p.maintenanceVersion);
  return targets;
}
