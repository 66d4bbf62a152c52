// `berth upgrade --all` in broker mode: every instance this machine's berth knows for the broker (its state
// file) whose plan has a newer maintenance_info version than the instance reports, upgraded N at a time.
// Each instance's version is read from the broker (GET instance) before it is touched, so a second run after
// an interruption skips what the first finished and joins an upgrade still in progress (the broker answers
// the identical update with the same operation): re-running is how it resumes.
import { OsbError, type CatalogPlan, type CatalogService } from '../../osb-client/index.ts';
import { compareVersions } from '../../catalog/maintenance.ts';
import { CliError, EXIT, usageError } from '../errors.ts';
import type { Options } from '../program.ts';
import type { Session } from './session.ts';
import type { InstanceEntry } from './state.ts';

type Upgrade = (
  s: Session,
  name: string,
  entry: InstanceEntry,
  target: { version: string; description?: string },
  current: string | undefined,
  opts: Options,
) => Promise<'upgraded' | 'in progress'>;

interface Candidate {
  name: string;
  entry: InstanceEntry;
  service: CatalogService;
  plan: CatalogPlan;
  target: { version: string; description?: string };
  /** What the broker says the instance is at; undefined when it does not say (or the instance is being updated). */
  current: string | undefined;
}

const say = (line: string) => process.stderr.write(`${line}\n`);

export function concurrencyOf(value: unknown): number {
  if (value === undefined) return 4;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw usageError(`--concurrency ${String(value)} must be a whole number from 1 to 64`);
  return n;
}

export async function upgradeAll(s: Session, opts: Options, upgrade: Upgrade): Promise<number> {
  const concurrency = concurrencyOf(opts.concurrency);
  const catalog = await s.catalog();
  const planned = catalog.services.flatMap((service) => service.plans.map((plan) => ({ service, plan })));
  if (opts.plan !== undefined) {
    const matching = planned.filter(({ plan }) => plan.id === opts.plan || plan.name === opts.plan);
    if (matching.length === 0) {
      throw usageError(`no plan "${opts.plan}" in the broker's catalog; plans: ${planned.map(({ service, plan }) => `${service.name}/${plan.name}`).join(', ') || 'none'}`);
    }
  }
  const entries = Object.entries(s.state.section().instances).sort(([a], [b]) => a.localeCompare(b));
  const summary = { upgraded: 0, current: 0, newer: 0, failed: 0, inProgress: 0, unmanaged: 0 };
  const failures: string[] = [];
  const candidates: Candidate[] = [];
  for (const [name, entry] of entries) {
    const found = planned.find(({ plan }) => plan.id === entry.plan_id);
    if (opts.plan !== undefined && !(found && (found.plan.id === opts.plan || found.plan.name === opts.plan))) continue;
    if (!found?.plan.maintenance_info) {
      summary.unmanaged++;
      continue;
    }
    const target = found.plan.maintenance_info;
    let current: string | undefined;
    try {
      current = (await s.client.fetchInstance(entry.id, { service_id: entry.service_id, plan_id: entry.plan_id })).maintenance_info?.version;
    } catch (err) {
      if (!(err instanceof OsbError) || err.status === 401 || err.status === 403 || err.status >= 500) throw s.explain(err, `reading instance ${name}`);
      if (err.status === 404 || err.status === 410) {
        summary.failed++;
        failures.push(`${name}: the broker no longer has it (remove it with \`berth deprovision ${name}\`)`);
        continue;
      }
      // 422 while an update runs (a previous run's upgrade: the identical request joins it), or a broker that
      // does not let instances be read: the update itself says whether there is anything to do.
    }
    if (current !== undefined && current === target.version) {
      summary.current++;
      continue;
    }
    if (current !== undefined && compareVersions(current, target.version) > 0) {
      summary.newer++;
      say(`${name}: at maintenance version ${current}, newer than plan ${found.plan.name}'s ${target.version}; left as it is`);
      continue;
    }
    candidates.push({ name, entry, service: found.service, plan: found.plan, target, current });
  }

  if (opts.dryRun) {
    for (const c of candidates) {
      process.stdout.write(`instance/${c.name} would be upgraded (${c.service.name}/${c.plan.name}) from ${c.current ?? 'an unknown version'} to ${c.target.version}\n`);
    }
    say(`dry run: ${candidates.length} to upgrade, ${summary.current} already current${summary.newer ? `, ${summary.newer} newer than the catalog` : ''}${summary.failed ? `, ${summary.failed} not found` : ''}`);
    for (const f of failures) say(`  ${f}`);
    return EXIT.ok;
  }

  let next = 0;
  let started = 0;
  const worker = async () => {
    while (next < candidates.length) {
      const c = candidates[next++]!;
      say(`[${++started}/${candidates.length}] upgrading ${c.name} (${c.service.name}/${c.plan.name}) from ${c.current ?? 'an unknown version'} to ${c.target.version}`);
      try {
        const outcome = await upgrade(s, c.name, c.entry, c.target, c.current, opts);
        if (outcome === 'in progress') summary.inProgress++;
        else summary.upgraded++;
        process.stdout.write(`instance/${c.name} ${outcome === 'in progress' ? 'upgrading' : `upgraded to maintenance version ${c.target.version}`}\n`);
      } catch (err) {
        // The broker unreachable or refusing our credentials ends the run: every other instance would fail the same way.
        if (err instanceof CliError && err.exitCode === EXIT.unreachable) throw err;
        summary.failed++;
        const message = err instanceof Error ? err.message : String(err);
        failures.push(`${c.name}: ${message}`);
        say(`${c.name}: ${message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, candidates.length) }, worker));

  const parts = [`${summary.upgraded} upgraded`, `${summary.current} already current`];
  if (summary.inProgress) parts.push(`${summary.inProgress} in progress`);
  if (summary.newer) parts.push(`${summary.newer} newer than the catalog`);
  parts.push(`${summary.failed} failed`);
  say(`upgrade --all: ${parts.join(', ')}`);
  if (failures.length > 0) {
    for (const f of failures) say(`  ${f}`);
    throw new CliError(EXIT.failed, `${failures.length} instance(s) were not upgraded; run \`berth upgrade --all${opts.plan ? ` --plan ${opts.plan}` : ''}\` again after fixing the cause (finished ones are skipped).`);
  }
  return EXIT.ok;
}
