// What happens to an accepted OTLP request, whatever transport brought it: validate the
// framing, forward the bytes downstream first, then hand trace spans to the assembler. Logs and
// metrics are only forwarded. Errors are ScorecarErrors the receivers map to their status codes.
//
// A body may come as the pieces it arrived in (HTTP hands the body over in socket-read sized
// chunks, each its own allocation). Those pieces are kept and forwarded as they are; only for the
// scan are they copied into a scratch buffer that is reused from request to request. Copying each
// body into a fresh buffer of its own instead costs more than the scan itself: the copy lands in
// cold memory, and every such buffer is external memory that makes V8 run full collections.
import type { Logger } from '../util/log.ts';
import { ScorecarError } from '../util/errors.ts';
import type { MetricsRegistry } from '../util/metrics.ts';
import type { OtlpForwarder } from './exporter.ts';
import type { Signal } from './json.ts';
import { withoutRejected } from './parts.ts';
import { LOG_RECORD_PATH, METRIC_PATH, type ScanResult, scanEnvelope, scanTraceRequest } from './wire.ts';

export interface IngestContext {
  transport: 'grpc' | 'http';
  /** Value of the x-mlflow-experiment-id request header / metadata. */
  experimentHeader: string | undefined;
}

export interface IngestOutcome {
  accepted: number;
  rejected: number;
  errorMessage: string;
}

/**
 * Receives the valid spans of a request, after forwarding. `buf` is what was scanned; when
 * `scan.home` is set, `buf` is a transient copy valid only during the call, and spans that are
 * kept must be kept from the `scan.home` buffers (the assembler does).
 */
export type SpanSink = (buf: Buffer, scan: ScanResult, experimentHeader: string | undefined) => void;

/** A request body: one buffer, or the buffers it arrived in, in order. */
export type Body = Buffer | readonly Buffer[];

/** Scratch buffers above this size are not kept between requests. */
const SCRATCH_KEEP_BYTES = 8 * 1024 * 1024;

/** Whether b is a small window on a larger allocation (a socket read buffer, an HTTP/2 frame). */
function isWindow(b: Buffer): boolean {
  return b.byteLength * 2 < b.buffer.byteLength;
}

function ownCopy(b: Buffer): Buffer {
  // (Buffer.from would copy small buffers into the shared 8 KiB pool: a window again.)
  const own = Buffer.allocUnsafeSlow(b.byteLength);
  b.copy(own);
  return own;
}

export class OtlpIngest {
  private readonly forwarder: OtlpForwarder;
  private readonly sink: SpanSink | undefined;
  private readonly log: Logger;
  private readonly m;
  private readonly refuseWhenFull: boolean;
  private scratch: Buffer = Buffer.allocUnsafeSlow(0);

  constructor(opts: {
    forwarder: OtlpForwarder;
    sink?: SpanSink;
    metrics: MetricsRegistry;
    log: Logger;
    refuseWhenQueueFull: boolean;
  }) {
    this.forwarder = opts.forwarder;
    this.sink = opts.sink;
    this.log = opts.log;
    this.refuseWhenFull = opts.refuseWhenQueueFull;
    const metrics = opts.metrics;
    this.m = {
      accepted: metrics.counter('scorecar_receiver_accepted_items_total', 'Items (spans, log records, metrics) accepted', ['signal', 'transport']),
      rejected: metrics.counter('scorecar_receiver_rejected_items_total', 'Items refused through partial_success (e.g. spans without valid ids)', ['signal', 'transport']),
      refused: metrics.counter('scorecar_receiver_refused_items_total', 'Items of whole requests refused with a retryable status (the sender keeps them)', ['signal', 'transport', 'reason']),
    };
  }

  private forward(signal: Signal, body: Body, items: number, ctx: IngestContext): void {
    if (!this.forwarder.enabled || items === 0) return;
    const r = this.forwarder.enqueue(signal, body, items);
    if (r === 'full' && this.refuseWhenFull) {
      this.m.refused.inc({ signal, transport: ctx.transport, reason: 'export_queue_full' }, items);
      throw new ScorecarError('QUEUE_FULL', 'the downstream export queue is full; retry later', { retryable: true });
    }
  }

  /**
   * Whether a request of about this many bytes can be taken now: checked before its body is
   * read, so a full export queue refuses senders without first paying to receive their data.
   */
  precheck(signal: Signal, bytes: number, ctx: IngestContext): void {
    if (this.refuseWhenFull && this.forwarder.enabled && !this.forwarder.hasRoom(bytes)) {
      this.m.refused.inc({ signal, transport: ctx.transport, reason: 'export_queue_full' }, 0);
      throw new ScorecarError('QUEUE_FULL', 'the downstream export queue is full; retry later', { retryable: true });
    }
  }

  /**
   * The body as one buffer to scan, and the buffers to keep and forward: a single piece is both;
   * several are joined into the reused scratch buffer (valid until the next request).
   */
  private prepare(body: Body): { scan: Buffer; keep: readonly Buffer[] | undefined } {
    if (Buffer.isBuffer(body)) return { scan: body, keep: undefined };
    if (body.length === 1) return { scan: body[0]!, keep: undefined };
    let total = 0;
    for (const p of body) total += p.length;
    let scratch = this.scratch;
    if (scratch.length < total) {
      scratch = Buffer.allocUnsafeSlow(Math.max(total, Math.min(2 * scratch.length, SCRATCH_KEEP_BYTES)));
      if (scratch.length <= SCRATCH_KEEP_BYTES) this.scratch = scratch;
    }
    let at = 0;
    for (const p of body) {
      scratch.set(p, at);
      at += p.length;
    }
    const keep = body.some(isWindow) ? body.map((p) => (isWindow(p) ? ownCopy(p) : p)) : body;
    return { scan: scratch.subarray(0, total), keep };
  }

  traces(body: Body, ctx: IngestContext): IngestOutcome {
    const { scan: buf, keep } = this.prepare(body);
    const scan = scanTraceRequest(buf);
    const accepted = scan.spanCount - scan.rejected;
    // Partly refused: the valid spans are re-framed into a new buffer of their own.
    const forwardBody: Body = scan.rejected > 0 && accepted > 0 ? withoutRejected(buf, scan) : (keep ?? buf);
    this.forward('traces', forwardBody, accepted, ctx);
    this.m.accepted.inc({ signal: 'traces', transport: ctx.transport }, accepted);
    if (scan.rejected > 0) {
      this.m.rejected.inc({ signal: 'traces', transport: ctx.transport }, scan.rejected);
      this.log.debug('refused spans without valid ids', { rejected: scan.rejected });
    }
    if (this.sink && accepted > 0) {
      // The assembler keeps spans where they arrived. A body that is a small window on a larger
      // allocation is copied so it does not pin the rest; offsets stay valid either way.
      if (keep !== undefined) {
        scan.home = keep;
        this.sink(buf, scan, ctx.experimentHeader);
      } else this.sink(isWindow(buf) ? ownCopy(buf) : buf, scan, ctx.experimentHeader);
    }
    return {
      accepted,
      rejected: scan.rejected,
      errorMessage: scan.rejected > 0 ? `${scan.rejected} span(s) refused: ${scan.rejectReason}` : '',
    };
  }

  logs(body: Body, ctx: IngestContext): IngestOutcome {
    const { scan: buf, keep } = this.prepare(body);
    const n = scanEnvelope(buf, LOG_RECORD_PATH);
    this.forward('logs', keep ?? buf, n, ctx);
    this.m.accepted.inc({ signal: 'logs', transport: ctx.transport }, n);
    return { accepted: n, rejected: 0, errorMessage: '' };
  }

  metrics(body: Body, ctx: IngestContext): IngestOutcome {
    const { scan: buf, keep } = this.prepare(body);
    const n = scanEnvelope(buf, METRIC_PATH);
    this.forward('metrics', keep ?? buf, n, ctx);
    this.m.accepted.inc({ signal: 'metrics', transport: ctx.transport }, n);
    return { accepted: n, rejected: 0, errorMessage: '' };
  }

  handle(signal: Signal, body: Body, ctx: IngestContext): IngestOutcome {
    return signal === 'traces' ? this.traces(body, ctx) : signal === 'logs' ? this.logs(body, ctx) : this.metrics(body, ctx);
  }
}
