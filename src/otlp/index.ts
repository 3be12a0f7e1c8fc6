export { MemoryBudget } from './budget.ts';
export {
  createTransport,
  type EnqueueResult,
  GrpcTransport,
  HttpTransport,
  OtlpForwarder,
  type SendOutcome,
  type Transport,
} from './exporter.ts';
export { type GrpcReceiverOptions, OtlpGrpcReceiver } from './grpc-receiver.ts';
export { type HttpReceiverOptions, OtlpHttpReceiver } from './http-receiver.ts';
export { type Body, type IngestContext, type IngestOutcome, OtlpIngest, type SpanSink } from './ingest.ts';
export { backoffMs, parseRetryAfter, sleep } from './retry.ts';
export { encodeRpcStatus, GRPC, grpcRetryable, httpRetryable, retryDelayFromStatus, rpcStatusJson } from './status.ts';
export {
  type AttrValue,
  type Attributes,
  anyValueToJs,
  attributesToJs,
  decodeResource,
  decodeScope,
  decodeSpan,
  STATUS_ERROR,
  STATUS_OK,
  STATUS_UNSET,
  type ScopeData,
  type SpanData,
  type SpanEventData,
  type SpanLinkData,
} from './decode.ts';
export { jsonToProtobuf, protobufToJson, type Signal } from './json.ts';
export { encodeSpans, type ResourceRef, type ScopeRef, withoutRejected } from './parts.ts';
export { otlpRoot, otlpType, TYPE } from './proto.ts';
export {
  LOG_RECORD_PATH,
  METRIC_PATH,
  type ScanResult,
  type ScannedResource,
  type ScannedScope,
  SPAN_STRIDE,
  scanEnvelope,
  scanTraceRequest,
  spanHasParent,
  spanIdOffset,
  spanTraceIdOffset,
  WireError,
} from './wire.ts';
