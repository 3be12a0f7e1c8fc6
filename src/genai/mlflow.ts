// MLflow tracing (mlflow/tracing/constant.py). MLflow JSON-encodes every attribute value it sets,
// so a string arrives with quotes: `mlflow.spanType = "\"RETRIEVER\""`. Span I/O lives in
// `mlflow.spanInputs` / `mlflow.spanOutputs`, usage in `mlflow.chat.tokenUsage`
// (`{input_tokens, output_tokens, total_tokens}`), retriever outputs are `[{page_content,
// metadata, id}]` (read by the shared document normaliser). Over OTLP, MLflow 3.17 exports trace
// tags as root attributes `mlflow.traceTag.<key>` and (in its UC path) session and user as
// `session.id` / `user.id`; `mlflow.trace.session` / `mlflow.trace.user` are trace metadata keys
// that apps or gateways may also put on the root span.
import type { SpanData } from '../wire/index.ts';
import { type ConventionReader, SPAN_TYPES, type SpanType, usageOf } from './convention.ts';
import type { TokenUsage } from './types.ts';
import { attrJson, attrString, type Found, isRecord, toNumber } from './values.ts';

export const MLFLOW_SPAN_TYPE = 'mlflow.spanType';
export const MLFLOW_INPUTS = 'mlflow.spanInputs';
export const MLFLOW_OUTPUTS = 'mlflow.spanOutputs';
export const MLFLOW_USAGE = 'mlflow.chat.tokenUsage';
export const MLFLOW_TRACE_TAG_PREFIX = 'mlflow.traceTag.';
export const MLFLOW_TRACE_SESSION = 'mlflow.trace.session';
export const MLFLOW_TRACE_USER = 'mlflow.trace.user';
const MARKERS = [MLFLOW_SPAN_TYPE, MLFLOW_INPUTS, MLFLOW_OUTPUTS, 'mlflow.traceRequestId'];

const KNOWN = new Set<string>(SPAN_TYPES);

function spanType(span: SpanData): SpanType | undefined {
  const t = attrString(span.attributes, MLFLOW_SPAN_TYPE)?.toUpperCase();
  if (t === undefined) return undefined;
  // MLflow keeps adding types (MEMORY, WORKFLOW, ...); the filter vocabulary here is the stable set.
  return KNOWN.has(t) ? (t as SpanType) : 'UNKNOWN';
}

function usage(span: SpanData): TokenUsage | undefined {
  const u = attrJson(span.attributes, MLFLOW_USAGE)?.value;
  if (!isRecord(u)) return undefined;
  return usageOf(toNumber(u.input_tokens), toNumber(u.output_tokens), toNumber(u.total_tokens));
}

export const mlflow: ConventionReader = {
  name: 'mlflow',
  detect: (span) => MARKERS.some((k) => Object.hasOwn(span.attributes, k)),
  spanType,
  inputs: (span): Found | undefined => attrJson(span.attributes, MLFLOW_INPUTS),
  outputs: (span): Found | undefined => attrJson(span.attributes, MLFLOW_OUTPUTS),
  usage,
  sessionId: (span) => attrString(span.attributes, MLFLOW_TRACE_SESSION),
  userId: (span) => attrString(span.attributes, MLFLOW_TRACE_USER),
};

/** Trace tags MLflow exported on the root span (`mlflow.traceTag.<key>`), JSON-decoded. */
export function mlflowTraceTags(root: SpanData): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const key of Object.keys(root.attributes)) {
    if (!key.startsWith(MLFLOW_TRACE_TAG_PREFIX)) continue;
    const v = attrString(root.attributes, key);
    if (v !== undefined) tags[key.slice(MLFLOW_TRACE_TAG_PREFIX.length)] = v;
  }
  return tags;
}
