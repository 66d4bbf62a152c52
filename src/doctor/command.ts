// `berth doctor`: runs the broker checks (--broker URL, or the broker the CLI's broker mode
// names) or the local ones (--local), prints the report and ends with its exit code:
// 0 nothing failed (warnings allowed), 1 a check failed, 2 usage, 4 the broker cannot be
// reached or refused the credentials.
import { OsbError, OsbTransportError, type Catalog } from '../osb-client/index.ts';
import { CliError, EXIT, usageError } from '../cli/errors.ts';
import type { Options } from '../cli/program.ts';
import { exitCodeOf, runChecks, type Result } from './check.ts';
import { renderJson, renderLine, renderSummary } from './report.ts';

function formatOf(opts: Options): 'text' | 'json' {
  const o = opts.output as string | undefined;
  if (o === undefined || o === 'table' || o === 'wide') return 'text';
  if (o === 'json') return 'json';
  throw usageError(`berth doctor prints a report or JSON: use -o json, or leave -o out (not -o ${o})`);
}

/** The report, streamed line by line to a person, or whole as JSON. */
async function report<C>(checks: Parameters<typeof runChecks<C>>[0], context: C, target: string, format: 'text' | 'json'): Promise<Result[]> {
  const tty = format === 'text' && process.stdout.isTTY === true && !process.env.NO_COLOR;
  const started = performance.now();
  if (format === 'text') process.stdout.write(`berth doctor: ${target}\n`);
  const results = await runChecks(checks, context, format === 'text' ? (r) => process.stdout.write(renderLine(r, tty)) : undefined);
  const total = performance.now() - started;
  if (format === 'json') process.stdout.write(renderJson(results, total, target));
  else process.stdout.write(`\n${renderSummary(results, total, tty)}`);
  return results;
}

export async function doctor(_args: string[], opts: Options): Promise<number> {
  const format = formatOf(opts);
  if (opts.local) {
    if (opts.broker || opts.plan) throw usageError('--local checks this installation; --broker and --plan are for checking a running broker: give one or the other');
    const { LOCAL_CHECKS, localContext } = await import('./local.ts');
    const ctx = localContext(process.env);
    try {
      return exitCodeOf(await report(LOCAL_CHECKS, ctx, 'local installation (the configuration berth serve reads)', format));
    } finally {
      await ctx.close();
    }
  }
  return doctorBroker(opts, format);
}

async function doctorBroker(opts: Options, format: 'text' | 'json'): Promise<number> {
  const { brokerConnection, openSession } = await import('../cli/broker/session.ts');
  const { parseDuration } = await import('../cli/broker/wait.ts');
  const { parametersOf } = await import('../cli/parameters.ts');
  const { BROKER_CHECKS, API_VERSIONS, brokerContext, cleanup } = await import('./broker.ts');
  if (!opts.broker && !process.env.BERTH_BROKER_URL && !opts.credentialsFile && !process.env.BERTH_BROKER_CREDENTIALS_FILE) {
    throw usageError('say what to check: --broker URL (or BERTH_BROKER_URL) for a running broker, or --local for the Berth installation configured in this environment');
  }
  const timeoutMs = parseDuration(opts.timeout ?? '10m', '--timeout');
  const intervalMs = parseDuration(opts.interval ?? '1s', '--interval');
  const parameters = (await parametersOf(opts)) ?? {};
  const connection = await brokerConnection(opts);
  // Its explanations of an unreachable broker or refused credentials (exit 4) are the CLI's.
  const session = await openSession(opts);
  const ctx = brokerContext(
    { url: connection.url, auth: connection.auth, caPem: connection.caPem, timeoutMs: 60_000, originatingIdentity: { platform: 'berth-doctor', value: {} } },
    { parameters, timeoutMs, intervalMs },
  );
  try {
    // Reachable, authenticated, and the catalog for --plan: asked in each version until one is accepted.
    let catalog: Catalog | undefined;
    for (const v of [...API_VERSIONS].reverse()) {
      let a;
      try {
        a = await ctx.clientFor(v).send('GET', 'v2/catalog');
      } catch (err) {
        if (err instanceof OsbTransportError) throw session.explain(err, 'reading the catalog');
        throw err;
      }
      if (a.status === 401 || a.status === 403 || a.status === 429) {
        throw session.explain(new OsbError({ ...a, method: 'GET', path: '/v2/catalog' }), 'reading the catalog');
      }
      if (a.status === 200) {
        catalog = { services: Array.isArray(a.body?.services) ? (a.body.services as Catalog['services']) : [] };
        break;
      }
    }
    if (opts.plan) {
      const [offeringName, planName] = String(opts.plan).split(/\/(.*)/s);
      if (!offeringName || !planName) throw usageError(`--plan ${opts.plan} must be OFFERING/PLAN (names or ids), e.g. --plan postgresql/small`);
      if (!catalog) throw new CliError(EXIT.failed, `the broker at ${connection.shownUrl} answers no catalog request (X-Broker-API-Version ${API_VERSIONS.join(', ')}), so --plan cannot be found; run without --plan to see why`);
      const service = catalog.services.find((s) => s.name === offeringName) ?? catalog.services.find((s) => s.id === offeringName);
      if (!service) throw usageError(`the broker has no offering "${offeringName}"; it offers ${catalog.services.map((s) => s.name).join(', ') || 'nothing'}`);
      const plan = service.plans?.find((p) => p.name === planName) ?? service.plans?.find((p) => p.id === planName);
      if (!plan) throw usageError(`offering "${service.name}" has no plan "${planName}"; its plans are ${(service.plans ?? []).map((p) => p.name).join(', ')}`);
      ctx.target = { service, plan };
    }
    const target = `broker ${connection.shownUrl}${ctx.target ? `, plan ${ctx.target.service.name}/${ctx.target.plan.name}` : ''}`;
    // Ctrl-C during the round trip: remove what was created before leaving, as the last check would have.
    const onInterrupt = () => {
      process.stderr.write('\nberth doctor: interrupted; removing what the checks created…\n');
      void runChecks([cleanup], ctx).then(
        ([r]) => {
          process.stderr.write(renderLine(r!, false));
          process.exit(130);
        },
        () => process.exit(130),
      );
    };
    process.once('SIGINT', onInterrupt);
    try {
      return exitCodeOf(await report(BROKER_CHECKS, ctx, target, format));
    } finally {
      process.off('SIGINT', onInterrupt);
    }
  } finally {
    ctx.close();
    session.close();
  }
}

