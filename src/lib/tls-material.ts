// The certificate, key and (optional) client CA Berth serves HTTPS with, read
// from files (typically a mounted cert-manager Secret). Read and checked the
// same way at start (config.ts: a bad file stops Berth with one sentence) and
// on every reload (http/tls-reloader.ts: a bad renewal is logged and the
// serving pair kept). Messages name the file and the variable, never any of
// the file's content.
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** Client certificates verified against this CA authenticate (optional). */
  clientCaFile: string | undefined;
}

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca: Buffer | undefined;
  /** Hash over all three files: a change of any of them is a new generation. */
  digest: string;
  /** What may be logged about the serving certificate. */
  summary: { subject: string; serialNumber: string; validTo: string; fingerprint256: string };
}

function readNamed(file: string, variable: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new Error(`${variable}: cannot read ${file} (${code})`);
  }
}

/** Reads and checks the files; throws an Error saying which file is wrong and why. */
export function readTlsMaterial(files: TlsFiles): TlsMaterial {
  const cert = readNamed(files.certFile, 'BERTH_TLS_CERT_FILE');
  const key = readNamed(files.keyFile, 'BERTH_TLS_KEY_FILE');
  const ca = files.clientCaFile === undefined ? undefined : readNamed(files.clientCaFile, 'BERTH_TLS_CLIENT_CA_FILE');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch {
    throw new Error(`BERTH_TLS_CERT_FILE: ${files.certFile} holds no PEM certificate`);
  }
  if (ca !== undefined) {
    try {
      new X509Certificate(ca);
    } catch {
      throw new Error(`BERTH_TLS_CLIENT_CA_FILE: ${files.clientCaFile} holds no PEM certificate`);
    }
  }
  try {
    // Fails on a key that is no key, or that does not belong to the certificate.
    createSecureContext({ cert, key, ca });
  } catch (err) {
    const reason = /key values mismatch/i.test((err as Error).message)
      ? 'the key does not belong to the certificate'
      : /private key|PEM|decoder|bad base64|no start line/i.test((err as Error).message)
        ? 'the key file holds no usable PEM private key'
        : 'they do not form a usable certificate and key';
    throw new Error(`BERTH_TLS_CERT_FILE/BERTH_TLS_KEY_FILE: ${files.certFile} and ${files.keyFile}: ${reason}`);
  }
  const digest = createHash('sha256').update(cert).update('\0').update(key).update('\0').update(ca ?? '').digest('hex');
  return {
    cert,
    key,
    ca,
    digest,
    summary: { subject: leaf.subject.replaceAll('\n', ', '), serialNumber: leaf.serialNumber, validTo: leaf.validTo, fingerprint256: leaf.fingerprint256 },
  };
}
