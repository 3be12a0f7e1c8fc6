// Server-side TLS of the OTLP receivers and the admin port: the certificate, key and optional
// client CA a `tls` block names (shaped like the OpenTelemetry Collector's configtls server
// settings), checked when they are read, and reloaded while the servers run.
//
// Why the checks: a key that does not belong to its certificate, a file that is not PEM or an
// encrypted key would otherwise surface as an opaque OpenSSL error on the first handshake (or
// as a server that starts and refuses every client). Each problem is reported with the key path
// of the file it concerns, under the stable code TLS_INVALID.
//
// Why polling for reload, not fs.watch: certificate rotators (cert-manager, Kubernetes secret
// volumes) replace files by swapping a symlink or renaming over them, which inotify watches on
// the old inode miss; fs.watch also does not work on every volume type. A poll every
// reloadIntervalMs reads the few kilobytes of the files and compares their digest, which sees
// every kind of replacement. A new pair is checked before it is used: a broken or half-written
// pair (the certificate replaced, the key not yet) is refused, logged and counted, and the old
// context keeps serving; the next poll that sees a good pair installs it. setSecureContext()
// changes only what new handshakes use, so connections already open are untouched.
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import { errorMessage, ScorecarError } from './errors.ts';
import type { Logger } from './log.ts';
import type { MetricsRegistry } from './metrics.ts';

/** A `tls` block of receivers.otlp.grpc, receivers.otlp.http or admin (config/schema.ts). */
export interface ServerTlsSettings {
  certFile: string;
  keyFile: string;
  /** Clients must present a certificate signed by one of these CAs (mTLS). */
  clientCaFile?: string | undefined;
  minVersion?: '1.2' | '1.3' | undefined;
  /** How often the files are read again for changes; 0 = never. */
  reloadIntervalMs?: number | undefined;
}

/** What a problem with the files concerns: the key path of the file, and what is wrong. */
export interface TlsIssue {
  path: string;
  message: string;
}

/** The files of a tls block, read and checked. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca: Buffer | undefined;
  /** SHA-256 over the three files: what a poll compares. */
  digest: string;
  /** The leaf certificate's SHA-256 fingerprint (colon-separated hex, as openssl prints it). */
  fingerprint: string;
  serialNumber: string;
  subject: string;
  /** The leaf certificate's notAfter, in ms since the epoch. */
  validTo: number;
}

function digestOf(cert: Buffer, key: Buffer, ca: Buffer | undefined): string {
  const h = createHash('sha256');
  for (const b of [cert, key, ca ?? Buffer.alloc(0)]) {
    h.update(String(b.length)).update(':').update(b);
  }
  return h.digest('hex');
}

/**
 * Checks files already read: the certificate and CA parse as X.509, the key as an unencrypted
 * private key that belongs to the certificate, and OpenSSL accepts the pair. `base` is the key
 * path of the tls block ('receivers.otlp.grpc.tls').
 */
export function checkTlsMaterial(
  base: string,
  files: { cert: Buffer; key: Buffer; ca: Buffer | undefined },
): { material: TlsMaterial; issues: [] } | { material: undefined; issues: TlsIssue[] } {
  const issues: TlsIssue[] = [];
  let leaf: X509Certificate | undefined;
  try {
    leaf = new X509Certificate(files.cert);
  } catch (e) {
    issues.push({ path: `${base}.certFile`, message: `is not a PEM certificate (${errorMessage(e)})` });
  }
  let key: ReturnType<typeof createPrivateKey> | undefined;
  try {
    key = createPrivateKey({ key: files.key });
  } catch (e) {
    issues.push({
      path: `${base}.keyFile`,
      message: `is not an unencrypted PEM private key (${errorMessage(e)}); encrypted keys are not supported`,
    });
  }
  if (files.ca !== undefined) {
    try {
      new X509Certificate(files.ca);
    } catch (e) {
      issues.push({ path: `${base}.clientCaFile`, message: `is not a PEM certificate bundle (${errorMessage(e)})` });
    }
  }
  if (leaf && key && !leaf.checkPrivateKey(key)) {
    issues.push({
      path: `${base}.keyFile`,
      message: `does not match the certificate of ${base}.certFile (subject ${leaf.subject.replace(/\n/g, ', ')}, serial ${leaf.serialNumber})`,
    });
  }
  if (issues.length === 0) {
    // What the handshake will use: anything OpenSSL still refuses (an unsupported key type).
    try {
      tls.createSecureContext({ cert: files.cert, key: files.key, ca: files.ca });
    } catch (e) {
      issues.push({ path: `${base}.certFile`, message: `cannot be used with ${base}.keyFile: ${errorMessage(e)}` });
    }
  }
  if (issues.length > 0 || !leaf) return { material: undefined, issues };
  return {
    material: {
      ...files,
      digest: digestOf(files.cert, files.key, files.ca),
      fingerprint: leaf.fingerprint256,
      serialNumber: leaf.serialNumber,
      subject: leaf.subject.replace(/\n/g, ', '),
      validTo: Date.parse(leaf.validTo),
    },
    issues: [],
  };
}

/** Reads a tls block's files at once (start-up); reports every problem with its key path. */
export function readTlsFilesSync(
  base: string,
  s: ServerTlsSettings,
): { material: TlsMaterial; issues: [] } | { material: undefined; issues: TlsIssue[] } {
  const issues: TlsIssue[] = [];
  const read = (field: 'certFile' | 'keyFile' | 'clientCaFile', file: string): Buffer | undefined => {
    try {
      return readFileSync(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : errorMessage(e);
      issues.push({ path: `${base}.${field}`, message: `cannot read ${file}: ${why}` });
      return undefined;
    }
  };
  const cert = read('certFile', s.certFile);
  const key = read('keyFile', s.keyFile);
  const ca = s.clientCaFile === undefined ? undefined : read('clientCaFile', s.clientCaFile);
  if (!cert || !key || (s.clientCaFile !== undefined && !ca)) return { material: undefined, issues };
  return checkTlsMaterial(base, { cert, key, ca });
}

/** The TLS_INVALID error of a list of issues. */
export function tlsError(issues: readonly TlsIssue[]): ScorecarError {
  return new ScorecarError('TLS_INVALID', `TLS files refused:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`, {
    details: { issues },
  });
}

/** What a reload did. */
export type ReloadResult =
  | { outcome: 'unchanged' | 'reloaded'; fingerprint: string }
  | { outcome: 'refused'; fingerprint: string; issues: TlsIssue[] };

/** The servers a context is installed on. */
type SecureServer = Pick<tls.Server, 'setSecureContext'>;

export interface ServerTlsOptions {
  /** The server's name in logs and metrics: grpc, http or admin. */
  name: string;
  /** The key path of the tls block, for messages ('receivers.otlp.grpc.tls'). */
  path: string;
  settings: ServerTlsSettings;
  metrics?: MetricsRegistry | undefined;
  log: Logger;
}

/**
 * The TLS of one server: its first context (checked, or TLS_INVALID with every problem), the
 * options to create the server with, and reloads (polled every reloadIntervalMs, or asked for
 * with reload()).
 */
export class ServerTls {
  readonly name: string;
  private readonly settings: ServerTlsSettings;
  private readonly path: string;
  private readonly log: Logger;
  private current: TlsMaterial;
  /** The digest of the last pair refused, so a broken pair is logged once, not every poll. */
  private refusedDigest: string | undefined;
  private readonly servers: SecureServer[] = [];
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<ReloadResult> | undefined;
  private readonly listeners = new Set<(r: ReloadResult) => void>();
  private readonly m;

  constructor(o: ServerTlsOptions) {
    this.name = o.name;
    this.settings = o.settings;
    this.path = o.path;
    this.log = o.log;
    const first = readTlsFilesSync(o.path, o.settings);
    if (!first.material) throw tlsError(first.issues);
    this.current = first.material;
    const m = o.metrics;
    this.m = m && {
      reloads: m.counter(
        'scorecar_tls_reloads_total',
        'TLS certificate reloads by server and result (reloaded, refused: the new files were unusable and the previous certificate kept serving)',
        ['server', 'result'],
      ),
      handshakeFailures: m.counter(
        'scorecar_tls_handshake_failures_total',
        'TLS handshakes that failed (no or untrusted client certificate under mTLS, protocol mismatch, timeout)',
        ['server'],
      ),
      expiry: m.gauge('scorecar_tls_certificate_expiry_timestamp_seconds', 'notAfter of the certificate each TLS server presents', ['server']),
    };
    this.m?.expiry.set(Math.floor(this.current.validTo / 1000), { server: this.name });
  }

  /** The certificate served now. */
  get material(): TlsMaterial {
    return this.current;
  }

  /** Whether clients must present a certificate. */
  get mutual(): boolean {
    return this.settings.clientCaFile !== undefined;
  }

  /** Options for tls/https/http2 createSecureServer: the first context and the client-certificate rule. */
  serverOptions(): tls.TlsOptions {
    return {
      ...this.contextOptions(this.current),
      // Under mTLS the handshake itself refuses a client without a trusted certificate, before
      // any request is read (as the Collector's client_ca_file does).
      requestCert: this.mutual,
      rejectUnauthorized: this.mutual,
    };
  }

  private contextOptions(mat: TlsMaterial): tls.SecureContextOptions {
    return {
      cert: mat.cert,
      key: mat.key,
      ...(mat.ca ? { ca: mat.ca } : {}),
      minVersion: this.settings.minVersion === '1.3' ? 'TLSv1.3' : 'TLSv1.2',
    };
  }

  /** Installs reloads on a server created with serverOptions(), and counts its failed handshakes. */
  attach(server: SecureServer & Pick<tls.Server, 'on'>): void {
    this.servers.push(server);
    server.on('tlsClientError', (err: Error) => {
      this.m?.handshakeFailures.inc({ server: this.name });
      this.log.debug('TLS handshake failed', { server: this.name, error: err.message });
    });
    const every = this.settings.reloadIntervalMs ?? 0;
    if (every > 0 && !this.timer) {
      this.timer = setInterval(() => void this.reload(), every);
      this.timer.unref();
    }
  }

  /** Stops polling (the server is closing). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Called after every reload attempt that changed something (reloaded or refused). */
  onReload(fn: (r: ReloadResult) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Reads the files again; installs them when they changed and are good. One at a time. */
  reload(): Promise<ReloadResult> {
    this.polling ??= this.doReload().finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  private async doReload(): Promise<ReloadResult> {
    const s = this.settings;
    let files: { cert: Buffer; key: Buffer; ca: Buffer | undefined };
    try {
      const [cert, key, ca] = await Promise.all([
        readFile(s.certFile),
        readFile(s.keyFile),
        s.clientCaFile === undefined ? undefined : readFile(s.clientCaFile),
      ]);
      files = { cert, key, ca };
    } catch (e) {
      // A file missing for a moment (being replaced) is the same as a bad pair: keep the old one.
      return this.refuse(`unreadable:${errorMessage(e)}`, [{ path: this.path, message: `cannot read the files: ${errorMessage(e)}` }]);
    }
    const digest = digestOf(files.cert, files.key, files.ca);
    if (digest === this.current.digest) {
      this.refusedDigest = undefined;
      return { outcome: 'unchanged', fingerprint: this.current.fingerprint };
    }
    if (digest === this.refusedDigest) {
      return { outcome: 'refused', fingerprint: this.current.fingerprint, issues: [{ path: this.path, message: 'unchanged since refused' }] };
    }
    const checked = checkTlsMaterial(this.path, files);
    if (!checked.material) return this.refuse(digest, checked.issues);
    const ctx = this.contextOptions(checked.material);
    try {
      for (const srv of this.servers) srv.setSecureContext(ctx);
    } catch (e) {
      return this.refuse(digest, [{ path: this.path, message: errorMessage(e) }]);
    }
    const before = this.current;
    this.current = checked.material;
    this.refusedDigest = undefined;
    this.m?.reloads.inc({ server: this.name, result: 'reloaded' });
    this.m?.expiry.set(Math.floor(this.current.validTo / 1000), { server: this.name });
    this.log.info('TLS certificate reloaded', {
      server: this.name,
      fingerprint: checked.material.fingerprint,
      previous: before.fingerprint,
      subject: checked.material.subject,
      validTo: new Date(checked.material.validTo).toISOString(),
    });
    const r: ReloadResult = { outcome: 'reloaded', fingerprint: checked.material.fingerprint };
    for (const fn of this.listeners) fn(r);
    return r;
  }

  private refuse(digest: string, issues: TlsIssue[]): ReloadResult {
    const r: ReloadResult = { outcome: 'refused', fingerprint: this.current.fingerprint, issues };
    if (digest === this.refusedDigest) return r;
    this.refusedDigest = digest;
    this.m?.reloads.inc({ server: this.name, result: 'refused' });
    this.log.error('TLS reload refused: the previous certificate keeps serving', {
      server: this.name,
      code: 'TLS_INVALID',
      fingerprint: this.current.fingerprint,
      issues: issues.map((i) => `${i.path}: ${i.message}`),
    });
    for (const fn of this.listeners) fn(r);
    return r;
  }
}
