// Loads the OTLP messages in proto/ once, by reflection. Used off the hot path only:
// JSON requests, full span decode of completed traces, and messages scorecar itself emits.
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

const FILES = [
  'opentelemetry/proto/collector/trace/v1/trace_service.proto',
  'opentelemetry/proto/collector/logs/v1/logs_service.proto',
  'opentelemetry/proto/collector/metrics/v1/metrics_service.proto',
  'google/rpc/status.proto',
];

let root: protobuf.Root | undefined;

function load(): protobuf.Root {
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => (target.startsWith('/') ? target : PROTO_DIR + target);
  r.loadSync(FILES, { keepCase: false });
  r.resolveAll();
  return r;
}

export function otlpRoot(): protobuf.Root {
  root ??= load();
  return root;
}

export function otlpType(name: string): protobuf.Type {
  return otlpRoot().lookupType(name);
}

export const TYPE = {
  traceRequest: 'opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest',
  traceResponse: 'opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse',
  logsRequest: 'opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest',
  logsResponse: 'opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse',
  metricsRequest: 'opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest',
  metricsResponse: 'opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse',
  span: 'opentelemetry.proto.trace.v1.Span',
  logRecord: 'opentelemetry.proto.logs.v1.LogRecord',
  resource: 'opentelemetry.proto.resource.v1.Resource',
  scope: 'opentelemetry.proto.common.v1.InstrumentationScope',
  anyValue: 'opentelemetry.proto.common.v1.AnyValue',
  rpcStatus: 'google.rpc.Status',
  retryInfo: 'google.rpc.RetryInfo',
} as const;

export { protobuf };
