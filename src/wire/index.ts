// The OTLP codec: scanning and validating encoded requests, re-framing spans, full decode of
// completed traces, the OTLP/JSON mapping and google.rpc.Status. Pure: no I/O, no state.
export type { Body, OtlpBatch } from './batch.ts';
export { encodeRpcStatus, grpcRetryable, httpRetryable, retryDelayFromStatus, rpcStatusJson } from './status.ts';
export {
  type AttrValue,
  type Attributes,
  DEFAULT_VIEW_LIMITS,
  DEPTH_MARKER,
  type DecodeWork,
  decodeResource,
  decodeScope,
  decodeSpan,
  decodeSpanHead,
  type SpanHead,
  STATUS_ERROR,
  STATUS_OK,
  STATUS_UNSET,
  decodeLogRecord,
  type LogRecordData,
  type ScopeData,
  type SpanData,
  type SpanEventData,
  type SpanLinkData,
  noCuts,
  VIEW_CUT_KINDS,
  type ViewCuts,
  ViewDecoder,
  type ViewLimits,
} from './decode.ts';
export { jsonToProtobuf, protobufToJson, type Signal } from './json.ts';
export { encodeSpans, type ResourceRef, type ScopeRef, withoutRejected } from './reframe.ts';
export { otlpRoot, otlpType, TYPE } from './proto.ts';
export {
  LOG_RECORD_PATH,
  LOG_STRIDE,
  type LogScanResult,
  logSampled,
  METRIC_PATH,
  type ScanResult,
  type ScannedLogResource,
  type ScannedLogScope,
  type ScannedResource,
  type ScannedScope,
  SPAN_STRIDE,
  scanEnvelope,
  scanLogsRequest,
  scanTraceRequest,
  spanHasParent,
  spanIdOffset,
  spanTraceIdOffset,
  WireError,
} from './scan.ts';
