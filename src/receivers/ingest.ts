// What happens to an accepted OTLP request, whatever transport brought it: validate its framing
// (partial_success for spans without valid ids; log records are scanned for their trace and span
// ids, never refused), then hand it on as one OtlpBatch to the next stage (the pipeline's
// forward-then-assemble fan-out). A refusal by the next stage is counted here, by reason, and
// rethrown for the receiver to answer with the code's status.
//
// A body may come as the pieces it arrived in (HTTP hands the body over in socket-read sized
// chunks, each its own allocation). Those pieces are kept and forwarded as they are; only for the
// scan are they copied into a scratch buffer that is reused from request to request. Copying each
// body into a fresh buffer of its own instead costs more than the scan itself: the copy lands in
// cold memory, and every such buffer is external memory that makes V8 run full collections.
import type { Consumer } from '../component/index.ts';
import { isScorecarError, type Logger, type MetricsRegistry } from '../util/index.ts';
import {
  type Body,
  type LogScanResult,
  METRIC_PATH,
  type OtlpBatch,
  type ScanResult,
  type Signal,
  scanEnvelope,
  scanLogsRequest,
  scanTraceRequest,
  withoutRejected,
} from '../wire/index.ts';

export interface IngestContext {
  transport: 'grpc' | 'http' | 'kafka';
  /** Value of the x-mlflow-experiment-id request header / metadata. */
  experimentHeader: string | undefined;
}

export interface IngestOutcome {
  accepted: number;
  rejected: number;
  errorMessage: string;
}

/** Asked before a body is read: whether a request of this many bytes could be taken now. */
export interface Precheck {
  /** Throws the refusal (e.g. QUEUE_FULL) without reading the body. */
  precheck(signal: Signal, bytes: number): void;
}

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
  private readonly next: Consumer<OtlpBatch>;
  private readonly precheckers: readonly Precheck[];
  private readonly log: Logger;
  private readonly m;
  private scratch: Buffer = Buffer.allocUnsafeSlow(0);

  constructor(opts: { next: Consumer<OtlpBatch>; precheck?: readonly Precheck[]; metrics: MetricsRegistry; log: Logger }) {
    this.next = opts.next;
    this.precheckers = opts.precheck ?? [];
    this.log = opts.log;
    const metrics = opts.metrics;
    this.m = {
      accepted: metrics.counter('scorecar_receiver_accepted_items_total', 'Items (spans, log records, metrics) accepted', ['signal', 'transport']),
      rejected: metrics.counter('scorecar_receiver_rejected_items_total', 'Items refused through partial_success (e.g. spans without valid ids)', ['signal', 'transport']),
      refused: metrics.counter('scorecar_receiver_refused_items_total', 'Items of whole requests refused with a retryable status (the sender keeps them)', ['signal', 'transport', 'reason']),
    };
  }

  /**
   * Whether a request of about this many bytes can be taken now: checked before its body is
   * read, so a full export queue refuses senders without first paying to receive their data.
   */
  precheck(signal: Signal, bytes: number, ctx: IngestContext): void {
    try {
      for (const p of this.precheckers) p.precheck(signal, bytes);
    } catch (e) {
      this.countRefused(e, signal, ctx, 0);
      throw e;
    }
  }

  private countRefused(e: unknown, signal: Signal, ctx: IngestContext, items: number): void {
    const reason = isScorecarError(e) ? e.code.toLowerCase() : 'internal';
    // The label values of the first release: keep them for dashboards.
    this.m.refused.inc({ signal, transport: ctx.transport, reason: reason === 'queue_full' ? 'export_queue_full' : reason }, items);
  }

  private handOn(batch: OtlpBatch, ctx: IngestContext): void {
    try {
      this.next.consume(batch);
    } catch (e) {
      this.countRefused(e, batch.signal, ctx, batch.items);
      throw e;
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
    const scan: ScanResult = scanTraceRequest(buf);
    const accepted = scan.spanCount - scan.rejected;
    if (accepted > 0) {
      // Partly refused: the valid spans are re-framed into a new buffer of their own.
      const partial = scan.rejected > 0;
      const forward: Body = partial ? withoutRejected(buf, scan) : (keep ?? buf);
      // Spans are kept where they arrived. A body that is a small window on a larger allocation
      // is copied so it does not pin the rest; offsets stay valid either way.
      let scanned = buf;
      if (keep !== undefined) scan.home = keep;
      else if (isWindow(buf)) scanned = ownCopy(buf);
      this.handOn(
        { signal: 'traces', transport: ctx.transport, body: forward, items: accepted, scan, scanned, experimentHeader: ctx.experimentHeader },
        ctx,
      );
    }
    this.m.accepted.inc({ signal: 'traces', transport: ctx.transport }, accepted);
    if (scan.rejected > 0) {
      this.m.rejected.inc({ signal: 'traces', transport: ctx.transport }, scan.rejected);
      this.log.debug('refused spans without valid ids', { rejected: scan.rejected });
    }
    return {
      accepted,
      rejected: scan.rejected,
      errorMessage: scan.rejected > 0 ? `${scan.rejected} span(s) refused: ${scan.rejectReason}` : '',
    };
  }

  /**
   * Log records are scanned like spans (framing validated, each record's range and ids found) so
   * the assembler can join those that carry a trace id to their trace; none is ever refused, and
   * the body is forwarded exactly as received.
   */
  logs(body: Body, ctx: IngestContext): IngestOutcome {
    const { scan: buf, keep } = this.prepare(body);
    const scan: LogScanResult = scanLogsRequest(buf);
    const n = scan.logCount;
    if (n > 0) {
      // As for spans: records are kept where they arrived. Only a request with a record the
      // assembler could keep pays for the copy of a small window.
      let scanned = buf;
      if (keep !== undefined) scan.home = keep;
      else if (scan.withTraceId > 0 && isWindow(buf)) scanned = ownCopy(buf);
      this.handOn(
        { signal: 'logs', transport: ctx.transport, body: keep ?? buf, items: n, logScan: scan, scanned, experimentHeader: ctx.experimentHeader },
        ctx,
      );
    }
    this.m.accepted.inc({ signal: 'logs', transport: ctx.transport }, n);
    return { accepted: n, rejected: 0, errorMessage: '' };
  }

  metrics(body: Body, ctx: IngestContext): IngestOutcome {
    const { scan: buf, keep } = this.prepare(body);
    const n = scanEnvelope(buf, METRIC_PATH);
    if (n > 0) {
      this.handOn({ signal: 'metrics', transport: ctx.transport, body: keep ?? buf, items: n, experimentHeader: ctx.experimentHeader }, ctx);
    }
    this.m.accepted.inc({ signal: 'metrics', transport: ctx.transport }, n);
    return { accepted: n, rejected: 0, errorMessage: '' };
  }

  handle(signal: Signal, body: Body, ctx: IngestContext): IngestOutcome {
    if (signal === 'traces') return this.traces(body, ctx);
    return signal === 'logs' ? this.logs(body, ctx) : this.metrics(body, ctx);
  }
}
