// Bearer tokens checked by the cluster (BERTH_TOKENREVIEW=true): a platform
// inside the cluster sends its projected ServiceAccount token, the API server's
// TokenReview says whose it is, and BERTH_TOKENREVIEW_ALLOWED says whether that
// identity may use the broker.
//
// Verdicts are cached for a short while, either way, keyed by a hash of the
// token (the token itself is never kept as a key, logged or shown), so a
// platform polling last_operation costs one review per token and interval, not
// one per request; the cache is bounded and its TTL is what keeps a revoked
// token (ServiceAccount deleted) from staying valid. Concurrent checks of one
// token share one review. A failed review (API server unreachable) is not
// cached: the client gets 503 and the next request asks again.
//
// @kubernetes/client-node is loaded by KubernetesAccess on the first review only.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { KubernetesAccess } from '../kubernetes/client.ts';
import type { TokenChecker, TokenVerdict } from './checks.ts';

/** Tokens remembered at once; the oldest are forgotten first beyond this. */
const MAX_CACHED = 5_000;

export interface TokenReviewOptions {
  kube: KubernetesAccess;
  users: readonly string[];
  groups: readonly string[];
  audiences: readonly string[];
  cacheMs: number;
  log: Logger;
  now?: () => number;
  /** The review itself; the default asks the API server (tests of the cache may pass their own). */
  review?: (token: string) => Promise<{ authenticated: boolean; username?: string; groups?: string[]; audiences?: string[] }>;
}

export class TokenReviewer implements TokenChecker {
  readonly #opts: TokenReviewOptions;
  readonly #now: () => number;
  readonly #cache = new Map<string, { verdict: TokenVerdict; until: number }>();
  readonly #pending = new Map<string, Promise<TokenVerdict>>();
  #lastFailureLog = 0;

  constructor(opts: TokenReviewOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  /** Reviews actually sent to the API server (for tests and metrics). */
  reviews = 0;

  check(token: string): TokenVerdict | Promise<TokenVerdict> {
    const key = createHash('sha256').update(token).digest('base64');
    const cached = this.#cache.get(key);
    if (cached) {
      if (cached.until > this.#now()) return cached.verdict;
      this.#cache.delete(key);
    }
    let pending = this.#pending.get(key);
    if (!pending) {
      pending = this.#ask(token).then(
        (verdict) => {
          this.#pending.delete(key);
          if (this.#opts.cacheMs > 0) {
            if (this.#cache.size >= MAX_CACHED) this.#cache.delete(this.#cache.keys().next().value!);
            this.#cache.set(key, { verdict, until: this.#now() + this.#opts.cacheMs });
          }
          return verdict;
        },
        (err: unknown) => {
          this.#pending.delete(key);
          throw err;
        },
      );
      this.#pending.set(key, pending);
    }
    return pending;
  }

  async #ask(token: string): Promise<TokenVerdict> {
    const { users, groups, audiences, log } = this.#opts;
    let status: Awaited<ReturnType<NonNullable<TokenReviewOptions['review']>>>;
    this.reviews++;
    try {
      status = await (this.#opts.review ?? ((t) => this.#askApiServer(t)))(token);
    } catch (err) {
      // Once per 10 s at most: a client retrying during an outage must not flood the log.
      if (this.#now() - this.#lastFailureLog > 10_000) {
        this.#lastFailureLog = this.#now();
        const code = (err as { code?: number }).code;
        log.error({ status: typeof code === 'number' ? code : undefined, reason: (err as Error).message?.split('\n')[0]?.slice(0, 200) }, "TokenReview failed: bearer tokens cannot be checked (is the API server reachable, and may Berth's identity create tokenreviews?)");
      }
      throw err;
    }
    if (!status.authenticated || !status.username) return { kind: 'refused' };
    // With audiences asked for, the API server answers with the ones the token is valid for.
    if (audiences.length > 0 && !(status.audiences ?? []).some((a) => audiences.includes(a))) return { kind: 'refused' };
    const identity = status.username;
    const allowed = users.includes(identity) || (status.groups ?? []).some((g) => groups.includes(g));
    if (allowed) log.debug({ identity }, 'bearer token reviewed: allowed');
    else log.warn({ identity }, 'bearer token reviewed: valid, but its identity is not in BERTH_TOKENREVIEW_ALLOWED');
    return allowed ? { kind: 'allowed', identity } : { kind: 'not-allowed', identity };
  }

  async #askApiServer(token: string) {
    const api = await this.#opts.kube.api((k8s) => k8s.AuthenticationV1Api);
    const spec = this.#opts.audiences.length > 0 ? { token, audiences: [...this.#opts.audiences] } : { token };
    const review = await api.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec } });
    const s = review.status ?? {};
    return { authenticated: s.authenticated === true, username: s.user?.username, groups: s.user?.groups, audiences: s.audiences };
  }
}
