// OTLP/gRPC receiver: the unary Export method of the trace, logs and metrics services, served on
// node:http2 directly. Request bytes reach the scanner and the forwarder as they came off the
// wire (the pieces of the one length-prefixed message), and every status comes from the error
// table (util/errors.ts): refusals answer a Trailers-Only response with the code's gRPC status,
// overload and shutdown UNAVAILABLE with a google.rpc.RetryInfo in grpc-status-details-bin, and
// a bug of ours UNAVAILABLE too, so senders retry.
//
// Why not a gRPC library server: grpc-js reads and inflates a whole message into memory before
// any handler or interceptor sees it (measured: 100 concurrent 4 MiB gzip messages took the
// process to ~600 MiB even with every call refused), so the memory budget could not be charged
// as bytes arrive. Here, as on OTLP/HTTP, a message is charged as its bytes arrive and a
// compressed one as it inflates; its size prefix is checked against the limit, the export queue
// and the budget before any of it is kept; it must arrive within requestTimeoutMs. Connections
// are limited (maxConnections), must complete the HTTP/2 handshake within handshakeTimeoutMs and
// are closed (GOAWAY) after idleTimeoutMs without a call; calls per connection are limited by
// SETTINGS_MAX_CONCURRENT_STREAMS.
//
// With a tls block the same server runs on http2.createSecureServer (ALPN h2 only, as gRPC
// requires): the TLS handshake is bounded by handshakeTimeoutMs too, mTLS refuses a client
// without a trusted certificate in the handshake, and a reloaded certificate is used by new
// connections only (util/tls.ts).
import http2 from 'node:http2';
import type net from 'node:net';
import type tls from 'node:tls';
import zlib from 'node:zlib';
import type { Component } from '../component/index.ts';
import { GRPC, type Logger, type MetricsRegistry, receiverStatus, ScorecarError, ServerTls, type ServerTlsSettings } from '../util/index.ts';
import { encodeRpcStatus, otlpType, type Signal, TYPE } from '../wire/index.ts';
import type { Hold, MemoryBudget } from './budget.ts';
import { Connections } from './connections.ts';
import type { OtlpIngest } from './ingest.ts';
import { RequestCounters } from './requests.ts';

export interface GrpcReceiverOptions {
  endpoint: string;
  maxRecvMsgSizeBytes: number;
  retryAfterSeconds: number;
  /** Defaults as in the config schema. */
  maxConnections?: number;
  maxConcurrentStreams?: number;
  handshakeTimeoutMs?: number;
  requestTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Serve over TLS (receivers.otlp.grpc.tls); undefined = plaintext h2c. */
  tls?: ServerTlsSettings | undefined;
}

interface Service {
  signal: Signal;
  response: string;
  rejectedField: string;
}

const SERVICES: Record<string, Service> = {
  '/opentelemetry.proto.collector.trace.v1.TraceService/Export': { signal: 'traces', response: TYPE.traceResponse, rejectedField: 'rejectedSpans' },
  '/opentelemetry.proto.collector.logs.v1.LogsService/Export': { signal: 'logs', response: TYPE.logsResponse, rejectedField: 'rejectedLogRecords' },
  '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export': { signal: 'metrics', response: TYPE.metricsResponse, rejectedField: 'rejectedDataPoints' },
};

const GRPC_NAME = new Map<number, string>(Object.entries(GRPC).map(([name, n]) => [n, name]));
const ACCEPT_ENCODING = 'identity,deflate,gzip';
/** Output chunk of the inflaters. */
const INFLATE_CHUNK = 64 * 1024;
/** How long a connection closed gracefully (GOAWAY) may take to go before it is cut. */
const CLOSE_GRACE_MS = 1_000;
/** How long shutdown waits for calls in progress. */
const SHUTDOWN_GRACE_MS = 10_000;

/** grpc-message is percent-encoded: anything outside printable ASCII, and '%'. */
function grpcMessage(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s === '' ? undefined : s;
}

/** One connection: whether it completed the handshake, and its calls in progress. */
interface SessionState {
  streams: number;
  handshake: NodeJS.Timeout | undefined;
  idle: NodeJS.Timeout;
  /** The TCP socket under the session (the session only hands out a proxy that cannot close it). */
  socket: net.Socket | undefined;
}

function peer(s: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string {
  return `${s.remoteAddress}|${s.remotePort}`;
}

export class OtlpGrpcReceiver implements Component {
  private readonly opts: Required<Omit<GrpcReceiverOptions, 'tls'>>;
  private readonly server: http2.Http2Server | http2.Http2SecureServer;
  /** The certificate and its reloads, when served over TLS. */
  readonly tls: ServerTls | undefined;
  private readonly ingest: OtlpIngest;
  private readonly budget: MemoryBudget;
  private readonly log: Logger;
  private readonly conns: Connections;
  private readonly counters: RequestCounters;
  private readonly sessions = new Map<http2.ServerHttp2Session, SessionState>();
  private readonly awaitingSocket = new Map<string, SessionState>();
  private draining = false;
  private calls = 0;
  private callsDone: (() => void) | undefined;
  private bound: { port: number; host: string } | undefined;
  private closing: Promise<void> | undefined;

  constructor(opts: GrpcReceiverOptions, ingest: OtlpIngest, budget: MemoryBudget, metrics: MetricsRegistry, log: Logger) {
    const { tls: tlsSettings, ...rest } = opts;
    this.opts = {
      maxConnections: 4096,
      maxConcurrentStreams: 100,
      handshakeTimeoutMs: 10_000,
      requestTimeoutMs: 60_000,
      idleTimeoutMs: 60_000,
      ...rest,
    };
    this.ingest = ingest;
    this.budget = budget;
    this.log = log;
    this.counters = new RequestCounters(metrics);
    const h2 = {
      settings: { maxConcurrentStreams: this.opts.maxConcurrentStreams },
      // Node's default (10 MB) refuses new streams of a busy connection with ENHANCE_YOUR_CALM;
      // what a connection holds is bounded by flow control and the memory budget instead.
      maxSessionMemory: 256,
    };
    this.tls = tlsSettings
      ? new ServerTls({ name: 'grpc', path: 'receivers.otlp.grpc.tls', settings: tlsSettings, metrics, log })
      : undefined;
    if (this.tls) {
      const secure = http2.createSecureServer({
        ...h2,
        ...this.tls.serverOptions(),
        // gRPC is HTTP/2 only: a client that does not offer h2 in ALPN is refused.
        ALPNProtocols: ['h2'],
        allowHTTP1: false,
        handshakeTimeout: this.opts.handshakeTimeoutMs,
      });
      this.tls.attach(secure);
      secure.on('tlsClientError', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') this.conns.closed('handshake_timeout');
      });
      this.server = secure;
    } else {
      this.server = http2.createServer(h2);
    }
    this.conns = new Connections(this.server, 'grpc', this.opts.maxConnections, metrics);
    this.server.on('session', (session: http2.ServerHttp2Session) => this.onSession(session));
    // Node emits 'session' from its own listener of 'connection' (plaintext) or 'secureConnection'
    // (TLS, after the handshake), registered before this one, so by now the session is known.
    // Under TLS the socket to cut is the TLS socket (destroying it closes the TCP one too).
    this.server.on(this.tls ? 'secureConnection' : 'connection', (socket: net.Socket | tls.TLSSocket) => {
      const key = peer(socket);
      const state = this.awaitingSocket.get(key);
      this.awaitingSocket.delete(key);
      if (state) state.socket = socket;
    });
    this.server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => this.onStream(stream, headers));
  }

  /** Where it listens (after start). */
  address(): { port: number; host: string } | undefined {
    return this.bound;
  }

  async start(): Promise<void> {
    if (this.bound || this.closing) return;
    await this.listen();
  }

  /** Stops accepting (new calls get UNAVAILABLE at once), then waits for calls in progress. */
  shutdown(_deadlineMs?: number): Promise<void> {
    this.closing ??= this.close();
    return this.closing;
  }

  async listen(): Promise<{ port: number; host: string }> {
    const i = this.opts.endpoint.lastIndexOf(':');
    const host = this.opts.endpoint.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0';
    const port = Number(this.opts.endpoint.slice(i + 1));
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const addr = this.server.address() as { port: number };
    this.bound = { port: addr.port, host };
    return this.bound;
  }

  beginDrain(): void {
    this.draining = true;
  }

  /** Stops accepting, lets calls in progress finish (GOAWAY), then closes every connection. */
  async close(): Promise<void> {
    this.draining = true;
    this.tls?.stop();
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.calls > 0) {
      await Promise.race([
        new Promise<void>((resolve) => {
          this.callsDone = resolve;
        }),
        new Promise<void>((resolve) => setTimeout(resolve, SHUTDOWN_GRACE_MS).unref()),
      ]);
    }
    for (const session of this.sessions.keys()) session.destroy();
    this.conns.destroyAll();
    await closed;
  }

  private onSession(session: http2.ServerHttp2Session): void {
    const state: SessionState = {
      streams: 0,
      handshake: setTimeout(() => {
        // No SETTINGS from the client yet: a silent connection, or a preface that never finished.
        this.conns.closed('handshake_timeout');
        this.cut(session, state);
      }, this.opts.handshakeTimeoutMs),
      idle: setTimeout(() => this.onIdle(session, state), this.opts.idleTimeoutMs),
      socket: undefined,
    };
    state.handshake!.unref();
    state.idle.unref();
    this.sessions.set(session, state);
    const key = peer(session.socket);
    this.awaitingSocket.set(key, state);
    session.once('remoteSettings', () => {
      clearTimeout(state.handshake);
      state.handshake = undefined;
    });
    session.on('error', (e) => this.log.debug('OTLP/gRPC connection error', { error: e.message }));
    session.once('close', () => {
      clearTimeout(state.handshake);
      clearTimeout(state.idle);
      this.sessions.delete(session);
      if (this.awaitingSocket.get(key) === state) this.awaitingSocket.delete(key);
    });
  }

  /** idleTimeoutMs without a call in progress: GOAWAY, and the connection is cut if it lingers. */
  private onIdle(session: http2.ServerHttp2Session, state: SessionState): void {
    if (state.streams > 0 || session.closed || session.destroyed) return;
    this.conns.closed('idle_timeout');
    session.close();
    setTimeout(() => this.cut(session, state), CLOSE_GRACE_MS).unref();
  }

  /**
   * Closes a connection now. Destroying the session alone ends the socket gracefully, which a
   * client that does not read never completes: the socket itself is destroyed too.
   */
  private cut(session: http2.ServerHttp2Session, state: SessionState): void {
    session.destroy();
    state.socket?.destroy();
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const state = this.sessions.get(stream.session as http2.ServerHttp2Session);
    if (state) {
      state.streams++;
      stream.once('close', () => {
        if (--state.streams === 0) state.idle.refresh();
      });
    }
    stream.on('error', (e) => this.log.debug('OTLP/gRPC stream error', { error: e.message }));
    // Not gRPC at all: plain HTTP statuses, as gRPC servers answer them.
    if (headers[':method'] !== 'POST') {
      this.count('unknown', '405');
      stream.respond({ ':status': 405, allow: 'POST' }, { endStream: true });
      return;
    }
    const contentType = String(headers['content-type'] ?? '');
    if (!contentType.startsWith('application/grpc')) {
      this.count('unknown', '415');
      stream.respond({ ':status': 415 }, { endStream: true });
      return;
    }
    new Call(this, stream, headers).start();
  }

  // What a Call needs of its receiver.

  get options(): Required<Omit<GrpcReceiverOptions, 'tls'>> {
    return this.opts;
  }
  get isDraining(): boolean {
    return this.draining;
  }
  get memory(): MemoryBudget {
    return this.budget;
  }
  get stage(): OtlpIngest {
    return this.ingest;
  }

  callStarted(): void {
    this.calls++;
  }

  callEnded(): void {
    if (--this.calls === 0) this.callsDone?.();
  }

  /** Counts a call's outcome: `ok`, `partial`, `cancelled`, or the name of the gRPC code answered. */
  count(signal: Signal | 'unknown', outcome: string, refusal?: ReturnType<typeof receiverStatus>): void {
    this.counters.outcome(signal, 'grpc', outcome);
    if (refusal?.retryHint) this.counters.refusedRetryable(signal, 'grpc', refusal.code);
  }

  logUnexpected(e: unknown): void {
    this.log.error('OTLP/gRPC request failed unexpectedly', { err: e });
  }
}

/**
 * One unary call: reads the one length-prefixed message as it arrives (checking its size prefix
 * first, charging each piece as it is kept, inflating a compressed one as it streams), then
 * hands it to ingest and answers.
 */
class Call {
  private readonly rx: OtlpGrpcReceiver;
  private readonly stream: http2.ServerHttp2Stream;
  private readonly headers: http2.IncomingHttpHeaders;
  private readonly svc: Service | undefined;
  private readonly hold: Hold;
  private readonly pieces: Buffer[] = [];
  private size = 0;
  /** The 5-byte message prefix, as it arrives. */
  private prefix = Buffer.alloc(5);
  private prefixHave = 0;
  /** Bytes of the message still to come; -1 before the prefix is complete. */
  private remaining = -1;
  private messageDone = false;
  private inflater: zlib.Gunzip | zlib.Inflate | undefined;
  private encoding = 'identity';
  private timer: NodeJS.Timeout | undefined;
  private finished = false;
  private ended = false;

  constructor(rx: OtlpGrpcReceiver, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) {
    this.rx = rx;
    this.stream = stream;
    this.headers = headers;
    this.svc = SERVICES[String(headers[':path'] ?? '')];
    this.hold = rx.memory.hold();
  }

  private get signal(): Signal | 'unknown' {
    return this.svc?.signal ?? 'unknown';
  }

  start(): void {
    this.rx.callStarted();
    this.stream.once('aborted', () => this.onClose());
    this.stream.once('close', () => this.onClose());
    try {
      if (!this.svc) {
        throw new ScorecarError('METHOD_NOT_ALLOWED', `unknown method ${String(this.headers[':path'])}; OTLP serves the Export method of its trace, logs and metrics services`);
      }
      if (this.rx.isDraining) throw new ScorecarError('SHUTTING_DOWN', 'scorecar is shutting down');
      this.encoding = String(this.headers['grpc-encoding'] ?? 'identity').toLowerCase();
      if (!['identity', 'gzip', 'deflate'].includes(this.encoding)) {
        throw new ScorecarError('UNSUPPORTED_MEDIA_TYPE', `unsupported grpc-encoding '${this.encoding}'; use gzip, deflate or identity`);
      }
    } catch (e) {
      this.fail(e);
      return;
    }
    this.timer = setTimeout(() => {
      this.fail(new ScorecarError('REQUEST_TIMEOUT', `request message not received in full within ${this.rx.options.requestTimeoutMs} ms`));
    }, this.rx.options.requestTimeoutMs);
    this.timer.unref();
    this.stream.on('data', (c: Buffer) => this.onData(c));
    this.stream.once('end', () => this.onEnd());
  }

  private onData(c: Buffer): void {
    if (this.finished) return;
    try {
      let at = 0;
      while (at < c.length && !this.finished) {
        if (this.remaining < 0) {
          const n = Math.min(5 - this.prefixHave, c.length - at);
          c.copy(this.prefix, this.prefixHave, at, at + n);
          this.prefixHave += n;
          at += n;
          if (this.prefixHave === 5) this.onPrefix();
          continue;
        }
        if (this.messageDone) throw new ScorecarError('INVALID_ARGUMENT', 'a unary call carries one request message; more data followed it');
        const n = Math.min(this.remaining, c.length - at);
        const piece = c.subarray(at, at + n);
        at += n;
        this.remaining -= n;
        if (this.inflater) this.feed(piece);
        else this.keep(piece);
        if (this.remaining === 0) this.onMessageEnd();
      }
    } catch (e) {
      this.fail(e);
    }
  }

  /** The message prefix is in: admission, by its declared size, before any of it is kept. */
  private onPrefix(): void {
    if (this.messageDone) throw new ScorecarError('INVALID_ARGUMENT', 'a unary call carries one request message; more data followed it');
    const flag = this.prefix[0]!;
    const length = this.prefix.readUInt32BE(1);
    const limit = this.rx.options.maxRecvMsgSizeBytes;
    if (flag > 1) throw new ScorecarError('INVALID_ARGUMENT', `invalid message flag ${flag}`);
    if (flag === 1 && this.encoding === 'identity') {
      throw new ScorecarError('INVALID_ARGUMENT', 'the message is marked compressed but the call has no grpc-encoding');
    }
    if (length > limit) throw new ScorecarError('PAYLOAD_TOO_LARGE', `message of ${length} bytes exceeds the limit of ${limit} bytes`);
    this.rx.stage.precheck(this.svc!.signal, length, this.context());
    if (!this.rx.memory.fits(length)) throw new ScorecarError('MEMORY_BUDGET_FULL', 'memory budget is full; retry later');
    this.remaining = length;
    if (flag === 1) {
      const z = this.encoding === 'gzip' ? zlib.createGunzip({ chunkSize: INFLATE_CHUNK }) : zlib.createInflate({ chunkSize: INFLATE_CHUNK });
      this.inflater = z;
      z.on('data', (out: Buffer) => {
        try {
          this.keep(out);
        } catch (e) {
          this.fail(e);
        }
      });
      z.on('error', (e: Error) => this.fail(new ScorecarError('INVALID_ARGUMENT', `cannot decompress ${this.encoding} message: ${e.message}`)));
      z.on('end', () => {
        this.inflater = undefined;
        this.maybeFinish();
      });
    }
    if (length === 0) this.onMessageEnd();
  }

  /** A piece of the message as it will be used: the size limit (after inflating), then the budget. */
  private keep(piece: Buffer): void {
    if (this.finished) return;
    this.size += piece.length;
    const limit = this.rx.options.maxRecvMsgSizeBytes;
    if (this.size > limit) throw new ScorecarError('PAYLOAD_TOO_LARGE', `decompressed message exceeds the limit of ${limit} bytes`);
    if (!this.hold.tryAdd(piece.length)) throw new ScorecarError('MEMORY_BUDGET_FULL', 'memory budget is full; retry later');
    if (piece.length > 0) this.pieces.push(piece);
  }

  /** Compressed bytes go to the inflater; the stream waits while it catches up. */
  private feed(piece: Buffer): void {
    const z = this.inflater!;
    if (!z.write(piece)) {
      this.stream.pause();
      z.once('drain', () => {
        if (!this.finished) this.stream.resume();
      });
    }
  }

  private onMessageEnd(): void {
    this.messageDone = true;
    this.inflater?.end();
  }

  private onEnd(): void {
    this.ended = true;
    if (this.finished) return;
    if (!this.messageDone) {
      // A client's RST_STREAM also ends the request ('aborted' follows at once): only a call
      // that was not cancelled is told its message is missing.
      const why = this.remaining < 0 && this.prefixHave === 0 ? 'the call carried no request message' : 'the request message is truncated';
      setImmediate(() => {
        if (!this.stream.aborted) this.fail(new ScorecarError('INVALID_ARGUMENT', why));
      });
      return;
    }
    this.maybeFinish();
  }

  /** Message complete (and inflated), request stream ended: hand it on and answer. */
  private maybeFinish(): void {
    if (this.finished || !this.ended || !this.messageDone || this.inflater !== undefined) return;
    this.stopTimer();
    const svc = this.svc!;
    try {
      const outcome = this.rx.stage.handle(svc.signal, this.pieces, this.context());
      let res: Uint8Array = new Uint8Array(0);
      if (outcome.rejected > 0) {
        const t = otlpType(svc.response);
        res = t.encode(t.create({ partialSuccess: { [svc.rejectedField]: outcome.rejected, errorMessage: outcome.errorMessage } })).finish();
      }
      this.finish();
      this.rx.count(svc.signal, outcome.rejected > 0 ? 'partial' : 'ok');
      this.respondOk(res);
    } catch (e) {
      this.fail(e);
    }
  }

  private context(): { transport: 'grpc'; experimentHeader: string | undefined } {
    return { transport: 'grpc', experimentHeader: headerValue(this.headers['x-mlflow-experiment-id']) };
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Ends the call's hold on everything: timer, inflater, kept pieces, its budget. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.stopTimer();
    if (this.inflater) {
      this.inflater.removeAllListeners('data');
      this.inflater.destroy();
      this.inflater = undefined;
    }
    this.pieces.length = 0;
    this.hold.release();
    this.rx.callEnded();
  }

  private onClose(): void {
    if (this.finished) return;
    // The client went away (cancelled, or its connection closed) before it was answered.
    this.finish();
    this.rx.count(this.signal, 'cancelled');
  }

  private fail(e: unknown): void {
    if (this.finished) return;
    this.finish();
    const st = receiverStatus(e);
    // A bug of ours: logged with its stack, answered retryable so the sender keeps its data.
    if (st.code === 'UNEXPECTED') this.rx.logUnexpected(e);
    this.rx.count(this.signal, GRPC_NAME.get(st.grpc) ?? String(st.grpc), st);
    if (this.stream.destroyed || this.stream.closed) return;
    const headers: http2.OutgoingHttpHeaders = {
      ':status': 200,
      'content-type': 'application/grpc',
      'grpc-accept-encoding': ACCEPT_ENCODING,
      'grpc-status': String(st.grpc),
      'grpc-message': grpcMessage(st.message),
    };
    if (st.retryHint) {
      headers['grpc-status-details-bin'] = encodeRpcStatus(st.grpc, st.message, this.rx.options.retryAfterSeconds * 1000).toString('base64');
    }
    if (this.stream.headersSent) {
      this.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    // Trailers-Only. When the request is still coming, RST_STREAM(NO_ERROR) after the answer
    // tells the client to stop sending (RFC 9113, 8.1) without failing the call.
    this.stream.respond(headers, { endStream: true });
    if (!this.ended) this.stream.close(http2.constants.NGHTTP2_NO_ERROR);
  }

  private respondOk(res: Uint8Array): void {
    if (this.stream.destroyed || this.stream.closed) return;
    const frame = Buffer.allocUnsafe(5 + res.length);
    frame[0] = 0;
    frame.writeUInt32BE(res.length, 1);
    frame.set(res, 5);
    this.stream.respond(
      { ':status': 200, 'content-type': 'application/grpc', 'grpc-accept-encoding': ACCEPT_ENCODING, 'grpc-encoding': 'identity' },
      { waitForTrailers: true },
    );
    this.stream.once('wantTrailers', () => this.stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': '' }));
    this.stream.end(frame);
  }
}
