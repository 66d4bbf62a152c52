// The HTTP server's defences against slow or idle clients, and its part of
// the graceful shutdown.
//
// Slow clients: Node closes a connection whose request headers arrive too
// slowly (headersTimeout) or whose request is not complete in time
// (requestTimeout), but not one that connects and sends nothing; those get
// the same headers timeout here. Open connections are capped below the file
// descriptor limit; at the cap the oldest connection that has no request in
// progress (silent, sending headers, or idle keep-alive) is closed to make
// room, so a flood of slow connections cannot keep a normal client out.
//
// Shutdown: drain() stops accepting, lets every request in flight finish (its
// response says `Connection: close`), and resolves when none is left or at the
// deadline; close() then ends whatever is still open.
//
// HTTPS: the same server over TLS when given a certificate (tls-reloader.ts
// swaps it for new connections when the files change). The cap counts
// handshakes in progress too; at the cap, an idle connection is closed first,
// else the oldest handshake; a client stuck in the handshake is cut off after
// the headers timeout. Plain HTTP sent to it fails the handshake and the
// connection is closed.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';

export interface HttpLimits {
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

export interface BerthHttpServer {
  server: Server;
  /** Requests received and not yet answered. */
  readonly inFlight: number;
  /** Stops accepting; resolves true when every request in flight was answered, false at the deadline (ms since epoch). */
  drain(deadline: number): Promise<boolean>;
  /** Closes every connection left and resolves when the server is closed. */
  close(): Promise<void>;
}

interface Connection {
  /** Requests of this connection not answered yet (pipelining allows more than one). */
  busy: number;
}

export interface HttpsOptions {
  cert: Buffer;
  key: Buffer;
  /** Client certificates are asked for and verified against this CA; one that fails verification does not end the connection (other credentials may follow). */
  clientCa: Buffer | undefined;
}

export function createBerthHttpServer(
  limits: HttpLimits,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  log: Logger,
  tls?: HttpsOptions,
): BerthHttpServer {
  const options = {
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // How often Node looks for connections past those timeouts.
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
  };
  const server: Server = tls
    ? createHttpsServer({
        ...options,
        cert: tls.cert,
        key: tls.key,
        ca: tls.clientCa,
        requestCert: tls.clientCa !== undefined,
        rejectUnauthorized: false,
        handshakeTimeout: limits.headersTimeoutMs,
      })
    : createServer(options);
  if (tls) {
    // A failed handshake (plain HTTP, an untrusting client, a timeout) is the client's problem: debug only.
    server.on('tlsClientError', (err: Error & { code?: string }, socket: Socket) => {
      log.debug({ code: err.code, client: socket.remoteAddress }, 'TLS handshake failed');
    });
  }
  // Oldest first (Map keeps insertion order).
  const connections = new Map<Socket, Connection>();
  const inFlight = new Set<ServerResponse>();
  let draining = false;
  // server.close() once: 'close' fires when the last connection is gone, which may be long before close() is awaited.
  let closed: Promise<void> | undefined;
  const stopAccepting = () => (closed ??= new Promise<void>((resolve) => server.close(() => resolve())));
  let drained: (() => void) | undefined;
  let lastCapWarning = 0;

  const evictOldestIdle = (): boolean => {
    for (const [socket, c] of connections) {
      if (c.busy === 0) {
        connections.delete(socket);
        socket.destroy();
        return true;
      }
    }
    return false;
  };

  // TCP connections whose TLS handshake is not done yet (HTTPS only): not serving anything, so closable at the cap.
  const handshaking = new Set<Socket>();
  const evictOldestHandshake = (): boolean => {
    for (const socket of handshaking) {
      handshaking.delete(socket);
      socket.destroy();
      return true;
    }
    return false;
  };

  /** Makes room for one more connection (closing the oldest idle one at the cap); false when every one is busy. */
  const admit = (): boolean => {
    const open = connections.size + handshaking.size;
    if (open >= limits.maxConnections && !evictOldestIdle() && !evictOldestHandshake()) {
      // Every connection is serving a request: refuse this one rather than run out of descriptors.
      if (Date.now() - lastCapWarning > 60_000) {
        lastCapWarning = Date.now();
        log.warn({ maxConnections: limits.maxConnections }, 'connection refused: every connection is busy (BERTH_MAX_CONNECTIONS)');
      }
      return false;
    }
    if (open >= limits.maxConnections - 1 && Date.now() - lastCapWarning > 60_000) {
      lastCapWarning = Date.now();
      log.warn({ maxConnections: limits.maxConnections }, 'connection cap reached: closing the oldest connections that have no request in progress');
    }
    return true;
  };

  const track = (socket: Socket) => {
    connections.set(socket, { busy: 0 });
    // Node's headersTimeout only starts with a request's first byte.
    socket.setTimeout(limits.headersTimeoutMs);
    socket.once('close', () => connections.delete(socket));
  };

  if (tls) {
    // Admitted as TCP connections (handshakes count toward the cap); requests arrive on the TLS socket.
    server.on('connection', (socket: Socket) => {
      if (!admit()) {
        socket.destroy();
        return;
      }
      handshaking.add(socket);
      socket.once('close', () => handshaking.delete(socket));
    });
    server.on('secureConnection', (socket: Socket) => {
      // A server-side TLSSocket's _parent is the TCP socket it wraps (stable since Node 0.x, but not public API:
      // without it, the TCP socket leaves the set when it closes, and only the count is briefly too high).
      const tcp = (socket as Socket & { _parent?: Socket })._parent;
      if (tcp) handshaking.delete(tcp);
      track(socket);
    });
  } else {
    server.on('connection', (socket: Socket) => {
      if (admit()) track(socket);
      else socket.destroy();
    });
  }

  // Registered before the handler, so it sees every request before any answer.
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const c = connections.get(req.socket);
    if (c) c.busy++;
    req.socket.setTimeout(0);
    inFlight.add(res);
    if (draining) res.setHeader('Connection', 'close');
    res.once('close', () => {
      if (c) c.busy--;
      inFlight.delete(res);
      if (inFlight.size === 0) drained?.();
    });
  });
  server.on('request', handler);

  return {
    server,
    get inFlight() {
      return inFlight.size;
    },
    async drain(deadline: number): Promise<boolean> {
      draining = true;
      void stopAccepting();
      server.closeIdleConnections();
      for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
      if (inFlight.size === 0) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), left);
        drained = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
    },
    async close(): Promise<void> {
      const done = stopAccepting();
      server.closeAllConnections();
      for (const socket of connections.keys()) socket.destroy();
      for (const socket of handshaking) socket.destroy();
      await done;
    },
  };
}
