// Broker mode's connection: which broker, with which credentials and CA, and how its failures
// become a sentence and an exit code.
//
// Where each setting comes from, first found wins:
//   URL       --broker, BERTH_BROKER_URL, the credentials file's `url`
//   user/pwd  --username/--password, BERTH_BROKER_USERNAME/BERTH_BROKER_PASSWORD, the credentials
//             file, and for a broker on this machine the credentials an embedded Berth generated
//             (~/.berth/broker-credentials.json, or $BERTH_DATA_DIR's)
//   token     --token, BERTH_BROKER_TOKEN, the credentials file's `token`: a bearer token instead of
//             a username and password (a static token of Berth, or a Kubernetes ServiceAccount token)
//   CA        --ca-file, BERTH_BROKER_CA_FILE, the credentials file's `caFile`
// The credentials file is --credentials-file or BERTH_BROKER_CREDENTIALS_FILE (YAML or JSON).
import { readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { OsbClient, OsbError, OsbTransportError, type CatalogPlan, type CatalogService, type Catalog, type OsbClientOptions } from '../../osb-client/index.ts';
import { CliError, EXIT, usageError } from '../errors.ts';
import type { Options } from '../program.ts';
import { BrokerState } from './state.ts';

export interface Session {
  client: OsbClient;
  url: string;
  state: BrokerState;
  catalog(): Promise<Catalog>;
  /** Finds an offering and plan by name or id, with a sentence listing what exists when it fails. */
  planOf(offering: string, plan: string): Promise<{ service: CatalogService; plan: CatalogPlan }>;
  /** The sentence and exit code for a failed call. */
  explain(err: unknown, doing: string): CliError;
  close(): void;
}

interface CredentialsFile {
  url?: string;
  username?: string;
  password?: string;
  token?: string;
  caFile?: string;
}

async function readCredentialsFile(path: string): Promise<CredentialsFile> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw usageError(`cannot read the credentials file ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    const { parse } = await import('yaml'); // YAML is a superset of JSON
    const value = parse(text) as CredentialsFile;
    if (value && typeof value === 'object') return value;
  } catch {
    // fall through
  }
  throw usageError(`the credentials file ${path} must be YAML or JSON with url, username and password (or token), and optionally caFile`);
}

/** The credentials an embedded Berth on this machine generated, for a broker URL on a loopback address. */
function embeddedCredentials(url: URL): { username: string; password: string } | undefined {
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) return undefined;
  const file = join(process.env.BERTH_DATA_DIR || join(homedir(), '.berth'), 'broker-credentials.json');
  try {
    const c = JSON.parse(readFileSync(file, 'utf8'));
    return typeof c?.username === 'string' && typeof c?.password === 'string' ? c : undefined;
  } catch {
    return undefined;
  }
}

/** Where broker mode connects, with which credentials and CA (the sources above); usage errors when they are wrong. */
export async function brokerConnection(opts: Options): Promise<{ url: string; shownUrl: string; auth: OsbClientOptions['auth']; caPem: string | undefined }> {
  const env = process.env;
  const fileName = opts.credentialsFile ?? env.BERTH_BROKER_CREDENTIALS_FILE;
  const file = fileName ? await readCredentialsFile(fileName) : {};
  const rawUrl: string | undefined = opts.broker ?? env.BERTH_BROKER_URL ?? file.url;
  if (!rawUrl) {
    throw usageError(
      'no broker or cluster to talk to: pass --broker URL (or set BERTH_BROKER_URL, with BERTH_BROKER_USERNAME and BERTH_BROKER_PASSWORD, or give --credentials-file) for broker mode, or a kubeconfig (--kubeconfig, KUBECONFIG or ~/.kube/config) for Kubernetes mode.',
    );
  }
  let url: URL;
  try {
    url = new URL(rawUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error();
  } catch {
    throw usageError(`--broker ${rawUrl} is not an http:// or https:// URL`);
  }
  const username: string | undefined = opts.username ?? env.BERTH_BROKER_USERNAME ?? file.username;
  const password: string | undefined = opts.password ?? env.BERTH_BROKER_PASSWORD ?? file.password;
  if ((username === undefined) !== (password === undefined)) {
    throw usageError(`give both a username and a password for ${url.origin} (--username/--password, BERTH_BROKER_USERNAME/BERTH_BROKER_PASSWORD or the credentials file), or neither`);
  }
  const token: string | undefined = opts.token ?? env.BERTH_BROKER_TOKEN ?? file.token;
  if (token !== undefined && username !== undefined) {
    throw usageError(`give either a bearer token (--token, BERTH_BROKER_TOKEN or the credentials file's token) or a username and password for ${url.origin}, not both`);
  }
  if (token !== undefined && !/^[A-Za-z0-9\-._~+/]+=*$/.test(token.trim())) {
    throw usageError('the bearer token has characters a token cannot have (allowed: letters, digits, - . _ ~ + / and trailing =)');
  }
  const auth = token !== undefined ? { bearerToken: token.trim() } : username !== undefined ? { username, password: password! } : embeddedCredentials(url);
  const caFile: string | undefined = opts.caFile ?? env.BERTH_BROKER_CA_FILE ?? file.caFile;
  let caPem: string | undefined;
  if (caFile) {
    try {
      caPem = readFileSync(caFile, 'utf8');
    } catch (err) {
      throw usageError(`cannot read the CA file ${caFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  return { url: url.href, shownUrl: `${url.origin}${url.pathname.replace(/\/$/, '')}`, auth, caPem };
}

export async function openSession(opts: Options): Promise<Session> {
  const { url, shownUrl, auth, caPem } = await brokerConnection(opts);
  const client = new OsbClient({
    url,
    auth,
    caPem,
    timeoutMs: 60_000,
    // Tells the broker's audit log which person asked (OSB's originating identity).
    originatingIdentity: { platform: 'berth-cli', value: { user: safeUser() } },
  });
  let catalog: Promise<Catalog> | undefined;

  const explain = (err: unknown, doing: string): CliError => {
    if (err instanceof CliError) return err;
    if (err instanceof OsbTransportError) {
      const why = err.kind === 'timeout' ? 'it did not answer within 60 s' : err.kind === 'aborted' ? 'the request was aborted' : causeOf(err);
      return new CliError(EXIT.unreachable, `cannot reach the broker at ${shownUrl} while ${doing}: ${why}. Check --broker (or BERTH_BROKER_URL) and that the broker is running.`);
    }
    if (err instanceof OsbError) {
      if (err.status === 401 || err.status === 403) {
        return new CliError(
          EXIT.unreachable,
          auth && 'bearerToken' in auth
            ? `the broker at ${shownUrl} refused the bearer token (HTTP ${err.status}): ${err.brokerMessage}; check --token, BERTH_BROKER_TOKEN or the credentials file.`
            : `the broker at ${shownUrl} refused ${auth ? `the credentials of "${auth.username}"` : 'a request without credentials'} (HTTP ${err.status}); check --username/--password, BERTH_BROKER_USERNAME/BERTH_BROKER_PASSWORD or the credentials file.`,
        );
      }
      if (err.status === 429) {
        return new CliError(EXIT.unreachable, `the broker at ${shownUrl} is refusing requests from here for now (HTTP 429${err.retryAfterSeconds ? `, retry after ${err.retryAfterSeconds} s` : ''}), usually after too many refused credentials: ${err.brokerMessage}`);
      }
      if (err.status === 412) {
        return new CliError(EXIT.failed, `the broker at ${shownUrl} does not speak OSB API 2.17, which berth sends (HTTP 412): ${err.brokerMessage}`);
      }
      return new CliError(EXIT.failed, `${doing} failed: ${err.brokerMessage}${err.error && err.description ? ` (${err.error})` : ''}`);
    }
    if (err instanceof Error && /certificate|self.signed|SSL|TLS/i.test(err.message)) {
      return new CliError(EXIT.unreachable, `cannot verify the broker's TLS certificate at ${shownUrl} (${err.message}); pass the CA with --ca-file or BERTH_BROKER_CA_FILE.`);
    }
    throw err;
  };

  const session: Session = {
    client,
    url: shownUrl,
    state: new BrokerState(shownUrl),
    catalog() {
      catalog ??= client.catalog().catch((err) => {
        throw explain(err, 'reading the catalog');
      });
      return catalog;
    },
    async planOf(offeringName, planName) {
      const { services } = await session.catalog();
      const service = services.find((s) => s.name === offeringName) ?? services.find((s) => s.id === offeringName);
      if (!service) throw usageError(`the broker has no offering "${offeringName}"; it offers ${services.map((s) => s.name).join(', ') || 'nothing'} (see berth marketplace)`);
      const plan = service.plans.find((p) => p.name === planName) ?? service.plans.find((p) => p.id === planName);
      if (!plan) throw usageError(`offering "${service.name}" has no plan "${planName}"; its plans are ${service.plans.map((p) => p.name).join(', ')} (see berth marketplace --offering ${service.name})`);
      return { service, plan };
    },
    explain,
    close: () => client.close(),
  };
  return session;
}

function causeOf(err: Error): string {
  const cause = err.cause as NodeJS.ErrnoException | undefined;
  if (cause?.code === 'ECONNREFUSED') return 'the connection was refused (nothing listens there)';
  if (cause?.code === 'ENOTFOUND' || cause?.code === 'EAI_AGAIN') return 'the host name does not resolve';
  if (cause && /certificate|self.signed|SSL|TLS/i.test(cause.message)) return `its TLS certificate is not trusted (${cause.message}); pass the CA with --ca-file`;
  return cause?.message ?? err.message;
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
