// What a receiver hands on for each accepted request: the body as it arrived (to forward
// unchanged) and, for traces and logs, the scan of its spans or log records (to buffer them where
// they are).
import type { Signal } from './json.ts';
import type { LogScanResult, ScanResult } from './scan.ts';

/** A request body: one buffer, or the buffers it arrived in, in order. */
export type Body = Buffer | readonly Buffer[];

export interface OtlpBatch {
  readonly signal: Signal;
  /** kafka: read from a topic in the Collector's otlp_proto format (src/kafka). */
  readonly transport: 'grpc' | 'http' | 'kafka';
  /** What to forward: the body as received (never modified), or its valid spans re-framed. */
  readonly body: Body;
  /** Items accepted: spans, log records or metrics. */
  readonly items: number;
  /**
   * Traces only: the scanned request. `scanned` is the buffer the offsets refer to; when
   * `scan.home` is set it is a transient copy valid only during consume(), and spans that are
   * kept must be kept from the `scan.home` buffers.
   */
  readonly scan?: ScanResult;
  /**
   * Logs only: the scanned request, with `scanned` (and `logScan.home`) as for traces. The body
   * forwarded is still the request exactly as received.
   */
  readonly logScan?: LogScanResult;
  readonly scanned?: Buffer;
  /** Value of the x-mlflow-experiment-id request header / metadata. */
  readonly experimentHeader: string | undefined;
}
