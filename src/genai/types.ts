// The GenAI view of a completed trace: what scorers, filters and judges read. Built once per
// trace from whichever instrumentation convention the app used.
import type { Attributes, SpanData, ViewCuts } from '../wire/index.ts';

/** MLflow trace status names; OTel UNSET maps to OK, as MLflow does for finished traces. */
export type TraceStatus = 'OK' | 'ERROR';

export interface RetrievedDocument {
  content: string;
  id?: string;
  score?: number;
  metadata?: Record<string, unknown>;
}

export interface Retrieval {
  spanId: string;
  spanName: string;
  /** The retriever's query, when the convention records it. */
  query?: unknown;
  documents: RetrievedDocument[];
}

export interface TokenUsage {
  inputTokens?: number;
  outputTokens?: number;
  totalTokens?: number;
}

/** Ground truth supplied by the app alongside the trace (attributes), used by judges. */
export interface Expectations {
  expectedResponse?: unknown;
  expectedFacts?: string[];
  guidelines?: string[];
  [key: string]: unknown;
}

export interface TraceView {
  traceId: string;
  experimentId: string;
  /**
   * The span without a parent (the earliest-starting one if several); when none was seen, the
   * earliest-starting span whose parent is not in the trace, else the earliest-starting span.
   */
  rootSpan: SpanData;
  /** All spans (duplicates by span id dropped), ordered by start time, parents first on ties. */
  spans: SpanData[];
  /**
   * MLflow span type of each span, parallel to `spans` (filter `span.type`): LLM, CHAT_MODEL,
   * RETRIEVER, TOOL, CHAIN, AGENT, EMBEDDING, RERANKER, PARSER or UNKNOWN, read from
   * mlflow.spanType, openinference.span.kind, traceloop.span.kind, gen_ai.operation.name, ...
   */
  spanTypes: string[];
  /** Root span name (MLflow trace.name). */
  name: string;
  status: TraceStatus;
  startTimeMs: number;
  endTimeMs: number;
  /** MLflow trace.execution_time_ms: root end - root start (whole trace extent without a root). */
  executionTimeMs: number;
  sessionId?: string;
  userId?: string;
  tokenUsage: TokenUsage;
  /** Request of the trace (MLflow `inputs`): parsed JSON where the convention encodes JSON. */
  inputs: unknown;
  /** Response of the trace (MLflow `outputs`). */
  outputs: unknown;
  retrievals: Retrieval[];
  expectations: Expectations;
  /** MLflow trace tags (filter `tag.k`). */
  tags: Record<string, string>;
  /**
   * MLflow trace metadata (filter `metadata.k`): root span attributes, then resource attributes,
   * then per-trace metadata conventions and mlflow.trace.session/user (see view.ts), stringified.
   */
  metadata: Record<string, string>;
  /** Conventions recognised in this trace, e.g. ['mlflow', 'openinference']. */
  conventions: string[];
  /** Resource attributes of the root span. */
  resource: Attributes;
  /**
   * What the view limits (config genai.viewLimits) cut from this trace, by kind; absent when
   * nothing was. Spans carry their own droppedAttributesCount / droppedEventsCount /
   * droppedLinksCount.
   */
  truncated?: ViewCuts;
  /** Estimated heap size of the view (from what its decode built), for memory accounting. */
  approxBytes?: number;
}
