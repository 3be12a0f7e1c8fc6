// Request-level accounting shared by both receivers: every request by outcome, and every whole
// request refused with a retryable status by reason. Refusals before the body is read (export
// queue full, memory budget full, shutting down) cannot be counted in items, since the items are
// not known yet: scorecar_receiver_refused_requests_total counts them all, whenever they happen;
// scorecar_receiver_refused_items_total counts the items of those refused after the body was read.
import type { ErrorCode, MetricsRegistry } from '../util/index.ts';
import type { Signal } from '../wire/index.ts';
import type { Transport } from './connections.ts';

/** The reason label of a refusal: the code in lower case (the first release's name for QUEUE_FULL). */
export function refusalReason(code: ErrorCode | 'UNEXPECTED'): string {
  return code === 'QUEUE_FULL' ? 'export_queue_full' : code.toLowerCase();
}

export class RequestCounters {
  private readonly requests;
  private readonly refused;

  constructor(metrics: MetricsRegistry) {
    this.requests = metrics.counter('scorecar_receiver_requests_total', 'OTLP requests by outcome', ['signal', 'transport', 'outcome']);
    this.refused = metrics.counter(
      'scorecar_receiver_refused_requests_total',
      'Whole OTLP requests refused with a retryable status (the sender keeps the data and retries), by reason',
      ['signal', 'transport', 'reason'],
    );
  }

  outcome(signal: Signal | 'unknown', transport: Transport, outcome: string): void {
    this.requests.inc({ signal, transport, outcome });
  }

  refusedRetryable(signal: Signal | 'unknown', transport: Transport, code: ErrorCode | 'UNEXPECTED'): void {
    this.refused.inc({ signal, transport, reason: refusalReason(code) });
  }
}
