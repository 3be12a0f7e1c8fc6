// The GenAI trace view: convention readers and the view builder (view.ts owns the precedence).
export { type ConventionReader, SPAN_TYPES, type SpanType } from './convention.ts';
export { normalizeDocuments, toDocument } from './documents.ts';
export { encodedSpanHasParent, experimentOfResource, MLFLOW_EXPERIMENT_HEADER, resolveExperiment } from './experiment.ts';
export { EXPECTATION_PREFIXES, readExpectations } from './expectations.ts';
export { generic } from './generic.ts';
export { langfuse } from './langfuse.ts';
export { mlflow } from './mlflow.ts';
export { openinference } from './openinference.ts';
export { openllmetry } from './openllmetry.ts';
export { semconv } from './semconv.ts';
export type {
  Expectations,
  Retrieval,
  RetrievedDocument,
  TokenUsage,
  TraceStatus,
  TraceView,
} from './types.ts';
export { type Found, parseJsonLoose } from './values.ts';
export { vercel } from './vercel.ts';
export {
  buildTraceView,
  READERS,
  readSpanDocuments,
  readSpanInputs,
  readSpanOutputs,
  readSpanType,
  readSpanUsage,
  type TraceViewOptions,
  VIEW_BYTES_PER_DECODED_BYTE,
} from './view.ts';
export {
  type JsonValue,
  primeTraceViewJsonText,
  sourceMayReadTrace,
  toJsonSafe,
  traceViewJson,
  traceViewJsonText,
} from './json.ts';
