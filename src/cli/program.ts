// The `berth` command line: every command, flag, help text and example, and the dispatch to
// the module that runs it. This file imports only commander: each command's code is loaded
// when that command runs, so `berth --help` and `berth get …` do not pay for the broker's
// own modules (express, knex, pino, provisioners) or for YAML when nobody asked for YAML.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { CliError, EXIT } from './errors.ts';

/** What a command's action receives: its positional arguments and every option (its own and the global ones). */
export type Options = Record<string, any>;
export type Handler = (args: string[], opts: Options) => Promise<number | void>;

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Examples appended to a command's --help. */
const examples = (...lines: string[]) => `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;

function lazy(load: (opts: Options) => Promise<Handler>) {
  return async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const positional = args.slice(0, -2).flatMap((a) => (a === undefined ? [] : Array.isArray(a) ? a : [a as string]));
    const opts = command.optsWithGlobals();
    const handler = await load(opts);
    const code = await handler(positional, opts);
    process.exitCode = code ?? EXIT.ok;
  };
}

// Which module runs each verb: the same file in each mode's folder.
const FILE_OF = {
  marketplace: 'inspect',
  get: 'inspect',
  describe: 'inspect',
  trace: 'inspect',
  provision: 'instances',
  update: 'instances',
  upgrade: 'instances',
  deprovision: 'instances',
  bind: 'bindings',
  unbind: 'bindings',
} as const;

const MODULES = {
  broker: { inspect: () => import('./broker/inspect.ts'), instances: () => import('./broker/instances.ts'), bindings: () => import('./broker/bindings.ts') },
  kubernetes: { inspect: () => import('./kube/inspect.ts'), instances: () => import('./kube/instances.ts'), bindings: () => import('./kube/bindings.ts') },
} as const;

/**
 * Broker mode when a broker is named (flag, variable or credentials file); else Kubernetes mode when a kubeconfig is
 * there; else broker mode, which then says that there is nothing to talk to.
 */
export function modeOf(opts: Options, env: NodeJS.ProcessEnv = process.env): 'broker' | 'kubernetes' {
  if (opts.broker || env.BERTH_BROKER_URL || opts.credentialsFile || env.BERTH_BROKER_CREDENTIALS_FILE) return 'broker';
  if (opts.kubeconfig || env.KUBECONFIG || existsSync(join(env.HOME || homedir(), '.kube', 'config'))) return 'kubernetes';
  return 'broker';
}

type Verb = keyof typeof FILE_OF;
const verb = (name: Verb) =>
  lazy(async (opts) => ((await MODULES[modeOf(opts)][FILE_OF[name]]()) as unknown as Record<string, Handler>)[name]!);

const server = (which: 'serve' | 'controller' | 'migrate' | 'keys rotate' | 'catalog validate') =>
  lazy(async () => {
    const { runServerCommand } = await import('./server.ts');
    return (args) => runServerCommand(which, args[0]);
  });

/** Flags shared by the verbs that send parameters. */
function withParameters(c: Command): Command {
  return c
    .option('-p, --param <key=value>', 'a parameter; typed (5432 is a number, true a boolean, {…} JSON), a.b=c nests; repeatable', collect)
    .option('-c, --config <json|@file>', 'all parameters as a JSON object, or @file holding JSON or YAML (-p values go on top)');
}

/** Flags of the verbs that wait for an asynchronous operation. */
function withWait(c: Command): Command {
  return c
    .option('--async', 'return as soon as the broker accepted the request, without waiting')
    .option('--timeout <duration>', 'how long to wait (e.g. 90s, 10m, 1h)', '30m')
    .addOption(new Option('--interval <duration>', 'poll interval when the broker sends no Retry-After').default('1s').hideHelp());
}

export function buildProgram(): Command {
  const program = new Command('berth');
  program
    .usage('<command> [options]')
    .description(
      "Service instances and bindings: the cluster's ServiceInstance/ServiceBinding resources (Kubernetes mode, with a kubeconfig), or any Open Service Broker directly (broker mode, --broker URL); and the Berth broker itself (berth serve).",
    )
    .option('--broker <url>', 'talk OSB to this broker (env BERTH_BROKER_URL)')
    .option('--username <name>', 'broker user (env BERTH_BROKER_USERNAME)')
    .option('--password <password>', 'broker password (env BERTH_BROKER_PASSWORD; prefer it or a credentials file: argv is visible to other users)')
    .option('--token <token>', 'broker bearer token instead of a username and password (env BERTH_BROKER_TOKEN; prefer it or a credentials file: argv is visible to other users)')
    .option('--credentials-file <path>', 'YAML/JSON file with url, username, password (or token), caFile (env BERTH_BROKER_CREDENTIALS_FILE)')
    .option('--ca-file <path>', 'PEM file of the CA to trust for an https broker (env BERTH_BROKER_CA_FILE)')
    .option('--kubeconfig <path>', 'kubeconfig for Kubernetes mode (env KUBECONFIG)')
    .option('-n, --namespace <namespace>', "namespace (Kubernetes mode; default: the context's)")
    .option('-A, --all-namespaces', 'every namespace (Kubernetes mode)')
    .option('-o, --output <format>', 'table, wide, json, yaml or name')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .showHelpAfterError('(add --help for usage and examples)')
    .exitOverride()
    .addHelpText(
      'after',
      `
Exit codes: 0 success; 1 the operation failed (its description is printed); 2 usage error;
3 timed out while the operation is still running; 4 cannot reach or authenticate to the broker/cluster.
${examples(
  'export BERTH_BROKER_URL=http://127.0.0.1:8080 BERTH_BROKER_USERNAME=berth BERTH_BROKER_PASSWORD=…',
  'berth marketplace',
  'berth provision orders-db --offering postgresql --plan small -p extensions=\'["citext"]\'',
  'berth bind orders-db --name orders-app',
  'berth describe binding orders-app --show-secrets -o json',
  'berth unbind orders-app && berth deprovision orders-db',
)}`,
    );

  // ---- developers' verbs ------------------------------------------------------------------

  program
    .command('marketplace')
    .description('offerings with their plans (free or paid) and descriptions; --offering shows plans with their parameters')
    .option('--offering <name>', "one offering's plans and the parameters each accepts")
    .addHelpText('after', examples('berth marketplace', 'berth marketplace --offering postgresql', 'berth marketplace -o json'))
    .action(verb('marketplace'));

  withWait(
    withParameters(
      program
        .command('provision <name>')
        .description('create a service instance and wait until it is ready')
        .requiredOption('--offering <offering>', 'offering (service) name or id')
        .requiredOption('--plan <plan>', 'plan name or id'),
    )
      .option('--from-secret <secret[/key]>', 'parameters from a key (default "parameters") of a Secret holding a JSON object (Kubernetes mode)')
      .option('-l, --label <key=value>', 'a label on the ServiceInstance (Kubernetes mode); repeatable', collect),
  )
    .addHelpText(
      'after',
      examples(
        'berth provision orders-db --offering postgresql --plan small',
        'berth provision stripe --offering user-provided --plan standard -p credentials=\'{"key":"sk_test_…"}\'',
        'berth provision cache --offering redis --plan small -c @params.yaml --async',
        'berth provision orders-db --offering postgresql --plan small -o json | jq .instance_id',
      ),
    )
    .action(verb('provision'));

  withWait(withParameters(program.command('update <name>').description("change an instance's plan or parameters").option('--plan <plan>', 'the new plan')))
    .addHelpText('after', examples('berth update orders-db --plan large', 'berth update orders-db -p extensions=\'["citext","pg_trgm"]\''))
    .action(verb('update'));

  withWait(
    program
      .command('upgrade [name]')
      .description("move an instance (or with --all every instance behind) to its plan's current maintenance version")
      .option('--all', 'every instance berth knows for the broker whose plan has a newer maintenance version (broker mode)')
      .option('--plan <plan>', 'with --all: only instances of this plan (name or id)')
      .option('--dry-run', 'with --all: list what would be upgraded, change nothing')
      .option('--concurrency <n>', 'with --all: upgrades running at once (default 4)'),
  )
    .addHelpText(
      'after',
      examples('berth upgrade orders-db', 'berth upgrade orders-db --async', 'berth upgrade --all --dry-run', 'berth upgrade --all --plan small --concurrency 2'),
    )
    .action(verb('upgrade'));

  withWait(
    withParameters(
      program
        .command('bind <instance>')
        .description('create a binding (credentials) for an instance')
        .option('--name <binding>', 'binding name (default: the instance name)')
        .option('--secret-name <secret>', 'Secret to write the credentials to (Kubernetes mode; default: the binding name)')
        .option('-l, --label <key=value>', 'a label on the ServiceBinding (Kubernetes mode); repeatable', collect)
        .option('--show-secrets', 'print the credentials (-o json/yaml)'),
    ),
  )
    .addHelpText('after', examples('berth bind orders-db', 'berth bind orders-db --name orders-app -o json --show-secrets | jq .binding.credentials'))
    .action(verb('bind'));

  withWait(program.command('unbind <binding>').description('delete a binding (its credentials stop working)'))
    .addHelpText('after', examples('berth unbind orders-app'))
    .action(verb('unbind'));

  withWait(program.command('deprovision <name>').description('delete a service instance (unbind its bindings first)'))
    .addHelpText('after', examples('berth deprovision orders-db', 'berth deprovision orders-db --async'))
    .action(verb('deprovision'));

  program
    .command('get <kind> [name]')
    .description('list instances, bindings, offerings or plans (kubectl-style columns)')
    .addHelpText('after', examples('berth get instances', 'berth get instances -o wide', 'berth get bindings -o name', 'berth get plans -o yaml', 'berth get instance orders-db -o json'))
    .action(verb('get'));

  program
    .command('describe <kind> <name>')
    .description('an instance or binding in detail: last operation with times, bindings, dashboard URL, credentials with --show-secrets')
    .option('--show-secrets', 'show parameters and credentials')
    .addHelpText('after', examples('berth describe instance orders-db', 'berth describe binding orders-app --show-secrets'))
    .action(verb('describe'));

  program
    .command('trace <instance>')
    .description('the tree instance → bindings → Secrets → what the provisioner made (database and roles, Helm release and workloads), each with its state and full messages')
    .option('--refresh', 'Kubernetes mode: have the controller ask the broker again before showing its record (a forced resync)')
    .addHelpText('after', examples('berth trace orders-db', 'berth trace orders-db -o yaml', 'berth trace orders-db --refresh'))
    .action(verb('trace'));

  program
    .command('completion <shell>')
    .description('print a bash or zsh completion script')
    .addHelpText(
      'after',
      examples('source <(berth completion bash)            # bash, e.g. in ~/.bashrc', 'berth completion zsh > "${fpath[1]}/_berth"    # zsh, then restart the shell'),
    )
    .action(
      lazy(async () => {
        const { completionScript } = await import('./completion.ts');
        return async ([shell]) => {
          process.stdout.write(completionScript(program, shell!));
        };
      }),
    );

  // ---- the broker itself --------------------------------------------------------------------

  program.command('serve').description('start the Berth broker (the default command; what `npm start` runs; BERTH_CONTROLLER=true also runs the Kubernetes controller)').action(server('serve'));
  program.command('controller').description('run the Kubernetes controller (services.berth.dev resources) against a broker').action(server('controller'));
  program.command('migrate').description('apply database migrations and exit').action(server('migrate'));
  program
    .command('keys')
    .description('encryption keys')
    .command('rotate')
    .description('re-seal every stored secret under the first key of BERTH_ENCRYPTION_KEYS')
    .action(server('keys rotate'));
  withParameters(
    program
      .command('doctor')
      .description('check a running broker against the OSB API (--broker URL, any broker) or this Berth installation (--local)')
      .option('--local', "this installation, from berth serve's configuration: database, migrations, keys, provisioners, cluster permissions, TLS")
      .option('--plan <offering/plan>', 'provision, bind, unbind and deprovision a test instance of this plan (with -c/-p parameters)'),
  )
    .option('--timeout <duration>', 'how long one asynchronous operation may take before its check fails', '10m')
    .addOption(new Option('--interval <duration>', 'poll interval when the broker sends no Retry-After').default('1s').hideHelp())
    .addHelpText(
      'after',
      `\nExit codes: 0 every check passed (warnings allowed); 1 a check failed; 2 usage error; 4 cannot reach or authenticate to the broker.\n${examples(
        'berth doctor --broker https://broker.example.com --username admin   # password from BERTH_BROKER_PASSWORD',
        'berth doctor --broker http://127.0.0.1:8080 --plan postgresql/small -c \'{"extensions":["citext"]}\'',
        'berth doctor --local',
        'berth doctor --local -o json | jq \'.checks[] | select(.status=="fail")\'',
      )}`,
    )
    .action(lazy(async () => (await import('../doctor/command.ts')).doctor));
  addAdminCommands(program);
  program
    .command('catalog')
    .description('the broker catalog file')
    .command('validate [file]')
    .description('check a catalog file (and what its provisioners can check offline)')
    .action(server('catalog validate'));

  return program;
}

/** `berth admin …`: the admin API's escape hatches and the orphan sweeper (src/cli/admin/admin.ts). */
function addAdminCommands(program: Command): void {
  const admin = program
    .command('admin')
    .description("Berth's admin API: list, retry, fail, purge, repair, sweep (token: BERTH_ADMIN_TOKEN or BERTH_ADMIN_TOKEN_FILE)")
    .option('--admin-url <url>', 'the admin API (env BERTH_ADMIN_URL; default http://127.0.0.1:8081)')
    .option('--admin-token-file <path>', 'file holding the admin token (env BERTH_ADMIN_TOKEN_FILE; or BERTH_ADMIN_TOKEN)')
    .option('--admin-ca-file <path>', 'PEM file of the CA to trust for an https admin API (env BERTH_ADMIN_CA_FILE)')
    .addHelpText(
      'after',
      examples(
        'berth admin list operations --stuck 30m',
        'berth admin list instances --failed --plan small -o json',
        'berth admin fail 5f0c… --reason "backend ticket 4711"',
        'berth admin retry 5f0c… --reason "backend fixed"',
        'berth admin repair orders-db-id --reason "database dropped by mistake"',
        'berth admin purge orders-db-id --reason "removed by hand on the server"',
        'berth admin sweep',
        'berth admin sweep --delete --reason "quarterly cleanup" --only postgres:main/database/berth_i_…',
      ),
    );
  const run = (name: 'list' | 'audit' | 'retry' | 'fail' | 'purge' | 'repair' | 'sweep') => lazy(async () => (await import('./admin/admin.ts'))[name]);
  admin
    .command('list <what>')
    .description('list instances, bindings or operations')
    .option('--failed', 'only failed ones')
    .option('--stuck <duration>', 'only those with an operation unfinished for longer than this (e.g. 30m, 2h)')
    .option('--plan <plan>', 'plan id or name')
    .option('--offering <offering>', 'offering id or name')
    .option('--state <state>', 'state (instances/bindings: creating, ready, create_failed, updating, deleting, deleted; operations: in progress, succeeded, failed)')
    .option('--kind <kind>', 'operations: provision, update, deprovision, bind, unbind, repair')
    .option('--instance <id>', 'one instance (its bindings, its operations)')
    .option('--limit <n>', 'at most this many per page (default 100)')
    .option('--all', 'every page')
    .action(run('list'));
  admin.command('audit').description('admin actions recorded in the audit table, newest first').option('--instance <id>', 'one instance').option('--limit <n>', 'at most this many').action(run('audit'));
  const withReason = (c: Command) => c.option('--reason <text>', 'why (required; recorded in the audit table)');
  withReason(admin.command('retry <operation>').description('queue a failed operation again (same request, same plan)')).action(run('retry'));
  withReason(admin.command('fail <operation>').description('end a stuck operation as failed (its worker stops and cannot overwrite it)')).action(run('fail'));
  withReason(admin.command('purge <instance>').description('forget an instance and its bindings without calling the provisioner')).action(run('purge'));
  withReason(admin.command('repair <instance>').description("re-run the provisioner's idempotent create steps over a ready instance and its bindings")).action(run('repair'));
  withReason(
    admin
      .command('sweep')
      .description('compare Berth\'s state with every backend: orphans (no live instance) and missing resources (live instance, resource gone)')
      .option('--delete', 'delete the orphans (only those Berth named or labelled; needs --reason)')
      .option('--only <id>', 'with --delete: only this orphan (its id from the report); repeatable', collect),
  ).action(run('sweep'));
}

/** Runs the CLI; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  // `berth` alone starts the broker, as it always has (containers run it so); any other
  // first word that is not a command is an error, not an argument to serve.
  if (argv.length === 0) argv = ['serve'];
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has printed the message (and --help its text) already.
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version' ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof CliError) {
      process.stderr.write(`berth: ${err.message}\n`);
      return err.exitCode;
    }
    // Not a message for a user: a bug. The stack helps whoever reports it.
    process.stderr.write(`berth: unexpected error (a bug in berth; please report it): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT.failed;
  }
}
