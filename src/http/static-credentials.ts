// The basic-auth pairs and static bearer tokens Berth accepts, as one matcher.
// BERTH_BEARER_TOKENS_FILE is re-read when it changes (a mounted Secret rotated
// with a new token added, later the old one removed): a file that reads and
// parses replaces the file's tokens; one that does not is logged (line number,
// never a token) and the previous tokens stay accepted.
import type { Logger } from 'pino';
import type { Config, Credential } from '../config.ts';
import { readTokenFile } from '../lib/bearer-tokens.ts';
import { pollFiles } from '../lib/file-poller.ts';
import { credentialMatcher } from './checks.ts';

export function staticCredentials(
  credentials: Credential[],
  bearer: Config['bearer'],
  reloadMs: number,
  log: Logger,
): { matches: (header: string | undefined) => boolean; stop(): void } {
  let matcher = credentialMatcher(credentials, [...bearer.tokens, ...bearer.fileTokens]);
  const file = bearer.tokensFile;
  const poller = file
    ? pollFiles([file], reloadMs, () => {
        try {
          const fromFile = readTokenFile(file, bearer.minLength);
          matcher = credentialMatcher(credentials, [...bearer.tokens, ...fromFile]);
          log.info({ file, tokens: fromFile.length }, 'bearer tokens file re-read');
        } catch (err) {
          log.warn({ reason: (err as Error).message }, 'the bearer tokens file changed but cannot be used: the previous tokens stay accepted');
        }
      })
    : undefined;
  return { matches: (header) => matcher(header), stop: () => poller?.stop() };
}
