// TLS settings checked at start (every problem with the key path of its file, code TLS_INVALID)
// and ServerTls reloads (a good new pair installed on the servers, a bad one refused, logged and
// counted once, the old one kept). Certificates are made by the test.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { MetricsRegistry, ScorecarError, ServerTls, silentLogger } from '../../src/util/index.ts';
import { type CertFiles, makePki, type Pki } from '../support/certs.ts';
import { sumMetric } from '../support/metrics.ts';

let pki: Pki;
let a: CertFiles;
let b: CertFiles;

beforeAll(() => {
  pki = makePki('unit');
  a = pki.server('a');
  b = pki.server('b');
});
afterAll(() => pki.remove());

function configIssues(yaml: string): { path: string; message: string }[] {
  try {
    loadConfig({ text: yaml, env: {} });
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  return [];
}

describe('tls blocks at start', () => {
  it('accepts a good pair on every server, with the defaults of the optional keys', () => {
    const t = `{certFile: "${a.certFile}", keyFile: "${a.keyFile}"}`;
    const c = loadConfig({ text: `receivers: {otlp: {grpc: {tls: ${t}}, http: {tls: ${t}}}}\nadmin: {tls: ${t}}`, env: {} });
    expect(c.admin.tls).toEqual({ certFile: a.certFile, keyFile: a.keyFile, minVersion: '1.2', reloadIntervalMs: 60_000 });
    expect(c.receivers.otlp.grpc.tls?.certFile).toBe(a.certFile);
    expect(loadConfig({ text: '', env: {} }).receivers.otlp.http.tls).toBeUndefined();
    expect(loadConfig({ text: 'admin: {tls: null}', env: {} }).admin.tls).toBeUndefined();
  });

  it('reports every unusable file with its key path and TLS_INVALID', () => {
    const missing = join(pki.dir, 'nope.crt');
    const notPem = join(pki.dir, 'not-pem.crt');
    writeFileSync(notPem, 'hello');
    const got = configIssues(
      [
        `receivers: {otlp: {grpc: {tls: {certFile: "${missing}", keyFile: "${a.keyFile}"}},`,
        `  http: {tls: {certFile: "${a.certFile}", keyFile: "${b.keyFile}", clientCaFile: "${notPem}"}}}}`,
        `admin: {tls: {certFile: "${notPem}", keyFile: "${a.keyFile}"}}`,
      ].join('\n'),
    );
    expect(got.map((i) => i.path).sort()).toEqual([
      'admin.tls.certFile',
      'receivers.otlp.grpc.tls.certFile',
      'receivers.otlp.http.tls.clientCaFile',
      'receivers.otlp.http.tls.keyFile',
    ]);
    for (const i of got) expect(i.message).toMatch(/^TLS_INVALID: /);
    expect(got.find((i) => i.path === 'receivers.otlp.grpc.tls.certFile')!.message).toContain('does not exist');
    expect(got.find((i) => i.path === 'receivers.otlp.http.tls.keyFile')!.message).toContain('does not match the certificate');
  });

  it('leaves the files alone when asked to (scorecar worker serves none of these ports)', () => {
    const missing = join(pki.dir, 'absent.crt');
    const yaml = `admin: {tls: {certFile: "${missing}", keyFile: "${missing}"}}`;
    expect(configIssues(yaml).map((i) => i.path)).toEqual(['admin.tls.certFile', 'admin.tls.keyFile']);
    expect(loadConfig({ text: yaml, env: {}, checkTlsFiles: false }).admin.tls?.certFile).toBe(missing);
  });

  // root reads any file whatever its mode: nothing to check there.
  it('reports an unreadable key file', () => {
    // A directory where the key should be: unreadable as a file for every user, root included
    // (a chmod 000 file is not, and the tests may run as root).
    const dirAsKey = join(pki.dir, 'key-is-a-dir.key');
    mkdirSync(dirAsKey, { recursive: true });
    const got = configIssues(`admin: {tls: {certFile: "${a.certFile}", keyFile: "${dirAsKey}"}}`);
    expect(got).toEqual([{ path: 'admin.tls.keyFile', message: expect.stringMatching(/cannot read|EISDIR|directory/i) }]);
  });

  it('refuses a tls block without a key, or with an unknown key', () => {
    expect(configIssues(`admin: {tls: {certFile: "${a.certFile}"}}`).map((i) => i.path)).toEqual(['admin.tls.keyFile']);
    expect(configIssues(`admin: {tls: {certFile: "x", keyFile: "y", cert_file: "z"}}`).map((i) => i.path)).toEqual(['admin.tls']);
    expect(configIssues(`admin: {tls: {certFile: "x", keyFile: "y", minVersion: "1.0"}}`).map((i) => i.path)).toEqual([
      'admin.tls.minVersion',
    ]);
  });
});

describe('ServerTls', () => {
  function live(name: string): { certFile: string; keyFile: string } {
    const f = { certFile: join(pki.dir, `${name}.live.crt`), keyFile: join(pki.dir, `${name}.live.key`) };
    copyFileSync(a.certFile, f.certFile);
    copyFileSync(a.keyFile, f.keyFile);
    return f;
  }

  it('throws TLS_INVALID with the issues when the first pair is unusable', () => {
    let err: unknown;
    try {
      new ServerTls({ name: 'x', path: 'admin.tls', settings: { certFile: a.certFile, keyFile: b.keyFile }, log: silentLogger });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ScorecarError);
    expect((err as ScorecarError).code).toBe('TLS_INVALID');
    expect((err as ScorecarError).message).toContain('admin.tls.keyFile');
  });

  it('asks for client certificates only with a clientCaFile', () => {
    const plain = new ServerTls({ name: 'x', path: 'admin.tls', settings: { certFile: a.certFile, keyFile: a.keyFile }, log: silentLogger });
    expect(plain.serverOptions()).toMatchObject({ requestCert: false, rejectUnauthorized: false, minVersion: 'TLSv1.2' });
    const mutual = new ServerTls({
      name: 'x',
      path: 'admin.tls',
      settings: { certFile: a.certFile, keyFile: a.keyFile, clientCaFile: pki.ca.certFile, minVersion: '1.3' },
      log: silentLogger,
    });
    expect(mutual.serverOptions()).toMatchObject({ requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3', ca: pki.ca.cert });
  });

  it('installs a changed good pair on a real server, refuses a bad one once, and reports each change', async () => {
    const f = live('unit');
    const metrics = new MetricsRegistry();
    const logged: string[] = [];
    const log = { ...silentLogger, error: (m: string) => logged.push(m), child: () => log };
    const t = new ServerTls({ name: 'grpc', path: 'receivers.otlp.grpc.tls', settings: f, metrics, log });
    const server = tls.createServer(t.serverOptions(), (s) => s.end());
    t.attach(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const shown = (): Promise<string> =>
      new Promise((done, fail) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: pki.ca.cert }, () => {
          done(s.getPeerCertificate().fingerprint256);
          s.destroy();
        });
        s.once('error', fail);
      });
    const seen: string[] = [];
    t.onReload((r) => seen.push(r.outcome));
    try {
      expect(await shown()).toBe(a.fingerprint);
      expect(await t.reload()).toEqual({ outcome: 'unchanged', fingerprint: a.fingerprint });
      copyFileSync(b.certFile, f.certFile);
      const refused = await t.reload(); // B's certificate, A's key: a half-finished rotation
      expect(refused.outcome).toBe('refused');
      expect(t.material.fingerprint).toBe(a.fingerprint);
      expect(await shown()).toBe(a.fingerprint);
      expect(await t.reload()).toMatchObject({ outcome: 'refused' }); // the same files: not counted again
      copyFileSync(b.keyFile, f.keyFile);
      expect(await t.reload()).toEqual({ outcome: 'reloaded', fingerprint: b.fingerprint });
      expect(await shown()).toBe(b.fingerprint);
      expect(seen).toEqual(['refused', 'reloaded']);
      expect(logged).toEqual(['TLS reload refused: the previous certificate keeps serving']);
      const text = metrics.render();
      expect(sumMetric(text, 'scorecar_tls_reloads_total', { server: 'grpc', result: 'refused' })).toBe(1);
      expect(sumMetric(text, 'scorecar_tls_reloads_total', { server: 'grpc', result: 'reloaded' })).toBe(1);
      expect(sumMetric(text, 'scorecar_tls_certificate_expiry_timestamp_seconds', { server: 'grpc' })).toBe(
        Math.floor(t.material.validTo / 1000),
      );
    } finally {
      t.stop();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
