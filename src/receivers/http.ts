// OTLP/HTTP receiver: POST /v1/traces, /v1/logs, /v1/metrics with protobuf or JSON bodies,
// gzip/deflate/zstd encoded or not. Statuses follow the OTLP spec and the Go collector: 400 for
// bad payloads, 413 over the size limit (checked after decompression), 415 for unknown content
// types or encodings, 405 for other methods, 408 for a body that does not arrive in time, 429 +
// Retry-After when the memory budget is full, 503 + Retry-After when the export queue is full or
// the server is shutting down.
//
// One sender cannot hold up the others: a body is charged to the memory budget as its bytes
// arrive (and as they inflate), not as declared, so a slow sender holds only what it sent; a
// body must arrive within requestTimeoutMs; connections are limited (maxConnections) and closed
// when their headers do not come (headerTimeoutMs) or they stay idle (idleTimeoutMs). A request
// refused before its body was read is answered at once and its body is then read and discarded
// (up to a bound), so the sender reads a complete status instead of a reset connection.
//
// With a tls block it is served over https (HTTP/1.1 only, ALPN http/1.1: OTLP/HTTP senders
// that offer h2 fall back to it); the TLS handshake must complete within headerTimeoutMs, mTLS
// refuses a client without a trusted certificate in the handshake, and a reloaded certificate is
// used by new connections only (util/tls.ts).
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Component } from '../component/index.ts';
import { type Logger, type MetricsRegistry, receiverStatus, ScorecarError, ServerTls, type ServerTlsSettings } from '../util/index.ts';
import { type Body, encodeRpcStatus, otlpType, rpcStatusJson, type Signal, TYPE } from '../wire/index.ts';
import { BodyReader, ENCODINGS } from './body.ts';
import type { MemoryBudget } from './budget.ts';
import { Connections } from './connections.ts';
import type { IngestOutcome, OtlpIngest } from './ingest.ts';
import { INLINE_JSON_BYTES, JsonPool } from './json-pool.ts';
import { RequestCounters } from './requests.ts';

export interface HttpReceiverOptions {
  endpoint: string;
  maxRequestBodyBytes: number;
  retryAfterSeconds: number;
  /** Defaults as in the config schema. */
  maxConnections?: number;
  headerTimeoutMs?: number;
  requestTimeoutMs?: number;
  idleTimeoutMs?: number;
  jsonWorkers?: number;
  /** Serve over TLS (receivers.otlp.http.tls); undefined = plaintext. */
  tls?: ServerTlsSettings | undefined;
}

const MiB = 1024 * 1024;

const PATHS: Record<string, Signal> = { '/v1/traces': 'traces', '/v1/logs': 'logs', '/v1/metrics': 'metrics' };
const RESPONSE_TYPE: Record<Signal, string> = {
  traces: TYPE.traceResponse,
  logs: TYPE.logsResponse,
  metrics: TYPE.metricsResponse,
};
const REJECTED_FIELD: Record<Signal, string> = {
  traces: 'rejectedSpans',
  logs: 'rejectedLogRecords',
  metrics: 'rejectedDataPoints',
};

type Format = 'protobuf' | 'json';

/** One request in progress: its body, and the timer that bounds how long its body may take. */
interface Exchange {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  reader: BodyReader;
  /** False while an Expect: 100-continue request has not been asked for its body. */
  continued: boolean;
  timer: NodeJS.Timeout | undefined;
  /** Answered already; the rest of the body is being read into nothing. */
  discarding: boolean;
}

/** The pieces as one buffer; `own` asks for a fresh allocation of its own even for one piece. */
function join(pieces: readonly Buffer[], size: number, own: boolean): Buffer {
  if (pieces.length === 1 && !own) return pieces[0]!;
  const out = Buffer.allocUnsafeSlow(size);
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export class OtlpHttpReceiver implements Component {
  private readonly opts: Required<Omit<HttpReceiverOptions, 'tls'>>;
  /** The certificate and its reloads, when served over TLS. */
  readonly tls: ServerTls | undefined;
  private readonly ingest: OtlpIngest;
  private readonly budget: MemoryBudget;
  private readonly log: Logger;
  private readonly server: http.Server | https.Server;
  private readonly conns: Connections;
  private readonly counters: RequestCounters;
  private readonly json: JsonPool;
  /** TLS sockets whose handshake completed (under TLS, clientError also reports failed handshakes). */
  private readonly secured = new WeakSet<object>();
  /**
   * Per client address, the turn of its latest OTLP/JSON request: JSON requests of one client
   * are handed on in the order they arrived, although large ones are converted on workers while
   * small ones are converted at once (a client's concurrent batches would otherwise overtake
   * each other, and a trace's spans arrive after the trace was completed). Other clients, and
   * protobuf requests, never wait for them.
   */
  private readonly jsonTurns = new Map<string, Promise<void>>();
  /** How much of a refused request's body is read and discarded before the connection is closed. */
  private readonly discardLimit: number;
  private draining = false;
  private inflight = 0;
  private idle: (() => void) | undefined;
  private bound: AddressInfo | undefined;
  private closing: Promise<void> | undefined;

  constructor(opts: HttpReceiverOptions, ingest: OtlpIngest, budget: MemoryBudget, metrics: MetricsRegistry, log: Logger) {
    const { tls: tlsSettings, ...rest } = opts;
    this.opts = {
      maxConnections: 4096,
      headerTimeoutMs: 10_000,
      requestTimeoutMs: 60_000,
      idleTimeoutMs: 65_000,
      jsonWorkers: 2,
      ...rest,
    };
    this.ingest = ingest;
    this.budget = budget;
    this.log = log;
    this.discardLimit = Math.max(64 * MiB, 4 * this.opts.maxRequestBodyBytes);
    this.counters = new RequestCounters(metrics);
    this.json = new JsonPool(this.opts.jsonWorkers, this.opts.maxRequestBodyBytes);
    const httpOptions: http.ServerOptions = {
      keepAliveTimeout: this.opts.idleTimeoutMs,
      headersTimeout: this.opts.headerTimeoutMs,
      // The body has a timeout of its own (requestTimeoutMs), answered from the error table.
      requestTimeout: 0,
      connectionsCheckingInterval: Math.min(1_000, Math.max(25, Math.floor(this.opts.headerTimeoutMs / 4))),
    };
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => void this.onRequest(req, res, false);
    this.tls = tlsSettings
      ? new ServerTls({ name: 'http', path: 'receivers.otlp.http.tls', settings: tlsSettings, metrics, log })
      : undefined;
    if (this.tls) {
      const secure = https.createServer(
        {
          ...httpOptions,
          ...this.tls.serverOptions(),
          ALPNProtocols: ['http/1.1'],
          // headersTimeout starts once the handshake is done; a silent TLS client is bounded here.
          handshakeTimeout: this.opts.headerTimeoutMs,
        },
        onRequest,
      );
      this.tls.attach(secure);
      secure.on('secureConnection', (socket) => this.secured.add(socket));
      this.server = secure;
    } else {
      this.server = http.createServer(httpOptions, onRequest);
    }
    // Expect: 100-continue: the body is asked for only once the request is admitted.
    this.server.on('checkContinue', (req, res) => void this.onRequest(req, res, true));
    this.conns = new Connections(this.server, 'http', this.opts.maxConnections, metrics);
    // Under TLS the HTTP parser runs on the TLS socket, so its keep-alive timeout is set there.
    this.server.on(this.tls ? 'secureConnection' : 'connection', (socket: import('node:net').Socket) => {
      // Node sets the socket timeout only between requests (keep-alive) and closes it when it fires.
      socket.on('timeout', () => this.conns.closed('idle_timeout'));
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (this.tls && !this.secured.has(socket)) {
        // https hands TLS failures (a handshake that timed out, no client certificate under mTLS,
        // a plaintext request) to clientError too: there is no TLS session to answer on, and a
        // plaintext 400 written there would wait for a handshake that never completes.
        if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') this.conns.closed('header_timeout');
        socket.destroy();
        return;
      }
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
        // headerTimeoutMs: silent connections and headers that trickle in.
        this.conns.closed('header_timeout');
        if (socket.writable) socket.write('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        (socket as import('node:net').Socket).destroySoon();
        return;
      }
      if (socket.writable && err.code !== 'ECONNRESET') socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
      this.log.debug('malformed HTTP request', { error: err.message });
    });
  }

  /** Where it listens (after start). */
  address(): AddressInfo | undefined {
    return this.bound;
  }

  async start(): Promise<void> {
    if (this.bound || this.closing) return;
    await this.listen();
  }

  /** Stops accepting (new requests get 503 at once), then waits for requests in progress. */
  shutdown(_deadlineMs?: number): Promise<void> {
    this.closing ??= this.close();
    return this.closing;
  }

  async listen(): Promise<AddressInfo> {
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
    this.bound = this.server.address() as AddressInfo;
    return this.bound;
  }

  /** Stops accepting connections and waits for requests in progress. */
  async close(): Promise<void> {
    this.draining = true;
    this.tls?.stop();
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
      // Once no request is being handled, what is left (bodies being discarded) is closed.
      if (this.inflight === 0) this.server.closeAllConnections();
      else this.idle = () => this.server.closeAllConnections();
    });
    await this.json.close();
  }

  /** Requests arriving from now on get 503 (used when shutdown starts, before close()). */
  beginDrain(): void {
    this.draining = true;
  }

  /**
   * Handles an OTLP request that arrived on another server of this process (MLflow's
   * /v1/traces on the admin port): the same checks, limits, memory budget and answers as on the
   * receiver's own port, without a hop over the network, so it works whatever TLS and client
   * certificates the receiver's port requires. Resolves once answered.
   */
  serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    return this.onRequest(req, res, false);
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse, expectContinue: boolean): Promise<void> {
    this.inflight++;
    const x: Exchange = { req, res, reader: new BodyReader(), continued: !expectContinue, timer: undefined, discarding: false };
    x.timer = setTimeout(() => this.onRequestTimeout(x), this.opts.requestTimeoutMs);
    x.timer.unref();
    return this.handle(x).finally(() => {
      this.inflight--;
      if (this.inflight === 0) this.idle?.();
    });
  }

  /** requestTimeoutMs after the headers: a body still arriving is refused, a discarded one cut off. */
  private onRequestTimeout(x: Exchange): void {
    x.timer = undefined;
    if (x.req.complete) return;
    if (x.discarding) {
      // Answered already; the rest of its body did not come in time either.
      this.conns.closed('request_timeout');
      x.req.socket.destroy();
      return;
    }
    x.reader.abort(
      new ScorecarError(
        'REQUEST_TIMEOUT',
        `request body not received in full within ${this.opts.requestTimeoutMs} ms (${x.reader.received} bytes received)`,
      ),
    );
  }

  private stopTimer(x: Exchange): void {
    if (x.timer !== undefined) clearTimeout(x.timer);
    x.timer = undefined;
  }

  private async handle(x: Exchange): Promise<void> {
    const { req, res } = x;
    const path = (req.url ?? '').split('?')[0]!;
    const signal = PATHS[path];
    let format: Format = 'json';
    const hold = this.budget.hold();
    let turn: { prev: Promise<void> | undefined; done: () => void } | undefined;
    try {
      if (!signal) throw new ScorecarError('NOT_FOUND', `no such path ${path}; OTLP paths are /v1/traces, /v1/logs, /v1/metrics`);
      if (req.method !== 'POST') {
        res.setHeader('Allow', 'POST');
        throw new ScorecarError('METHOD_NOT_ALLOWED', `method ${req.method} not allowed; use POST`);
      }
      const ct = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (ct === 'application/x-protobuf' || ct === 'application/protobuf') format = 'protobuf';
      else if (ct !== 'application/json') {
        throw new ScorecarError('UNSUPPORTED_MEDIA_TYPE', `unsupported content-type '${ct}'; use application/x-protobuf or application/json`);
      } else turn = this.takeTurn(req.socket.remoteAddress ?? '');
      const encoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
      if (!ENCODINGS.includes(encoding)) {
        throw new ScorecarError('UNSUPPORTED_MEDIA_TYPE', `unsupported content-encoding '${encoding}'; use gzip, deflate, zstd or none`);
      }
      if (this.draining) {
        throw new ScorecarError('SHUTTING_DOWN', 'scorecar is shutting down');
      }
      const limit = this.opts.maxRequestBodyBytes;
      const declared = Number(req.headers['content-length'] ?? Number.NaN);
      if (declared > limit) {
        throw new ScorecarError('PAYLOAD_TOO_LARGE', `request body of ${declared} bytes exceeds the limit of ${limit} bytes`);
      }
      const ctx = { transport: 'http' as const, experimentHeader: headerValue(req.headers['x-mlflow-experiment-id']) };
      // Admission: checks only, nothing is reserved until bytes arrive.
      if (Number.isFinite(declared)) this.ingest.precheck(signal, declared, ctx);
      if (!this.budget.fits(Number.isFinite(declared) ? declared : 1)) {
        throw new ScorecarError('MEMORY_BUDGET_FULL', 'memory budget is full; retry later');
      }
      if (!x.continued) {
        res.writeContinue();
        x.continued = true;
      }
      const { pieces, size } = await x.reader.read(req, {
        encoding,
        limit,
        declared: Number.isFinite(declared) ? declared : -1,
        hold,
      });
      this.stopTimer(x);
      // Protobuf is scanned and forwarded in the pieces it arrived (or inflated) in; JSON
      // conversion needs it whole, and a large body is converted on a worker thread (moved
      // there as a copy of its own), so it never holds up other senders.
      let body: Body = pieces;
      if (format === 'json') {
        if (size === 0) throw new ScorecarError('INVALID_ARGUMENT', 'empty body is not valid OTLP/JSON; send {} for an empty request');
        const raw = join(pieces, size, size > INLINE_JSON_BYTES);
        if (raw !== pieces[0]) hold.add(size);
        pieces.length = 0;
        body = await this.json.convert(signal, raw);
        hold.add(body.length);
        if (turn?.prev) await turn.prev;
      }
      const outcome = this.ingest.handle(signal, body, ctx);
      this.counters.outcome(signal, 'http', outcome.rejected > 0 ? 'partial' : 'ok');
      this.respondOk(res, signal, format, outcome);
    } catch (e) {
      const err = receiverStatus(e);
      // A bug of ours: logged with its stack, answered retryable so the sender keeps its data.
      if (err.code === 'UNEXPECTED') this.log.error('OTLP/HTTP request failed unexpectedly', { err: e });
      this.counters.outcome(signal ?? 'unknown', 'http', String(err.http));
      if (err.retryHint) this.counters.refusedRetryable(signal ?? 'unknown', 'http', err.code);
      this.respondError(x, format, err);
    } finally {
      turn?.done();
      hold.release();
      if (req.complete) this.stopTimer(x);
    }
  }

  /** This JSON request's place after the client's earlier ones; done() when it is handed on or refused. */
  private takeTurn(client: string): { prev: Promise<void> | undefined; done: () => void } {
    const prev = this.jsonTurns.get(client);
    let done!: () => void;
    const handed = new Promise<void>((resolve) => {
      done = resolve;
    });
    // The next request's turn comes when this one and every earlier one are through.
    const mine = prev ? Promise.all([prev, handed]).then(() => undefined) : handed;
    this.jsonTurns.set(client, mine);
    void mine.then(() => {
      if (this.jsonTurns.get(client) === mine) this.jsonTurns.delete(client);
    });
    return { prev, done };
  }

  private respondOk(res: http.ServerResponse, signal: Signal, format: Format, outcome: IngestOutcome): void {
    const partial =
      outcome.rejected > 0 ? { [REJECTED_FIELD[signal]]: outcome.rejected, errorMessage: outcome.errorMessage } : undefined;
    if (format === 'json') {
      const body = JSON.stringify(
        partial ? { partialSuccess: { ...partial, [REJECTED_FIELD[signal]]: String(outcome.rejected) } } : {},
      );
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    let body: Uint8Array = new Uint8Array(0);
    if (partial) {
      const t = otlpType(RESPONSE_TYPE[signal]);
      body = t.encode(t.create({ partialSuccess: partial })).finish();
    }
    res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': body.length });
    res.end(body);
  }

  private respondError(x: Exchange, format: Format, err: ReturnType<typeof receiverStatus>): void {
    const { req, res } = x;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const headers: Record<string, string | number> = {};
    const retryAfter = err.retryHint ? this.opts.retryAfterSeconds : undefined;
    if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
    const delay = retryAfter === undefined ? undefined : retryAfter * 1000;
    let body: Buffer;
    if (format === 'protobuf') {
      body = encodeRpcStatus(err.grpc, err.message, delay);
      headers['content-type'] = 'application/x-protobuf';
    } else {
      body = Buffer.from(rpcStatusJson(err.grpc, err.message, delay));
      headers['content-type'] = 'application/json';
    }
    headers['content-length'] = body.length;
    let discarding = false;
    if (!req.complete) {
      if (!x.continued) {
        // Expect: 100-continue refused before its body was asked for: the client sends none.
        headers.connection = 'close';
      } else if (err.code === 'REQUEST_TIMEOUT') {
        this.conns.closed('request_timeout');
        headers.connection = 'close';
      } else {
        // Refused before the body was read in full: the answer goes out now, and the rest of the
        // body is read and discarded so the sender gets to read it (closing a connection the
        // sender is still writing to resets it, and the answer is lost with it). A body too large
        // to be worth reading is answered with Connection: close instead.
        const declared = Number(req.headers['content-length'] ?? Number.NaN);
        if (Number.isFinite(declared) && declared - x.reader.received > this.discardLimit) headers.connection = 'close';
        else discarding = true;
      }
    }
    if (discarding) this.discard(x);
    else this.stopTimer(x);
    res.writeHead(err.http, headers);
    res.end(body);
  }

  /** Reads the rest of a refused request's body into nothing, up to discardLimit bytes. */
  private discard(x: Exchange): void {
    const { req } = x;
    x.discarding = true;
    let discarded = 0;
    const onData = (c: Buffer): void => {
      discarded += c.length;
      if (discarded > this.discardLimit) {
        req.off('data', onData);
        this.conns.closed('discard_limit');
        req.socket.destroy();
      }
    };
    req.on('data', onData);
    req.once('end', () => this.stopTimer(x));
    req.once('close', () => this.stopTimer(x));
    req.resume();
  }
}

function headerValue(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s === '' ? undefined : s;
}
