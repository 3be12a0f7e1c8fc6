// Downstream OTLP exporter ("forwarder"): a byte-bounded queue of received requests, a few
// workers that send them as they came (protobuf bytes, never re-encoded), retries with backoff
// and jitter that honour Retry-After / RetryInfo, no retry on permanent errors, and a count for
// every item that does not make it. Queued requests of one signal are sent as one concatenated
// request: concatenating encoded Export*ServiceRequest messages is a valid protobuf merge of
// their repeated resource_* fields, so batching keeps every byte of every span. Over HTTP the
// parts are written one after the other (one writev), never copied into a joined buffer: at
// hundreds of MB/s that copy, and the fresh memory it needs, cost more than the scan. A merged
// request the downstream refuses for its content is split until the refused request is alone
// (deliver), so one sender's bad request never costs another sender's data.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import type { Component, Consumer } from '../component/index.ts';
import type { ExporterConfig } from '../config/index.ts';
import { errorFields, type Logger, type MetricsRegistry, parseRetryAfter, ScorecarError } from '../util/index.ts';
import {
  type Body,
  grpcRetryable,
  httpRetryable,
  type OtlpBatch,
  otlpType,
  retryDelayFromStatus,
  type Signal,
  TYPE,
} from '../wire/index.ts';
import { backoffMs, sleep } from './retry.ts';
import { DiskSpool, type SpoolRecord, spoolBytesIn } from './spool.ts';

const gzipAsync = promisify(gzip);

/** Upper bound of one concatenated downstream request. */
const MAX_BATCH_BYTES = 2 * 1024 * 1024;

export type SendOutcome =
  | { ok: true; rejected: number; message: string }
  | {
      ok: false;
      retryable: boolean;
      retryAfterMs: number | undefined;
      message: string;
      /**
       * The downstream refused the request for its content or size (HTTP 400/413, gRPC
       * INVALID_ARGUMENT / RESOURCE_EXHAUSTED without RetryInfo): a part of it may still pass.
       */
      split?: boolean;
    };

/** HTTP statuses that refuse a request for what it holds, not for who sent it or where. */
const SPLIT_HTTP = new Set([400, 413]);

export interface Transport {
  readonly kind: 'http' | 'grpc';
  /** Sends one request whose body is the concatenation of `parts` (never modified). */
  send(signal: Signal, parts: readonly Buffer[], timeoutMs: number): Promise<SendOutcome>;
  close(): void;
}

const RESPONSE_TYPE: Record<Signal, string> = {
  traces: TYPE.traceResponse,
  logs: TYPE.logsResponse,
  metrics: TYPE.metricsResponse,
};

function partialSuccess(signal: Signal, body: Buffer): { rejected: number; message: string } {
  if (body.length === 0) return { rejected: 0, message: '' };
  try {
    const m = otlpType(RESPONSE_TYPE[signal]).decode(body) as unknown as {
      partialSuccess?: Record<string, unknown>;
    };
    const ps = m.partialSuccess;
    if (!ps) return { rejected: 0, message: '' };
    const field = ps.rejectedSpans ?? ps.rejectedLogRecords ?? ps.rejectedDataPoints ?? 0;
    const rejected = typeof field === 'number' ? field : Number(String(field));
    return { rejected, message: String(ps.errorMessage ?? '') };
  } catch {
    return { rejected: 0, message: '' };
  }
}

function readTls(cfg: ExporterConfig['tls']): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
  return {
    ...(cfg.caFile ? { ca: readFileSync(cfg.caFile) } : {}),
    ...(cfg.certFile ? { cert: readFileSync(cfg.certFile) } : {}),
    ...(cfg.keyFile ? { key: readFileSync(cfg.keyFile) } : {}),
  };
}

export class HttpTransport implements Transport {
  readonly kind = 'http' as const;
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly cfg: ExporterConfig;
  private readonly mod: typeof http | typeof https;

  constructor(cfg: ExporterConfig) {
    this.cfg = cfg;
    this.base = new URL(cfg.endpoint);
    const secure = this.base.protocol === 'https:';
    this.mod = secure ? https : http;
    this.agent = secure
      ? new https.Agent({
          keepAlive: true,
          maxSockets: cfg.queue.concurrency,
          rejectUnauthorized: !cfg.tls.insecureSkipVerify,
          ...readTls(cfg.tls),
        })
      : new http.Agent({ keepAlive: true, maxSockets: cfg.queue.concurrency });
  }

  private path(signal: Signal): string {
    const p = this.base.pathname.replace(/\/+$/, '');
    return `${p}/v1/${signal}`;
  }

  async send(signal: Signal, parts: readonly Buffer[], timeoutMs: number): Promise<SendOutcome> {
    let payload = parts;
    const headers: Record<string, string> = {
      ...this.cfg.headers,
      'content-type': 'application/x-protobuf',
    };
    if (this.cfg.compression === 'gzip') {
      payload = [await gzipAsync(parts.length === 1 ? parts[0]! : Buffer.concat(parts))];
      headers['content-encoding'] = 'gzip';
    }
    let length = 0;
    for (const p of payload) length += p.length;
    headers['content-length'] = String(length);
    return new Promise<SendOutcome>((resolve) => {
      const req = this.mod.request(
        {
          protocol: this.base.protocol,
          hostname: this.base.hostname,
          port: this.base.port,
          path: this.path(signal),
          method: 'POST',
          headers,
          agent: this.agent,
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) => resolve({ ok: false, retryable: true, retryAfterMs: undefined, message: e.message }));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const resBody = Buffer.concat(chunks);
            if (status >= 200 && status < 300) {
              const ct = String(res.headers['content-type'] ?? '');
              resolve({ ok: true, ...(ct.includes('protobuf') ? partialSuccess(signal, resBody) : { rejected: 0, message: '' }) });
              return;
            }
            resolve({
              ok: false,
              retryable: httpRetryable(status),
              retryAfterMs: parseRetryAfter(res.headers['retry-after']),
              message: `HTTP ${status} from ${this.base.host}`,
              split: SPLIT_HTTP.has(status),
            });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
      req.on('error', (e) => resolve({ ok: false, retryable: true, retryAfterMs: undefined, message: e.message }));
      // Corked, the headers and every part leave in one writev.
      req.cork();
      for (let i = 0; i < payload.length - 1; i++) req.write(payload[i]!);
      req.end(payload[payload.length - 1]);
    });
  }

  /** Destroys the agent's sockets, in use or idle: requests in flight fail (retryable). */
  close(): void {
    this.agent.destroy();
  }
}

const identity = (b: Buffer): Buffer => b;

export class GrpcTransport implements Transport {
  readonly kind = 'grpc' as const;
  private readonly client: grpc.Client;
  private readonly inFlight = new Set<grpc.ClientUnaryCall>();
  private readonly cfg: ExporterConfig;

  constructor(cfg: ExporterConfig) {
    this.cfg = cfg;
    const url = new URL(cfg.endpoint);
    const target = `${url.hostname.includes(':') ? `[${url.hostname}]` : url.hostname}:${url.port || (url.protocol === 'grpcs:' ? 443 : 4317)}`;
    let creds: grpc.ChannelCredentials;
    if (url.protocol === 'grpcs:') {
      const t = readTls(cfg.tls);
      creds = grpc.credentials.createSsl(
        t.ca ?? null,
        t.key ?? null,
        t.cert ?? null,
        cfg.tls.insecureSkipVerify ? { checkServerIdentity: () => undefined } : {},
      );
    } else creds = grpc.credentials.createInsecure();
    this.client = new grpc.Client(target, creds, {
      'grpc.max_send_message_length': -1,
      'grpc.max_receive_message_length': 4 * 1024 * 1024,
      ...(cfg.compression === 'gzip' ? { 'grpc.default_compression_algorithm': 2 } : {}),
    });
  }

  send(signal: Signal, parts: readonly Buffer[], timeoutMs: number): Promise<SendOutcome> {
    // grpc-js frames one message from one buffer.
    const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    const svc = signal === 'traces' ? 'trace' : signal;
    const Svc = signal === 'traces' ? 'Trace' : signal === 'logs' ? 'Logs' : 'Metrics';
    const path = `/opentelemetry.proto.collector.${svc}.v1.${Svc}Service/Export`;
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(this.cfg.headers)) md.set(k.toLowerCase(), v);
    return new Promise<SendOutcome>((resolve) => {
      const call = this.client.makeUnaryRequest(
        path,
        identity,
        identity,
        body,
        md,
        { deadline: Date.now() + timeoutMs },
        (err, res) => {
          this.inFlight.delete(call);
          if (!err) {
            resolve({ ok: true, ...partialSuccess(signal, res ?? Buffer.alloc(0)) });
            return;
          }
          const details = err.metadata?.get('grpc-status-details-bin')[0];
          const hint = details instanceof Buffer ? retryDelayFromStatus(details) : undefined;
          const retryable = grpcRetryable(err.code, hint !== undefined);
          resolve({
            ok: false,
            retryable,
            retryAfterMs: hint,
            message: `gRPC ${grpc.status[err.code] ?? err.code}: ${err.details}`,
            split: !retryable && (err.code === grpc.status.INVALID_ARGUMENT || err.code === grpc.status.RESOURCE_EXHAUSTED),
          });
        },
      );
      this.inFlight.add(call);
    });
  }

  /** Cancels calls in flight (they fail as CANCELLED, retryable) and closes the channel. */
  close(): void {
    for (const c of this.inFlight) c.cancel();
    this.inFlight.clear();
    this.client.close();
  }
}

export function createTransport(cfg: ExporterConfig): Transport | undefined {
  if (cfg.endpoint === '') return undefined;
  return cfg.endpoint.startsWith('grpc') ? new GrpcTransport(cfg) : new HttpTransport(cfg);
}

interface Item {
  signal: Signal;
  /** The request body: one buffer, or the pieces it arrived in (sent back to back). */
  parts: readonly Buffer[];
  bytes: number;
  items: number;
  /** Its items have left flight (sent, dropped or back in the queue): set once. */
  done: boolean;
  /** Where it is in the disk spool (storage: disk). */
  record: SpoolRecord | undefined;
}

export interface ForwarderOptions {
  /** storage.dir: the disk spool (queue.storage: disk) lives in its export-queue folder. */
  storageDir?: string;
}

export type EnqueueResult = 'queued' | 'full' | 'disabled';

const perSignal = (): Record<Signal, number> => ({ traces: 0, logs: 0, metrics: 0 });
const SIGNALS: readonly Signal[] = ['traces', 'logs', 'metrics'];

/**
 * The forwarder: owns the queue, its workers and their accounting. As a stage it consumes every
 * received request (consume refuses with QUEUE_FULL when the queue is full and whenFull is
 * refuse); the emitter queues assessments through enqueue().
 *
 * Accounting: every item taken on is, at any moment, in exactly one of queued (waiting),
 * in flight (in a downstream request being sent or waiting to be retried), sent or dropped
 * (with a reason), and moves between them in one synchronous step. So per signal, at every
 * scrape, `scorecar_receiver_accepted_items_total` (the receivers', plus transport="internal"
 * for the emitter's assessment items, counted here) = sent + dropped + queue_items +
 * inflight_items. Requests replayed from the disk spool at start count as accepted with
 * transport="spool" (their first acceptance was counted by the process that took them).
 *
 * With queue.storage disk, every request is also written to the spool (spool.ts) before it is
 * acknowledged, and settled records (sent, or dropped for good) are marked there; bodies stay in
 * memory as well, so the spool costs writes, never reads, while running.
 */
export class OtlpForwarder implements Consumer<OtlpBatch>, Component {
  private readonly cfg: ExporterConfig;
  private readonly transport: Transport | undefined;
  private readonly log: Logger;
  /** Items from head on; slots before head are cleared (undefined). */
  private queue: Array<Item | undefined> = [];
  private head = 0;
  private bytesQueued = 0;
  private readonly queuedItems = perSignal();
  private inFlightBytes = 0;
  private readonly inFlightItems = perSignal();
  private wake: (() => void) | undefined;
  private running = false;
  private accepting = true;
  private readonly workers: Promise<void>[] = [];
  private readonly abort = new AbortController();
  private stopping: Promise<void> | undefined;
  private readonly spool: DiskSpool | undefined;
  private spoolFailing = false;
  /** Items left in the spool at shutdown. */
  private kept = 0;
  private readonly m;

  constructor(cfg: ExporterConfig, metrics: MetricsRegistry, log: Logger, transport?: Transport, opts: ForwarderOptions = {}) {
    this.cfg = cfg;
    this.transport = transport ?? createTransport(cfg);
    this.log = log;
    this.m = {
      // The receivers' family: the emitter's items are counted here with transport="internal".
      accepted: metrics.counter('scorecar_receiver_accepted_items_total', 'Items (spans, log records, metrics) accepted', ['signal', 'transport']),
      sent: metrics.counter('scorecar_exporter_sent_items_total', 'Items (spans, log records, metrics) delivered downstream', ['signal']),
      dropped: metrics.counter('scorecar_exporter_dropped_items_total', 'Items that will never reach downstream, by reason', ['signal', 'reason']),
      rejected: metrics.counter('scorecar_exporter_downstream_rejected_items_total', 'Items the downstream refused through partial_success (also in dropped, reason partial_success)', ['signal']),
      retries: metrics.counter('scorecar_exporter_retries_total', 'Downstream send attempts that were retried', ['signal']),
      requests: metrics.counter('scorecar_exporter_requests_total', 'Downstream requests by outcome', ['signal', 'outcome']),
      splits: metrics.counter('scorecar_exporter_batch_splits_total', 'Merged downstream requests refused permanently and re-sent in two halves', ['signal']),
      spoolErrors: metrics.counter('scorecar_exporter_spool_write_errors_total', 'Requests that could not be written to the disk spool (refused, or dropped with reason spool_error)'),
    };
    const bySignal = (counts: Record<Signal, number>) => (): Array<[Record<string, string>, number]> =>
      SIGNALS.map((signal) => [{ signal }, counts[signal]]);
    metrics.gauge('scorecar_exporter_queue_bytes', 'Bytes waiting in or being sent from the export queue', [], () => this.queuedBytes());
    metrics.gauge(
      'scorecar_exporter_queue_items',
      'Items waiting in the export queue, not yet taken by a sender (those being sent or retried: scorecar_exporter_inflight_items)',
      ['signal'],
      bySignal(this.queuedItems),
    );
    metrics.gauge(
      'scorecar_exporter_inflight_items',
      'Items taken from the export queue whose downstream request is being sent or waits to be retried',
      ['signal'],
      bySignal(this.inFlightItems),
    );
    if (cfg.queue.storage === 'disk') {
      if (opts.storageDir === undefined) throw new Error('exporters.otlp.queue.storage: disk needs storage.dir');
      const dir = join(opts.storageDir, 'export-queue');
      if (this.transport === undefined) {
        const left = spoolBytesIn(dir);
        if (left > 0) log.warn('export spool holds requests but no downstream is configured; they are kept for when one is', { dir, bytes: left });
      } else {
        const { spool, replay } = DiskSpool.open({ dir, maxBytes: cfg.queue.maxBytes, fsync: cfg.queue.fsync, fsyncIntervalMs: cfg.queue.fsyncIntervalMs, log });
        this.spool = spool;
        for (const r of replay) {
          this.queue.push({ signal: r.signal, parts: [r.body], bytes: r.body.length, items: r.items, done: false, record: r.record });
          this.bytesQueued += r.body.length;
          this.queuedItems[r.signal] += r.items;
          this.m.accepted.inc({ signal: r.signal, transport: 'spool' }, r.items);
        }
        metrics.gauge('scorecar_exporter_spool_bytes', 'Bytes of the disk spool segments (queue.storage: disk)', [], () => this.spool?.bytes ?? 0);
      }
    }
  }

  get enabled(): boolean {
    return this.transport !== undefined;
  }

  /** Queues a received request to be sent on as it came (the receivers count it accepted). */
  consume(batch: OtlpBatch): void {
    if (this.transport === undefined) return;
    const result = this.add(batch.signal, batch.body, batch.items);
    if (result !== 'queued' && this.refuses) {
      throw new ScorecarError(
        'QUEUE_FULL',
        result === 'spool_error' ? 'the downstream export queue cannot be written to disk; retry later' : 'the downstream export queue is full; retry later',
      );
    }
  }

  /** Refuses a request of this size before its body is read, when it could not be queued. */
  precheck(_signal: Signal, bytes: number): void {
    if (this.refuses && this.transport !== undefined && !this.hasRoom(bytes)) {
      throw new ScorecarError('QUEUE_FULL', 'the downstream export queue is full; retry later');
    }
  }

  private get refuses(): boolean {
    return this.cfg.queue.whenFull === 'refuse' && this.accepting;
  }

  /** Bytes held by the queue, including batches being sent. */
  queuedBytes(): number {
    return this.bytesQueued + this.inFlightBytes;
  }

  /** Whether a request of this size fits in the queue now (and in its disk spool). */
  hasRoom(bytes: number): boolean {
    if (this.transport === undefined) return true;
    return this.bytesQueued + this.inFlightBytes + bytes <= this.cfg.queue.maxBytes && (this.spool === undefined || this.spool.hasRoom(bytes));
  }

  /**
   * Queues a request body from inside scorecar (the emitter's assessments; one buffer or its
   * pieces in order; the buffers must not change). What is queued, or dropped and counted, is
   * counted accepted with transport="internal", as a receiver counts what it takes; what is
   * refused ('full' while whenFull is refuse) is not, and stays the caller's to count.
   */
  enqueue(signal: Signal, body: Body, items: number): EnqueueResult {
    if (!this.transport) return 'disabled';
    const result = this.add(signal, body, items);
    if (result === 'queued' || !this.refuses) this.m.accepted.inc({ signal, transport: 'internal' }, items);
    return result === 'queued' ? 'queued' : 'full';
  }

  /**
   * Queues a request (written to the disk spool first, with storage disk), or says why not:
   * what is not queued is counted dropped with that reason when whenFull is drop or scorecar is
   * stopping, else left to the caller (refused).
   */
  private add(signal: Signal, body: Body, items: number): 'queued' | 'shutdown' | 'queue_full' | 'spool_error' {
    const parts = Buffer.isBuffer(body) ? [body] : body;
    let bytes = 0;
    for (const p of parts) bytes += p.length;
    let reason: 'shutdown' | 'queue_full' | 'spool_error' | undefined = !this.accepting ? 'shutdown' : !this.hasRoom(bytes) ? 'queue_full' : undefined;
    let record: SpoolRecord | undefined;
    if (reason === undefined && this.spool !== undefined) {
      try {
        record = this.spool.append(signal, parts, bytes, items);
        if (this.spoolFailing) {
          this.spoolFailing = false;
          this.log.info('export spool: writing again');
        }
      } catch (e) {
        reason = 'spool_error';
        this.m.spoolErrors.inc();
        if (!this.spoolFailing) this.log.error('export spool: cannot write a request; refusing or dropping until it can', { err: errorFields(e) });
        this.spoolFailing = true;
      }
    }
    if (reason !== undefined) {
      if (this.cfg.queue.whenFull === 'drop' || !this.accepting) this.m.dropped.inc({ signal, reason }, items);
      return reason;
    }
    this.queue.push({ signal, parts, bytes, items, done: false, record });
    this.bytesQueued += bytes;
    this.queuedItems[signal] += items;
    const w = this.wake;
    if (w) {
      this.wake = undefined;
      w();
    }
    return 'queued';
  }

  start(): void {
    if (!this.transport || this.running || !this.accepting) return;
    this.running = true;
    for (let i = 0; i < this.cfg.queue.concurrency; i++) this.workers.push(this.work());
  }

  private take(): Item[] | undefined {
    if (this.head >= this.queue.length) return undefined;
    const first = this.queue[this.head]!;
    const batch: Item[] = [first];
    let size = first.bytes;
    let items = first.items;
    // Each taken slot is cleared: the queue array must not keep sent bodies reachable.
    this.queue[this.head++] = undefined;
    while (this.head < this.queue.length) {
      const next = this.queue[this.head]!;
      if (next.signal !== first.signal || size + next.bytes > MAX_BATCH_BYTES) break;
      batch.push(next);
      size += next.bytes;
      items += next.items;
      this.queue[this.head++] = undefined;
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.bytesQueued -= size;
    this.inFlightBytes += size;
    this.queuedItems[first.signal] -= items;
    this.inFlightItems[first.signal] += items;
    return batch;
  }

  /**
   * Takes a batch's items out of flight and returns how many there were (not counted before);
   * with the disk spool, marks their records settled there (they are never sent again).
   */
  private land(batch: readonly Item[]): number {
    let items = 0;
    let bytes = 0;
    let records: SpoolRecord[] | undefined;
    for (const it of batch) {
      if (it.done) continue;
      it.done = true;
      items += it.items;
      bytes += it.bytes;
      if (it.record !== undefined) {
        records ??= [];
        records.push(it.record);
      }
    }
    this.inFlightBytes -= bytes;
    this.inFlightItems[batch[0]!.signal] -= items;
    if (records !== undefined) this.spool?.release(records);
    return items;
  }

  /**
   * Shutdown with the disk spool: the batch's sends are abandoned but its requests stay in the
   * spool for the next start; its items go back to the queue figures (still queued, on disk).
   */
  private keep(batch: readonly Item[]): void {
    let items = 0;
    let bytes = 0;
    for (const it of batch) {
      if (it.done) continue;
      it.done = true;
      items += it.items;
      bytes += it.bytes;
    }
    this.inFlightBytes -= bytes;
    this.inFlightItems[batch[0]!.signal] -= items;
    this.queuedItems[batch[0]!.signal] += items;
    this.kept += items;
  }

  /** The batch's items leave flight as dropped, for this reason. */
  private drop(batch: readonly Item[], reason: string): number {
    const items = this.land(batch);
    this.m.dropped.inc({ signal: batch[0]!.signal, reason }, items);
    return items;
  }

  private async work(): Promise<void> {
    while (this.running || this.head < this.queue.length) {
      const batch = this.take();
      if (!batch) {
        if (!this.running) return;
        await new Promise<void>((r) => {
          const prev = this.wake;
          this.wake = () => {
            prev?.();
            r();
          };
        });
        continue;
      }
      try {
        await this.deliver(batch);
      } catch (e) {
        // A bug of ours: its items must still be accounted for.
        this.log.error('export worker failed; batch dropped', { err: errorFields(e) });
        this.drop(batch, 'internal');
      }
    }
  }

  /**
   * Sends a batch (requests of one signal) as one downstream request, retrying while the failure
   * is retryable. A batch of several requests that the downstream refuses permanently for what it
   * holds (a strict backend answering 400 for one bad span) is split in two and each half
   * delivered on its own, down to single requests: only what the downstream refuses on its own is
   * dropped. Splitting costs nothing while nothing is refused; with k bad requests in a batch of
   * n it costs at most about 2k·log2(n) extra requests.
   */
  private async deliver(batch: Item[]): Promise<void> {
    const signal = batch[0]!.signal;
    const body = batch.length === 1 ? batch[0]!.parts : batch.flatMap((it) => it.parts);
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      if (this.abort.signal.aborted) {
        if (this.spool) this.keep(batch);
        else this.drop(batch, 'shutdown');
        return;
      }
      let outcome: SendOutcome;
      try {
        outcome = await this.transport!.send(signal, body, this.cfg.timeoutMs);
      } catch (e) {
        outcome = { ok: false, retryable: true, retryAfterMs: undefined, message: (e as Error).message };
      }
      if (outcome.ok) {
        this.m.requests.inc({ signal, outcome: 'ok' });
        const items = this.land(batch);
        // partial_success: the downstream took the request but refused some of its items.
        const rejected = Math.min(items, Math.max(0, outcome.rejected || 0));
        this.m.sent.inc({ signal }, items - rejected);
        if (rejected > 0) {
          this.m.dropped.inc({ signal, reason: 'partial_success' }, rejected);
          this.m.rejected.inc({ signal }, rejected);
          this.log.warn('downstream refused part of a request', { signal, rejected, reason: outcome.message });
        }
        return;
      }
      if (!outcome.retryable) {
        this.m.requests.inc({ signal, outcome: 'permanent_error' });
        if (batch.length > 1 && outcome.split) {
          // Requests from different senders were merged: find the ones refused on their own.
          this.m.splits.inc({ signal });
          this.log.debug('downstream refused a merged request; sending its parts separately', { signal, requests: batch.length, reason: outcome.message });
          const half = batch.length >>> 1;
          await this.deliver(batch.slice(0, half));
          await this.deliver(batch.slice(half));
          return;
        }
        const items = this.drop(batch, 'rejected');
        this.log.warn('downstream refused a request permanently; dropped', { signal, items, reason: outcome.message });
        return;
      }
      this.m.requests.inc({ signal, outcome: 'retryable_error' });
      const wait = outcome.retryAfterMs ?? backoffMs(this.cfg.retry, attempt);
      const elapsed = Date.now() - started;
      if (elapsed + wait > this.cfg.retry.maxElapsedMs) {
        const items = this.drop(batch, 'retries_exhausted');
        this.log.warn('downstream unavailable past the retry budget; dropped', { signal, items, reason: outcome.message });
        return;
      }
      this.m.retries.inc({ signal });
      if (attempt === 0) this.log.info('downstream send failed; retrying', { signal, reason: outcome.message, waitMs: wait });
      await sleep(wait, this.abort.signal);
    }
  }

  /**
   * Stops accepting, sends what is queued until the deadline, then abandons the rest: counted as
   * dropped with reason shutdown, or, with the disk spool, left there for the next start.
   */
  shutdown(deadlineMs: number): Promise<void> {
    this.stopping ??= this.stop(deadlineMs);
    return this.stopping;
  }

  private async stop(deadlineMs: number): Promise<void> {
    this.accepting = false;
    this.running = false;
    const w = this.wake;
    this.wake = undefined;
    w?.();
    const all = Promise.all(this.workers);
    const aborted = new Promise<void>((r) => this.abort.signal.addEventListener('abort', () => r(), { once: true }));
    const timer = setTimeout(() => this.abort.abort(), Math.max(0, deadlineMs - Date.now()));
    await Promise.race([all, aborted]);
    clearTimeout(timer);
    if (this.abort.signal.aborted) {
      // Past the deadline, sends still in flight are cut (the transport cancels them), so their
      // workers end now and count their items as dropped (shutdown) instead of holding the stop.
      this.transport?.close();
      await all;
    }
    // Workers exit when the queue is empty or aborted: count what was never taken (or, with the
    // disk spool, leave it there: it stays in the queue figures).
    while (this.head < this.queue.length) {
      const it = this.queue[this.head]!;
      this.queue[this.head++] = undefined;
      if (this.spool) {
        this.kept += it.items;
        continue;
      }
      this.queuedItems[it.signal] -= it.items;
      this.m.dropped.inc({ signal: it.signal, reason: 'shutdown' }, it.items);
    }
    this.bytesQueued = 0;
    this.transport?.close();
    if (this.spool) {
      this.spool.close();
      if (this.kept > 0) this.log.info('export spool: unsent items kept on disk for the next start', { items: this.kept, bytes: this.spool.bytes });
    }
  }
}
