// What happens to an accepted OTLP request, whatever transport brought it: validate the
// framing, forward the bytes downstream first, then hand trace spans to the assembler. Logs and
// metrics are only forwarded. Errors are ScorecarErrors the receivers map to their status codes.
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

/** Receives the valid spans of a request, after forwarding. */
export type SpanSink = (buf: Buffer, scan: ScanResult, experimentHeader: string | undefined) => void;

export class OtlpIngest {
  private readonly forwarder: OtlpForwarder;
  private readonly sink: SpanSink | undefined;
  private readonly log: Logger;
  private readonly m;
  private readonly refuseWhenFull: boolean;

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

  private forward(signal: Signal, body: Buffer, items: number, ctx: IngestContext): void {
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

  traces(body: Buffer, ctx: IngestContext): IngestOutcome {
    const scan = scanTraceRequest(body);
    const accepted = scan.spanCount - scan.rejected;
    const forwardBody = scan.rejected > 0 && accepted > 0 ? withoutRejected(body, scan) : body;
    this.forward('traces', forwardBody, accepted, ctx);
    this.m.accepted.inc({ signal: 'traces', transport: ctx.transport }, accepted);
    if (scan.rejected > 0) {
      this.m.rejected.inc({ signal: 'traces', transport: ctx.transport }, scan.rejected);
      this.log.debug('refused spans without valid ids', { rejected: scan.rejected });
    }
    if (this.sink && accepted > 0) {
      // The assembler keeps spans where they arrived. A body that is a small window on a larger
      // allocation (a socket read buffer, an HTTP/2 frame) is copied so it does not pin the rest.
      const own = body.byteLength * 2 < body.buffer.byteLength ? Buffer.from(body) : body;
      this.sink(own, scan, ctx.experimentHeader); // offsets are relative to the start: still valid
    }
    return {
      accepted,
      rejected: scan.rejected,
      errorMessage: scan.rejected > 0 ? `${scan.rejected} span(s) refused: ${scan.rejectReason}` : '',
    };
  }

  logs(body: Buffer, ctx: IngestContext): IngestOutcome {
    const n = scanEnvelope(body, LOG_RECORD_PATH);
    this.forward('logs', body, n, ctx);
    this.m.accepted.inc({ signal: 'logs', transport: ctx.transport }, n);
    return { accepted: n, rejected: 0, errorMessage: '' };
  }

  metrics(body: Buffer, ctx: IngestContext): IngestOutcome {
    const n = scanEnvelope(body, METRIC_PATH);
    this.forward('metrics', body, n, ctx);
    this.m.accepted.inc({ signal: 'metrics', transport: ctx.transport }, n);
    return { accepted: n, rejected: 0, errorMessage: '' };
  }

  handle(signal: Signal, body: Buffer, ctx: IngestContext): IngestOutcome {
    return signal === 'traces' ? this.traces(body, ctx) : signal === 'logs' ? this.logs(body, ctx) : this.metrics(body, ctx);
  }
}
