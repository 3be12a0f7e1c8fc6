// Downstream exporters: the OTLP forwarder (HTTP or gRPC) that sends every received request on
// as it came, and the assessments scorecar adds.
export {
  createTransport,
  type EnqueueResult,
  GrpcTransport,
  HttpTransport,
  OtlpForwarder,
  type SendOutcome,
  type Transport,
} from './otlp.ts';
export { backoffMs, sleep } from './retry.ts';
