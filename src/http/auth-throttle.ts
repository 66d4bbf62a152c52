// Per-client limit on failed basic-auth attempts. A client (remote address)
// that fails `limit` times within a window gets 429 for the rest of that
// window, whatever it sends, so guessing runs at `limit` tries per window
// instead of thousands per second. Counting starts at a client's first failure;
// a success clears its count. Small and in-process on purpose: the check also
// gates the fast path, which runs before Express.

import { isIPv6 } from 'node:net';

/** Clients remembered at once; the oldest are forgotten first beyond this. */
const MAX_CLIENTS = 10_000;

interface Window {
  startedAt: number;
  failures: number;
}

export interface FailureOutcome {
  /** The first failure of this client's window: worth a log line. */
  firstInWindow: boolean;
  /** This failure used up the client's allowance: it is throttled from now on. */
  throttledNow: boolean;
}

export class AuthThrottle {
  readonly limit: number;
  readonly windowMs: number;
  readonly #now: () => number;
  readonly #clients = new Map<string, Window>();

  constructor(opts: { limit: number; windowMs: number; now?: () => number }) {
    this.limit = opts.limit;
    this.windowMs = opts.windowMs;
    this.#now = opts.now ?? Date.now;
  }

  #current(client: string): Window | undefined {
    const w = this.#clients.get(client);
    if (w && this.#now() - w.startedAt >= this.windowMs) {
      this.#clients.delete(client);
      return undefined;
    }
    return w;
  }

  /** Whole seconds until the client may try again; 0 when it is not throttled. */
  retryAfterSeconds(client: string): number {
    const w = this.#current(client);
    if (!w || w.failures < this.limit) return 0;
    return Math.max(1, Math.ceil((w.startedAt + this.windowMs - this.#now()) / 1000));
  }

  failed(client: string): FailureOutcome {
    let w = this.#current(client);
    const firstInWindow = w === undefined;
    if (!w) {
      if (this.#clients.size >= MAX_CLIENTS) this.#forgetOldest();
      w = { startedAt: this.#now(), failures: 0 };
      this.#clients.set(client, w);
    }
    w.failures++;
    return { firstInWindow, throttledNow: w.failures === this.limit };
  }

  succeeded(client: string): void {
    this.#clients.delete(client);
  }

  #forgetOldest(): void {
    // Map order is insertion order: windows that ended go first, then the oldest ones.
    for (const [client, w] of this.#clients) {
      if (this.#now() - w.startedAt >= this.windowMs || this.#clients.size >= MAX_CLIENTS) this.#clients.delete(client);
      else break;
    }
  }
}

/**
 * The address a throttle counts against: the IPv4 address, or the /64 network of an IPv6 one (a single
 * host usually holds a whole /64, so counting per /128 would give it billions of allowances).
 */
export function clientOf(req: { socket: { remoteAddress?: string | undefined } }): string {
  const address = req.socket.remoteAddress;
  if (!address) return 'unknown';
  if (!isIPv6(address) || address.startsWith('::ffff:')) return address;
  return `${ipv6Prefix64(address.split('%')[0]!)}::/64`;
}

/** The first four groups of an IPv6 address, expanded ("2001:db8::1" → "2001:db8:0:0"). */
function ipv6Prefix64(address: string): string {
  const [head = '', tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':');
}
