// Throwaway certificates for the TLS and client-certificate tests, made with
// the openssl command, and HTTPS requests that report the certificate the
// server presented.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpsRequest, type Agent } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export interface Ca {
  dir: string;
  name: string;
  certFile: string;
  pem: string;
}

export function makeCa(dir: string, name: string): Ca {
  openssl(['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature'], dir);
  return { dir, name, certFile: join(dir, `${name}.crt`), pem: readFileSync(join(dir, `${name}.crt`), 'utf8') };
}

export interface Leaf {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
  /** As node reports it (upper-case hex). */
  serialNumber: string;
}

let serial = 0x1000 + Math.floor(Math.random() * 0x10000);

/** A certificate signed by `ca`: a server one (SAN 127.0.0.1, localhost) or a client one. */
export function issue(ca: Ca, name: string, kind: 'server' | 'client', cn = name, days = 2): Leaf {
  const { dir } = ca;
  const ext = kind === 'server'
    ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n'
    : 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n';
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/O=berth-tests/CN=${cn}`], dir);
  const hex = (serial++).toString(16).toUpperCase().padStart(6, '0');
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca.name}.crt`, '-CAkey', `${ca.name}.key`, '-set_serial', `0x${hex}`,
    '-days', String(days), '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`], dir);
  return {
    certFile: join(dir, `${name}.crt`),
    keyFile: join(dir, `${name}.key`),
    cert: readFileSync(join(dir, `${name}.crt`), 'utf8'),
    key: readFileSync(join(dir, `${name}.key`), 'utf8'),
    serialNumber: new X509Certificate(readFileSync(join(dir, `${name}.crt`))).serialNumber,
  };
}

/**
 * A folder laid out as the kubelet mounts a Secret: the files are symlinks through `..data`, itself a symlink to
 * a timestamped folder; an update writes a new folder and renames a new `..data` link over the old (atomic).
 */
export class MountedSecret {
  readonly dir: string;
  #generation = 0;

  constructor(dir: string, files: Record<string, string>) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true });
    this.update(files);
    for (const name of Object.keys(files)) symlinkSync(join('..data', name), join(dir, name));
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  update(files: Record<string, string>): void {
    const generation = `..gen_${++this.#generation}`;
    mkdirSync(join(this.dir, generation));
    for (const [name, content] of Object.entries(files)) writeFileSync(join(this.dir, generation, name), content);
    symlinkSync(generation, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
  }
}

export interface HttpsReply {
  status: number;
  body: any;
  /** Serial number of the certificate the server presented on this connection. */
  serialNumber: string;
  socket: TLSSocket;
}

export function httpsGet(url: string, opts: { agent: Agent; headers?: Record<string, string> }): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { agent: opts.agent, headers: { 'X-Broker-API-Version': '2.17', ...opts.headers } }, (res) => {
      const chunks: Buffer[] = [];
      // Taken now: a keep-alive socket is handed back to the agent (res.socket null) by the end.
      const socket = res.socket as TLSSocket;
      const serialNumber = socket.getPeerCertificate().serialNumber;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: any;
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
        resolve({ status: res.statusCode!, body, serialNumber, socket });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
