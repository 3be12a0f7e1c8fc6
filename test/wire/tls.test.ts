// TLS on the OTLP receivers and the admin port, over the wire with real clients: the
// OpenTelemetry JS SDK exporters (gRPC with channel credentials, HTTP protobuf and JSON with an
// https agent) send traces that arrive downstream intact; under mTLS a client without a
// certificate fails the handshake and one with it succeeds; the SDK and the CLI talk to an https
// admin port signed by a private CA; MLflow's /v1/traces on the admin port reaches an mTLS
// receiver; and certificates are reloaded without a restart (new connections see the new
// certificate, open ones keep theirs, a broken pair is refused while the old one keeps serving).
// Every certificate is made by the test (test/support/certs.ts).
import { execFile } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { join, resolve } from 'node:path';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  InMemorySpanExporter,
  NodeTracerProvider,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tracesFromRequest } from '../../src/assembly/index.ts';
import { ScorecarApiError, ScorecarClient } from '../../src/sdk/index.ts';
import { decodeSpan, type SpanData } from '../../src/wire/index.ts';
import { type CaptureServer, startHttpCapture } from '../support/capture.ts';
import { type CertFiles, makePki, type Pki } from '../support/certs.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

const ROOT = resolve(import.meta.dirname, '../..');

let pki: Pki;
let serverA: CertFiles;
let serverB: CertFiles;
let serverC: CertFiles;
let clientCert: CertFiles;
/** A client certificate from another CA: presented, but not trusted. */
let strangerCert: CertFiles;
let strangerPki: Pki;

beforeAll(() => {
  pki = makePki('scorecar-tls');
  serverA = pki.server('server-a');
  serverB = pki.server('server-b');
  serverC = pki.server('server-c');
  clientCert = pki.client('client-a');
  strangerPki = makePki('stranger');
  strangerCert = strangerPki.client('stranger');
});
afterAll(() => {
  pki.remove();
  strangerPki.remove();
});

/** Copies a pair to the paths a tls block names (what a certificate rotator does). */
function install(pair: { cert: CertFiles; key: CertFiles }, to: { certFile: string; keyFile: string }): void {
  copyFileSync(pair.cert.certFile, to.certFile);
  copyFileSync(pair.key.keyFile, to.keyFile);
}

/** Live file paths of one server, starting with pair A. */
function liveFiles(name: string): { certFile: string; keyFile: string } {
  const files = { certFile: join(pki.dir, `${name}-live.crt`), keyFile: join(pki.dir, `${name}-live.key`) };
  install({ cert: serverA, key: serverA }, files);
  return files;
}

/** Finished spans of a few small GenAI traces, made by the real SDK. */
function makeSpans(traces: number, tag: string): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'tls-app' }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('tls-test', '1.0.0');
  for (let i = 0; i < traces; i++) {
    tracer.startActiveSpan('chat', { attributes: { 'gen_ai.operation.name': 'chat', 'test.tag': tag, 'test.i': i } }, (root) => {
      const child = tracer.startSpan('retrieve', { attributes: { 'test.tag': tag, 'mlflow.spanType': '"RETRIEVER"' } });
      child.end();
      root.end();
    });
  }
  return memory.getFinishedSpans().slice();
}

function exportOnce(exporter: SpanExporter, spans: ReadableSpan[]): Promise<ExportResult> {
  return new Promise((done) => exporter.export(spans, done));
}

/** The spans of a capture's trace requests, by span id. */
function downstreamSpans(capture: CaptureServer): Map<string, SpanData> {
  const out = new Map<string, SpanData>();
  for (const req of capture.requests.filter((r) => r.signal === 'traces')) {
    for (const t of tracesFromRequest(req.body)) {
      t.spans.forEach((b, i) => {
        const d = decodeSpan(b, t.resources[i]!, t.scopes[i]!);
        out.set(d.spanId, d);
      });
    }
  }
  return out;
}

/** Sent spans found downstream with their ids, names, trace ids and attributes unchanged. */
async function expectDelivered(capture: CaptureServer, sent: ReadableSpan[]): Promise<void> {
  const ids = new Set(sent.map((s) => s.spanContext().spanId));
  await waitFor(() => capture.spanIds().filter((id) => ids.has(id)).length >= ids.size, 20_000, 'spans downstream');
  const got = downstreamSpans(capture);
  for (const s of sent) {
    const r = got.get(s.spanContext().spanId);
    expect(r, s.name).toBeDefined();
    expect(r!.traceId).toBe(s.spanContext().traceId);
    expect(r!.name).toBe(s.name);
    expect(r!.attributes).toEqual({ ...s.attributes });
  }
}

/** The SHA-256 fingerprint of the certificate a new TLS connection to the port is shown. */
function peerFingerprint(port: number, o: { alpn: string; client?: CertFiles }): Promise<string> {
  return new Promise((done, fail) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ca: pki.ca.cert,
      ALPNProtocols: [o.alpn],
      ...(o.client ? { cert: o.client.cert, key: o.client.key } : {}),
    });
    socket.once('secureConnect', () => {
      const fp = socket.getPeerCertificate().fingerprint256;
      socket.destroy();
      done(fp);
    });
    socket.once('error', fail);
  });
}

/**
 * How long an export may take, retries included. Generous, for a busy machine; the exports that
 * must fail are told apart by the handshake-failure metric, not by how long they took.
 */
const EXPORT_TIMEOUT_MS = 20_000;
/** Exports that must fail: the exporters retry a refused connection until this runs out. */
const REFUSED_TIMEOUT_MS = 3_000;

function grpcExporter(port: number, client?: CertFiles, timeoutMillis = EXPORT_TIMEOUT_MS): GrpcTraceExporter {
  return new GrpcTraceExporter({
    url: `https://127.0.0.1:${port}`,
    credentials: grpc.credentials.createSsl(pki.ca.cert, client?.key ?? null, client?.cert ?? null),
    timeoutMillis,
  });
}

function httpExporter(kind: 'proto' | 'json', url: string, client?: CertFiles, timeoutMillis = EXPORT_TIMEOUT_MS): SpanExporter {
  const httpAgentOptions = { ca: pki.ca.cert, ...(client ? { cert: client.cert, key: client.key } : {}) };
  const o = { url: `${url}/v1/traces`, httpAgentOptions, timeoutMillis };
  return kind === 'proto' ? new ProtoTraceExporter(o) : new JsonTraceExporter(o);
}

function metricOf(sc: TestScorecar, name: string, labels: Record<string, string>): Promise<number> {
  return sc.metric(name, labels);
}

describe('receivers over TLS', () => {
  let capture: CaptureServer;
  let sc: TestScorecar;

  beforeAll(async () => {
    capture = await startHttpCapture();
    const t = `{certFile: "${serverA.certFile}", keyFile: "${serverA.keyFile}"}`;
    sc = await startScorecar(
      `exporters: {otlp: {endpoint: "${capture.url}"}}\nreceivers: {otlp: {grpc: {tls: ${t}}, http: {tls: ${t}}}}`,
    );
  });
  afterAll(async () => {
    await sc.stop();
    await capture.close();
  });

  it.each([
    ['OTLP/gRPC', 'grpc'],
    ['OTLP/HTTP protobuf', 'proto'],
    ['OTLP/HTTP JSON', 'json'],
  ] as const)('the SDK %s exporter delivers traces over TLS, intact', async (_label, kind) => {
    expect(sc.httpUrl.startsWith('https://')).toBe(true);
    const sent = makeSpans(20, kind);
    const port = Number(sc.grpcUrl.split(':')[1]);
    const exporter = kind === 'grpc' ? grpcExporter(port) : httpExporter(kind, sc.httpUrl);
    const r = await exportOnce(exporter, sent);
    await exporter.shutdown();
    expect(r.error?.message).toBeUndefined();
    expect(r.code).toBe(ExportResultCode.SUCCESS);
    await expectDelivered(capture, sent);
  });

  it('presents the configured certificate, h2 on gRPC and http/1.1 on HTTP', async () => {
    const grpcPort = Number(sc.grpcUrl.split(':')[1]);
    const httpPort = Number(new URL(sc.httpUrl).port);
    expect(await peerFingerprint(grpcPort, { alpn: 'h2' })).toBe(serverA.fingerprint);
    expect(await peerFingerprint(httpPort, { alpn: 'http/1.1' })).toBe(serverA.fingerprint);
  });

  it('refuses a plaintext sender on the TLS port', async () => {
    const failures = await metricOf(sc, 'scorecar_tls_handshake_failures_total', { server: 'http' });
    const sent = makeSpans(1, 'plaintext');
    const exporter = new ProtoTraceExporter({ url: `http://127.0.0.1:${new URL(sc.httpUrl).port}/v1/traces`, timeoutMillis: REFUSED_TIMEOUT_MS });
    const r = await exportOnce(exporter, sent);
    await exporter.shutdown();
    expect(r.code).toBe(ExportResultCode.FAILED);
    expect(capture.spanIds()).not.toContain(sent[0]!.spanContext().spanId);
    expect(await metricOf(sc, 'scorecar_tls_handshake_failures_total', { server: 'http' })).toBeGreaterThan(failures);
  });
});

describe('receivers with mTLS (clientCaFile)', () => {
  let capture: CaptureServer;
  let sc: TestScorecar;

  beforeAll(async () => {
    capture = await startHttpCapture();
    const t = `{certFile: "${serverA.certFile}", keyFile: "${serverA.keyFile}", clientCaFile: "${pki.ca.certFile}"}`;
    sc = await startScorecar(
      `exporters: {otlp: {endpoint: "${capture.url}"}}\nreceivers: {otlp: {grpc: {tls: ${t}}, http: {tls: ${t}}}}`,
    );
  });
  afterAll(async () => {
    await sc.stop();
    await capture.close();
  });

  it.each([
    ['OTLP/gRPC', 'grpc', 'grpc'],
    ['OTLP/HTTP protobuf', 'proto', 'http'],
    ['OTLP/HTTP JSON', 'json', 'http'],
  ] as const)('%s: no client certificate or an untrusted one fails the handshake; a trusted one delivers', async (_l, kind, server) => {
    const port = Number(sc.grpcUrl.split(':')[1]);
    const make = (client?: CertFiles, timeout = EXPORT_TIMEOUT_MS) =>
      kind === 'grpc' ? grpcExporter(port, client, timeout) : httpExporter(kind, sc.httpUrl, client, timeout);
    const failuresBefore = await metricOf(sc, 'scorecar_tls_handshake_failures_total', { server });
    for (const client of [undefined, strangerCert]) {
      const refused = makeSpans(1, `${kind}-refused`);
      const exporter = make(client, REFUSED_TIMEOUT_MS);
      const r = await exportOnce(exporter, refused);
      await exporter.shutdown();
      expect(r.code, client ? 'untrusted certificate' : 'no certificate').toBe(ExportResultCode.FAILED);
      expect(capture.spanIds()).not.toContain(refused[0]!.spanContext().spanId);
    }
    // The server saw failed handshakes (not refused requests): nothing reached the receiver.
    expect(await metricOf(sc, 'scorecar_tls_handshake_failures_total', { server })).toBeGreaterThanOrEqual(failuresBefore + 2);

    const sent = makeSpans(10, `${kind}-trusted`);
    const exporter = make(clientCert);
    const r = await exportOnce(exporter, sent);
    await exporter.shutdown();
    expect(r.error?.message).toBeUndefined();
    expect(r.code).toBe(ExportResultCode.SUCCESS);
    await expectDelivered(capture, sent);
  });

  it('a raw TLS client without a certificate gets a handshake alert, not an HTTP answer', async () => {
    const port = Number(new URL(sc.httpUrl).port);
    const outcome = await new Promise<string>((done) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca: pki.ca.cert, ALPNProtocols: ['http/1.1'] });
      let answer = '';
      socket.once('secureConnect', () => socket.write('POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n'));
      socket.on('data', (c: Buffer) => {
        answer += c.toString();
      });
      socket.once('error', (e: NodeJS.ErrnoException) => done(`error ${e.code ?? ''} ${e.message}`));
      socket.once('close', () => done(`closed ${answer}`));
    });
    // TLS 1.3 sends "certificate required" after the client's Finished: the client sees it as an
    // error on its first read. Never an HTTP status.
    expect(outcome).toMatch(/^error /);
    expect(outcome).toMatch(/certificate|alert|ECONNRESET/i);
    expect(outcome).not.toContain('HTTP/1.1');
  });

  it("MLflow's /v1/traces on the admin port reaches the mTLS receiver (in-process, no client certificate needed)", async () => {
    const sent = makeSpans(3, 'mlflow');
    const exporter = new ProtoTraceExporter({ url: `${sc.adminUrl}/v1/traces`, timeoutMillis: EXPORT_TIMEOUT_MS });
    const r = await exportOnce(exporter, sent);
    await exporter.shutdown();
    expect(r.error?.message).toBeUndefined();
    expect(r.code).toBe(ExportResultCode.SUCCESS);
    await expectDelivered(capture, sent);
  });
});

describe('admin port over https', () => {
  let sc: TestScorecar;

  beforeAll(async () => {
    sc = await startScorecar(
      `admin: {tls: {certFile: "${serverA.certFile}", keyFile: "${serverA.keyFile}"}}\nreceivers: {otlp: {grpc: {endpoint: ""}}}`,
    );
  });
  afterAll(async () => {
    await sc.stop();
  });

  it('the SDK registers and lists scorers with the CA given, and fails to connect without it', async () => {
    expect(sc.adminUrl.startsWith('https://')).toBe(true);
    const client = new ScorecarClient({ url: sc.adminUrl, experimentId: 'tls-exp', tls: { ca: pki.ca.cert } });
    const created = await client.registerScorer({ name: 'len', definition: { type: 'code', source: '(ctx) => 1' } });
    expect(created.name).toBe('len');
    expect((await client.listScorers()).map((s) => s.name)).toEqual(['len']);

    const untrusting = new ScorecarClient({ url: sc.adminUrl, experimentId: 'tls-exp' });
    const e = await untrusting.listScorers().then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(ScorecarApiError);
    expect((e as ScorecarApiError).code).toBe('DOWNSTREAM_UNAVAILABLE');
    expect((e as ScorecarApiError).status).toBe(0);
    expect((e as Error).message).toMatch(/certificate|SELF_SIGNED|UNABLE_TO_VERIFY/i);
  });

  it('readiness answers over https', async () => {
    const status = await new Promise<number>((done, fail) => {
      https.get(`${sc.adminUrl}/readyz`, { ca: pki.ca.cert }, (res) => {
        res.resume();
        done(res.statusCode ?? 0);
      }).once('error', fail);
    });
    expect(status).toBe(200);
  });

  it('the CLI trusts the CA named by --ca or SCORECAR_ADMIN_CA', async () => {
    const run = (args: string[], env: Record<string, string>) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
        execFile(
          join(ROOT, 'node_modules/.bin/node'),
          [join(ROOT, 'bin/scorecar.js'), 'scorers', ...args],
          { env: { ...process.env, SCORECAR_URL: sc.adminUrl, SCORECAR_EXPERIMENT: 'tls-exp', ...env }, cwd: ROOT },
          (err, stdout, stderr) => done({ code: err ? (typeof err.code === 'number' ? err.code : 99) : 0, stdout, stderr }),
        );
      });
    const viaEnv = await run(['list', '--json'], { SCORECAR_ADMIN_CA: pki.ca.certFile });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    expect((JSON.parse(viaEnv.stdout) as { scorers: { name: string }[] }).scorers.map((s) => s.name)).toContain('len');
    const viaFlag = await run(['list', '--json', '--ca', pki.ca.certFile], {});
    expect(viaFlag.code, viaFlag.stderr).toBe(0);
    const without = await run(['list', '--json'], {});
    expect(without.code).toBe(3); // server unreachable: the certificate is not trusted
  });
});

describe('admin port with mTLS', () => {
  let sc: TestScorecar;

  beforeAll(async () => {
    sc = await startScorecar(
      `admin: {tls: {certFile: "${serverA.certFile}", keyFile: "${serverA.keyFile}", clientCaFile: "${pki.ca.certFile}"}}\nreceivers: {otlp: {grpc: {endpoint: ""}}}`,
    );
  });
  afterAll(async () => {
    await sc.stop();
  });

  it('the SDK needs its client certificate', async () => {
    const without = new ScorecarClient({ url: sc.adminUrl, tls: { ca: pki.ca.cert } });
    const e = await without.listExperiments().then(
      () => undefined,
      (x: unknown) => x,
    );
    expect((e as ScorecarApiError | undefined)?.code).toBe('DOWNSTREAM_UNAVAILABLE');
    const withCert = new ScorecarClient({ url: sc.adminUrl, tls: { ca: pki.ca.cert, cert: clientCert.cert, key: clientCert.key } });
    expect(Array.isArray(await withCert.listExperiments())).toBe(true);
  });
});

describe('certificate reload without a restart', () => {
  let capture: CaptureServer;
  let sc: TestScorecar;
  let grpcFiles: { certFile: string; keyFile: string };
  let httpFiles: { certFile: string; keyFile: string };

  beforeAll(async () => {
    capture = await startHttpCapture();
    grpcFiles = liveFiles('grpc');
    httpFiles = liveFiles('http');
    // reloadIntervalMs 0: the test triggers each reload itself, so what is read when is certain.
    const t = (f: { certFile: string; keyFile: string }) => `{certFile: "${f.certFile}", keyFile: "${f.keyFile}", reloadIntervalMs: 0}`;
    sc = await startScorecar(
      `exporters: {otlp: {endpoint: "${capture.url}"}}\nreceivers: {otlp: {grpc: {tls: ${t(grpcFiles)}}, http: {tls: ${t(httpFiles)}}}}`,
    );
  });
  afterAll(async () => {
    await sc.stop();
    await capture.close();
  });

  it('gRPC: new connections see the new certificate, an open one keeps the old, a broken pair is refused', async () => {
    const rx = sc.app.pipeline.grpcReceiver!;
    const port = rx.address()!.port;
    expect(await peerFingerprint(port, { alpn: 'h2' })).toBe(serverA.fingerprint);
    // A connection opened before the reload, used after it.
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca: pki.ca.cert });
    const call = (): Promise<string | undefined> =>
      new Promise((done, fail) => {
        const req = session.request({
          ':method': 'POST',
          ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        let status: string | undefined;
        req.on('response', (h) => {
          status ??= h['grpc-status'] as string | undefined;
        });
        req.on('trailers', (h) => {
          status = h['grpc-status'] as string | undefined;
        });
        req.on('data', () => {});
        req.once('end', () => done(status));
        req.once('error', fail);
        req.end(Buffer.alloc(5)); // one empty ExportTraceServiceRequest
      });
    try {
      expect(await call()).toBe('0');

      install({ cert: serverB, key: serverB }, grpcFiles);
      expect(await rx.tls!.reload()).toEqual({ outcome: 'reloaded', fingerprint: serverB.fingerprint });
      expect(await peerFingerprint(port, { alpn: 'h2' })).toBe(serverB.fingerprint);
      // The open connection is untouched: still served, still the certificate it was shown.
      expect(await call()).toBe('0');
      expect((session.socket as tls.TLSSocket).getPeerCertificate().fingerprint256).toBe(serverA.fingerprint);

      // A broken pair (C's certificate with B's key): refused, B keeps serving.
      install({ cert: serverC, key: serverB }, grpcFiles);
      const refused = await rx.tls!.reload();
      expect(refused.outcome).toBe('refused');
      expect(refused.outcome === 'refused' && refused.issues.map((i) => i.path)).toEqual(['receivers.otlp.grpc.tls.keyFile']);
      expect(await peerFingerprint(port, { alpn: 'h2' })).toBe(serverB.fingerprint);
      expect(await metricOf(sc, 'scorecar_tls_reloads_total', { server: 'grpc', result: 'refused' })).toBe(1);
      expect(await metricOf(sc, 'scorecar_tls_reloads_total', { server: 'grpc', result: 'reloaded' })).toBe(1);
      // Polling the same broken files again is not counted again.
      expect((await rx.tls!.reload()).outcome).toBe('refused');
      expect(await metricOf(sc, 'scorecar_tls_reloads_total', { server: 'grpc', result: 'refused' })).toBe(1);
      const sent = makeSpans(5, 'after-refused-reload');
      const exporter = grpcExporter(port);
      expect((await exportOnce(exporter, sent)).code).toBe(ExportResultCode.SUCCESS);
      await exporter.shutdown();
      await expectDelivered(capture, sent);

      // The rotator finishes (C's key arrives): C is installed.
      install({ cert: serverC, key: serverC }, grpcFiles);
      expect((await rx.tls!.reload()).outcome).toBe('reloaded');
      expect(await peerFingerprint(port, { alpn: 'h2' })).toBe(serverC.fingerprint);
    } finally {
      session.close();
    }
  });

  it('HTTP: a kept-alive connection keeps its certificate, new ones get the new one', async () => {
    const rx = sc.app.pipeline.httpReceiver!;
    const port = rx.address()!.port;
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: pki.ca.cert });
    const post = (): Promise<{ status: number; fingerprint: string; reused: boolean }> =>
      new Promise((done, fail) => {
        const req = https.request(
          { host: '127.0.0.1', port, path: '/v1/traces', method: 'POST', agent, headers: { 'content-type': 'application/x-protobuf', 'content-length': 0 } },
          (res) => {
            // Read now: once the body ends the socket goes back to the agent's pool.
            const fingerprint = (res.socket as tls.TLSSocket).getPeerCertificate().fingerprint256;
            res.resume();
            res.once('end', () => done({ status: res.statusCode ?? 0, fingerprint, reused: req.reusedSocket }));
          },
        );
        req.once('error', fail);
        req.end();
      });
    try {
      expect(await post()).toMatchObject({ status: 200, fingerprint: serverA.fingerprint, reused: false });
      install({ cert: serverB, key: serverB }, httpFiles);
      expect((await rx.tls!.reload()).outcome).toBe('reloaded');
      expect(await post()).toMatchObject({ status: 200, fingerprint: serverA.fingerprint, reused: true });
      expect(await peerFingerprint(port, { alpn: 'http/1.1' })).toBe(serverB.fingerprint);
      // A key file that is not a key at all: refused with its key path, B keeps serving.
      copyFileSync(serverC.certFile, httpFiles.keyFile);
      const r = await rx.tls!.reload();
      expect(r.outcome === 'refused' && r.issues[0]?.path).toBe('receivers.otlp.http.tls.keyFile');
      expect(await peerFingerprint(port, { alpn: 'http/1.1' })).toBe(serverB.fingerprint);
      const sent = makeSpans(5, 'http-after-refused');
      const exporter = httpExporter('proto', sc.httpUrl);
      expect((await exportOnce(exporter, sent)).code).toBe(ExportResultCode.SUCCESS);
      await exporter.shutdown();
      await expectDelivered(capture, sent);
    } finally {
      agent.destroy();
    }
  });
});

describe('reload by polling (reloadIntervalMs)', () => {
  let sc: TestScorecar;
  let files: { certFile: string; keyFile: string };

  beforeAll(async () => {
    files = liveFiles('admin');
    sc = await startScorecar(
      `admin: {tls: {certFile: "${files.certFile}", keyFile: "${files.keyFile}", reloadIntervalMs: 50}}\nreceivers: {otlp: {grpc: {endpoint: ""}}}`,
    );
  });
  afterAll(async () => {
    await sc.stop();
  });

  it('the admin port picks up a replaced pair on its own', async () => {
    const port = Number(new URL(sc.adminUrl).port);
    expect(await peerFingerprint(port, { alpn: 'http/1.1' })).toBe(serverA.fingerprint);
    // Both files replaced: a poll may see the certificate before the key (refused, the old pair
    // kept); a later poll sees the whole new pair and installs it.
    install({ cert: serverB, key: serverB }, files);
    await waitFor(
      async () => (await metricOf(sc, 'scorecar_tls_reloads_total', { server: 'admin', result: 'reloaded' })) >= 1,
      20_000,
      'the admin certificate reloaded',
    );
    expect(await peerFingerprint(port, { alpn: 'http/1.1' })).toBe(serverB.fingerprint);
    const client = new ScorecarClient({ url: sc.adminUrl, tls: { ca: pki.ca.cert } });
    expect(Array.isArray(await client.listExperiments())).toBe(true);
  });
});

describe('scorecar start with unusable TLS files', () => {
  it('exits 78 and names the key path of every bad file', async () => {
    const file = join(pki.dir, 'bad-tls.yaml');
    writeFileSync(
      file,
      [
        'receivers:',
        '  otlp:',
        `    grpc: {endpoint: "127.0.0.1:0", tls: {certFile: "${serverA.certFile}", keyFile: "${serverB.keyFile}"}}`,
        `    http: {endpoint: "127.0.0.1:0", tls: {certFile: "${join(pki.dir, 'missing.crt')}", keyFile: "${serverA.keyFile}"}}`,
        `admin: {endpoint: "127.0.0.1:0", tls: {certFile: "${serverA.certFile}", keyFile: "${serverA.keyFile}", clientCaFile: "${serverA.keyFile}"}}`,
        `storage: {dir: "${join(pki.dir, 'data')}"}`,
      ].join('\n'),
    );
    const r = await new Promise<{ code: number; stderr: string }>((done) => {
      execFile(
        join(ROOT, 'node_modules/.bin/node'),
        [join(ROOT, 'bin/scorecar.js'), 'start', '--config', file],
        { cwd: ROOT, env: { ...process.env, SCORECAR_CONFIG: '' } },
        (err, _stdout, stderr) => done({ code: err ? (typeof err.code === 'number' ? err.code : 99) : 0, stderr }),
      );
    });
    expect(r.code, r.stderr).toBe(78);
    expect(r.stderr).toMatch(/receivers\.otlp\.grpc\.tls\.keyFile: TLS_INVALID: does not match the certificate/);
    expect(r.stderr).toMatch(/receivers\.otlp\.http\.tls\.certFile: TLS_INVALID: cannot read .*missing\.crt: does not exist/);
    expect(r.stderr).toMatch(/admin\.tls\.clientCaFile: TLS_INVALID: is not a PEM certificate bundle/);
  });
});

describe('a client that never starts its TLS handshake', () => {
  let sc: TestScorecar;

  beforeAll(async () => {
    const t = `{certFile: "${serverA.certFile}", keyFile: "${serverA.keyFile}"}`;
    sc = await startScorecar(
      `receivers: {otlp: {grpc: {tls: ${t}, handshakeTimeoutMs: 300}, http: {tls: ${t}, headerTimeoutMs: 300}}}`,
    );
  });
  afterAll(async () => {
    await sc.stop();
  });

  it.each([
    ['gRPC', 'grpc', 'handshake_timeout'],
    ['HTTP', 'http', 'header_timeout'],
  ] as const)('%s: is closed after the handshake timeout and counted', async (_l, transport, reason) => {
    const port = transport === 'grpc' ? sc.app.pipeline.grpcReceiver!.address()!.port : sc.app.pipeline.httpReceiver!.address()!.port;
    // Connected, silent: no ClientHello ever comes. The server must close it on its own.
    const closed = await new Promise<boolean>((done, fail) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('error', fail);
      socket.resume();
      socket.once('close', () => done(true));
    });
    expect(closed).toBe(true);
    expect(await metricOf(sc, 'scorecar_receiver_connections_closed_total', { transport, reason })).toBe(1);
    expect(await metricOf(sc, 'scorecar_tls_handshake_failures_total', { server: transport })).toBe(1);
  });
});
