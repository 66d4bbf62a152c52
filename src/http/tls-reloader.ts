// Keeps the HTTPS server's certificate current: when the certificate, key or
// client-CA file changes on disk (cert-manager renewed the mounted Secret), the
// new files are read and checked, and a usable set serves every NEW connection
// (server.setSecureContext); connections already open keep the certificate they
// were established with. A set that does not work (a key that does not match,
// a half-written file) is logged, without any of its content, and the previous
// certificate stays in use; the next change is tried again.
import type { Server } from 'node:https';
import type { Logger } from 'pino';
import { pollFiles } from '../lib/file-poller.ts';
import { readTlsMaterial, type TlsFiles, type TlsMaterial } from '../lib/tls-material.ts';

export function reloadTlsOnChange(
  server: Server,
  files: TlsFiles,
  current: TlsMaterial,
  opts: { intervalMs: number; log: Logger; onReloaded?: (material: TlsMaterial) => void },
): { stop(): void } {
  const { intervalMs, log } = opts;
  let serving = current;
  const paths = [files.certFile, files.keyFile, ...(files.clientCaFile ? [files.clientCaFile] : [])];
  return pollFiles(paths, intervalMs, () => {
    let next: TlsMaterial;
    try {
      next = readTlsMaterial(files);
    } catch (err) {
      log.warn({ reason: (err as Error).message, certificate: serving.summary }, 'the TLS files changed but are not usable: still serving the previous certificate');
      return;
    }
    if (next.digest === serving.digest) return;
    try {
      server.setSecureContext({ cert: next.cert, key: next.key, ca: next.ca });
    } catch (err) {
      log.warn({ reason: (err as Error).message.slice(0, 200), certificate: serving.summary }, 'the new TLS certificate was refused: still serving the previous one');
      return;
    }
    serving = next;
    opts.onReloaded?.(next);
    log.info({ certificate: next.summary }, 'TLS certificate reloaded: new connections use it');
  });
}
