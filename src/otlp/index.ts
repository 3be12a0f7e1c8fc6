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
