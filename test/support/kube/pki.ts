// Throwaway PKI for one test cluster: a CA, the kube-apiserver serving
// certificate (127.0.0.1 / localhost / kubernetes.default...), an admin client
// certificate (O=system:masters) and the ServiceAccount token signing key pair.
// Certificates are made with the `openssl` command; keys for ServiceAccount
// tokens with node:crypto.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  adminCert: string;
  adminKey: string;
  saKey: string;
  saPub: string;
  /** PEM of the CA certificate. */
  caPem: string;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { code?: string; stderr?: Buffer; message: string };
    if (e.code === 'ENOENT') {
      throw new Error('the `openssl` command is needed to make the test cluster certificates (apt-get install openssl)');
    }
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.toString() ?? e.message}`);
  }
}

/** `extraIPs`: more addresses the API server is reached at (the real node's IP). */
export function makePki(dir: string, serviceIP: string, extraIPs: string[] = []): Pki {
  const f = (n: string): string => path.join(dir, n);
  const days = '7';
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

  openssl(
    ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', days,
      '-subj', '/CN=berth-test-ca',
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature'],
    dir,
  );

  const leaf = (name: string, subj: string, ext: string): void => {
    openssl(['req', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', subj], dir);
    writeFileSync(f(`${name}.ext`), ext);
    openssl(
      ['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial',
        '-days', days, '-sha256', '-extfile', f(`${name}.ext`), '-out', f(`${name}.crt`)],
      dir,
    );
  };

  const sans = [
    'IP:127.0.0.1',
    `IP:${serviceIP}`,
    ...extraIPs.map((ip) => `IP:${ip}`),
    'DNS:localhost',
    'DNS:kubernetes',
    'DNS:kubernetes.default',
    'DNS:kubernetes.default.svc',
    'DNS:kubernetes.default.svc.cluster.local',
  ].join(',');
  leaf(
    'apiserver',
    '/CN=kube-apiserver',
    `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${sans}\n`,
  );
  leaf(
    'admin',
    '/O=system:masters/CN=berth-admin',
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n',
  );

  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  writeFileSync(f('sa.key'), privateKey, { mode: 0o600 });
  writeFileSync(f('sa.pub'), publicKey);

  return {
    dir,
    caCert: f('ca.crt'),
    caKey: f('ca.key'),
    serverCert: f('apiserver.crt'),
    serverKey: f('apiserver.key'),
    adminCert: f('admin.crt'),
    adminKey: f('admin.key'),
    saKey: f('sa.key'),
    saPub: f('sa.pub'),
    caPem: readFileSync(f('ca.crt'), 'utf8'),
  };
}
