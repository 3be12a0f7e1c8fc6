// OTLP/HTTP receiver: POST /v1/traces, /v1/logs, /v1/metrics with protobuf or JSON bodies,
// gzip/deflate/zstd encoded or not. Statuses follow the OTLP spec and the Go collector: 400 for
// bad payloads, 413 over the size limit (checked after decompression), 415 for unknown content
// types or encodings, 405 for other methods, 429 + Retry-After when the memory budget is full,
// 503 + Retry-After when the export queue is full or the server is shutting down.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import type { Component } from '../component/index.ts';
import { type Logger, type MetricsRegistry, receiverStatus, ScorecarError } from '../util/index.ts';
import { type Body, encodeRpcStatus, jsonToProtobuf, otlpType, rpcStatusJson, type Signal, TYPE } from '../wire/index.ts';
import type { MemoryBudget } from './budget.ts';
import type { IngestOutcome, OtlpIngest } from './ingest.ts';

export interface HttpReceiverOptions {
  endpoint: string;
  maxRequestBodyBytes: number;
  retryAfterSeconds: number;
}

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


function decompress(body: Buffer, encoding: string, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, out: Buffer): void => {
      if (!err) {
        resolve(out);
        return;
      }
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
        reject(new ScorecarError('PAYLOAD_TOO_LARGE', `decompressed body exceeds the limit of ${limit} bytes`));
      } else reject(new ScorecarError('INVALID_ARGUMENT', `cannot decompress ${encoding} body: ${err.message}`));
    };
    const opts = { maxOutputLength: limit };
    if (encoding === 'gzip' || encoding === 'x-gzip') zlib.gunzip(body, opts, done);
    else if (encoding === 'deflate') zlib.inflate(body, opts, done);
    else if (encoding === 'zstd') zlib.zstdDecompress(body, opts, done);
    else reject(new ScorecarError('UNSUPPORTED_MEDIA_TYPE', `unsupported content-encoding '${encoding}'`));
  });
}

function join(pieces: readonly Buffer[], size: number): Buffer {
  return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, size);
}

export class OtlpHttpReceiver implements Component {
  private readonly opts: HttpReceiverOptions;
  private readonly ingest: OtlpIngest;
  private readonly budget: MemoryBudget;
  private readonly log: Logger;
  private readonly server: http.Server;
  private draining = false;
  private inflight = 0;
  private idle: (() => void) | undefined;
  private readonly requests;
  private bound: AddressInfo | undefined;
  private closing: Promise<void> | undefined;

  constructor(opts: HttpReceiverOptions, ingest: OtlpIngest, budget: MemoryBudget, metrics: MetricsRegistry, log: Logger) {
    this.opts = opts;
    this.ingest = ingest;
    this.budget = budget;
    this.log = log;
    this.requests = metrics.counter('scorecar_receiver_requests_total', 'OTLP requests by outcome', ['signal', 'transport', 'outcome']);
    this.server = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 120_000 }, (req, res) => {
      this.inflight++;
      this.handle(req, res).finally(() => {
        this.inflight--;
        if (this.inflight === 0) this.idle?.();
      });
    });
    this.server.on('clientError', (err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
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
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
      if (this.inflight === 0) return;
      this.idle = () => this.server.closeAllConnections();
    });
  }

  /** Requests arriving from now on get 503 (used when shutdown starts, before close()). */
  beginDrain(): void {
    this.draining = true;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0]!;
    const signal = PATHS[path];
    let format: Format = 'json';
    let reserved = 0;
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
      }
      const encoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
      if (!['identity', '', 'gzip', 'x-gzip', 'deflate', 'zstd'].includes(encoding)) {
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
      if (Number.isFinite(declared)) this.ingest.precheck(signal, declared, ctx);
      const initial = Number.isFinite(declared) ? declared : 64 * 1024;
      if (!this.budget.tryReserve(initial)) {
        throw new ScorecarError('MEMORY_BUDGET_FULL', 'memory budget is full; retry later');
      }
      reserved = initial;
      const pieces = await this.readBody(req, limit, Number.isFinite(declared) ? declared : -1);
      let size = 0;
      for (const p of pieces) size += p.length;
      if (size > reserved) {
        this.budget.reserve(size - reserved);
        reserved = size;
      }
      // Uncompressed protobuf is scanned and forwarded in the pieces it arrived in; decompression
      // and JSON conversion need it whole.
      let body: Body = pieces;
      if (encoding !== 'identity' && encoding !== '') {
        const raw = await decompress(join(pieces, size), encoding, limit);
        this.budget.reserve(raw.length);
        reserved += raw.length;
        body = raw;
      }
      if (format === 'json') {
        const raw = Buffer.isBuffer(body) ? body : join(body, size);
        if (raw.length === 0) throw new ScorecarError('INVALID_ARGUMENT', 'empty body is not valid OTLP/JSON; send {} for an empty request');
        body = jsonToProtobuf(signal, raw);
      }
      const outcome = this.ingest.handle(signal, body, ctx);
      this.requests.inc({ signal, transport: 'http', outcome: outcome.rejected > 0 ? 'partial' : 'ok' });
      this.respondOk(res, signal, format, outcome);
    } catch (e) {
      const err = receiverStatus(e);
      // A bug of ours: logged with its stack, answered retryable so the sender keeps its data.
      if (err.code === 'UNEXPECTED') this.log.error('OTLP/HTTP request failed unexpectedly', { err: e });
      this.requests.inc({ signal: signal ?? 'unknown', transport: 'http', outcome: String(err.http) });
      this.respondError(req, res, format, err);
    } finally {
      if (reserved > 0) this.budget.release(reserved);
    }
  }

  /**
   * Reads the body as the chunks the HTTP parser hands over (each one a fresh allocation of its
   * own, never reused by Node), enforcing the size limit and, when there is one, the declared
   * content-length. The chunks are kept as they are: copying them into one buffer here would be
   * the most expensive thing scorecar does per request (see ingest.ts).
   */
  private readBody(req: http.IncomingMessage, limit: number, declared: number): Promise<Buffer[]> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let failed = false;
      const fail = (e: ScorecarError): void => {
        failed = true;
        chunks.length = 0;
        reject(e);
      };
      req.on('data', (c: Buffer) => {
        if (failed) return;
        size += c.length;
        if (size > limit) {
          fail(new ScorecarError('PAYLOAD_TOO_LARGE', `request body exceeds the limit of ${limit} bytes`));
          return;
        }
        if (declared >= 0 && size > declared) {
          // The HTTP parser stops at content-length, so this is a defence, not an expected path.
          fail(new ScorecarError('INVALID_ARGUMENT', `request body is longer than its content-length of ${declared}`));
          return;
        }
        if (c.length > 0) chunks.push(c);
      });
      req.on('end', () => {
        if (failed) return;
        if (declared >= 0 && size !== declared) {
          fail(new ScorecarError('INVALID_ARGUMENT', `request body of ${size} bytes is shorter than its content-length of ${declared}`));
        } else resolve(chunks);
      });
      req.on('error', (e) => {
        if (!failed) reject(new ScorecarError('INVALID_ARGUMENT', `error reading the request body: ${e.message}`));
        failed = true;
      });
      req.on('aborted', () => {
        if (!failed) reject(new ScorecarError('INVALID_ARGUMENT', 'the client aborted the request'));
        failed = true;
      });
    });
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

  private respondError(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    format: Format,
    err: ReturnType<typeof receiverStatus>,
  ): void {
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
    // A body over the size limit is not read to its end: the connection closes after the
    // response. Other early refusals (budget, queue, shutdown) drain the body, so the sender
    // reads a clean status with its retry hint instead of a reset connection.
    if (!req.complete && err.http === 413) headers.connection = 'close';
    res.writeHead(err.http, headers);
    res.end(body);
    if (!req.complete) req.resume();
  }
}

function headerValue(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s === '' ? undefined : s;
}
