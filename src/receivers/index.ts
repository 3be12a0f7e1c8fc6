// OTLP receivers (gRPC and HTTP) and what they share: the ingest step every accepted request
// goes through, and the process-wide memory budget checked before a request is read.
export { MemoryBudget } from './budget.ts';
export { type GrpcReceiverOptions, OtlpGrpcReceiver } from './grpc.ts';
export { type HttpReceiverOptions, OtlpHttpReceiver } from './http.ts';
export { type IngestContext, type IngestOutcome, OtlpIngest, type Precheck } from './ingest.ts';
