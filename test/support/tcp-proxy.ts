// A TCP proxy (node:net) between Berth and a real server on 127.0.0.1, for
// fault injection: a test arms it with a marker (a piece of SQL), and the next
// time a client sends a packet containing it, the proxy forwards the packet
// (the statement reaches the server and starts), then resets both sides of
// that connection before any answer comes back: a connection cut
// mid-statement, as a failing network or a restarted server does it. Or it
// freezes: the statement goes out, then nothing more passes either way and new
// connections are accepted but never answered (a network that silently drops
// everything), until the test thaws it.
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  port: number;
  /** `url` with host and port replaced by the proxy's. */
  url(url: string): string;
  /**
   * Cuts the next `times` connections that send `marker` (once each, mid-statement).
   * Resolves with the number of connections cut once `times` cuts happened.
   */
  cutOn(marker: string, times?: number): Promise<number>;
  /**
   * After the next packet containing `marker` has been forwarded, relays nothing more on any
   * connection and leaves new ones unanswered, until thaw(). Resolves when that packet went out.
   */
  freezeOn(marker: string): Promise<void>;
  /** Ends the freeze: connections from before or during it are closed; new ones work again. */
  thaw(): void;
  /** Connections cut so far. */
  readonly cuts: number;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let armed: { marker: Buffer; left: number; resolve: (n: number) => void } | undefined;
  let cuts = 0;
  let freezeTrap: { marker: Buffer; resolve: () => void } | undefined;
  let frozen = false;
  const stale = new Set<Socket>();

  const server: Server = createServer((client) => {
    if (frozen) {
      // Accepted, never answered.
      stale.add(client);
      client.on('error', () => client.destroy());
      return;
    }
    const upstream = connect(targetPort, targetHost);
    sockets.add(client);
    sockets.add(upstream);
    let cut = false;
    const drop = () => {
      sockets.delete(client);
      sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    upstream.on('data', (chunk) => {
      if (!cut && !frozen) client.write(chunk);
    });
    client.on('data', (chunk) => {
      if (cut || frozen) return;
      if (freezeTrap && chunk.includes(freezeTrap.marker)) {
        const trap = freezeTrap;
        freezeTrap = undefined;
        upstream.write(chunk, () => trap.resolve());
        frozen = true;
        for (const s of sockets) stale.add(s);
        return;
      }
      const trap = armed;
      if (trap && chunk.includes(trap.marker)) {
        cut = true;
        // The statement goes out; its answer never comes back: RST both ways once it was sent.
        upstream.write(chunk, () => {
          setTimeout(() => {
            client.resetAndDestroy();
            upstream.resetAndDestroy();
          }, 50);
        });
        cuts++;
        if (--trap.left === 0) {
          armed = undefined;
          trap.resolve(cuts);
        }
        return;
      }
      upstream.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;

  return {
    port,
    url(url: string) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    cutOn(marker: string, times = 1) {
      return new Promise<number>((resolve) => {
        armed = { marker: Buffer.from(marker), left: times, resolve };
      });
    },
    freezeOn(marker: string) {
      return new Promise<void>((resolve) => {
        freezeTrap = { marker: Buffer.from(marker), resolve };
      });
    },
    thaw() {
      frozen = false;
      for (const s of stale) s.destroy();
      stale.clear();
    },
    get cuts() {
      return cuts;
    },
    async close() {
      armed = undefined;
      freezeTrap = undefined;
      for (const s of [...sockets, ...stale]) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
