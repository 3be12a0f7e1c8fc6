// Certificates for TLS tests, made when a test runs (no private key is ever committed): a CA,
// server certificates for 127.0.0.1 / localhost signed by it, and client certificates for mTLS,
// with the openssl command line (Debian's openssl package). EC P-256 keys: quick to make.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFiles {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
  /** SHA-256 fingerprint, as tls getPeerCertificate().fingerprint256 and X509Certificate print it. */
  fingerprint: string;
}

export interface Pki {
  dir: string;
  ca: CertFiles;
  /** A server certificate for 127.0.0.1 and localhost, signed by this CA. */
  server(name: string): CertFiles;
  /** A client certificate (clientAuth), signed by this CA. */
  client(name: string): CertFiles;
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function files(dir: string, name: string): CertFiles {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const cert = readFileSync(certFile);
  return { certFile, keyFile, cert, key: readFileSync(keyFile), fingerprint: new X509Certificate(cert).fingerprint256 };
}

let serial = 1000;

/** A new CA (its own subject and key) in a new temporary directory. */
export function makePki(label = 'scorecar-test'): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'scorecar-pki-'));
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(
    [
      'req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${label} CA`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  const leaf = (name: string, ext: string): CertFiles => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(['req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
    openssl(
      [
        'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', String(serial++),
        '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`,
      ],
      dir,
    );
    return files(dir, name);
  };
  return {
    dir,
    ca: files(dir, 'ca'),
    server: (name) =>
      leaf(name, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n'),
    client: (name) => leaf(name, 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
