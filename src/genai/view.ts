// The GenAI view of a completed trace (TraceView): what scorers, filter strings and judges read.
// Built once per completed trace, off the receive path: every span is decoded once, then a few
// linear passes (plus one sort by start time) read it through the convention readers.
//
// Log records: the trace's log records (those the assembler joined to it by trace id) are decoded
// and hung on the span whose span id they carry (SpanData.logs, ordered by time, then arrival); a
// record that names no span, or a span that never arrived, goes to the root span. Exact duplicate
// records (a re-sent export request) count once; a record that does not decode is skipped. The
// readers then see a span's GenAI log events as they see its span events.
//
// Precedence between conventions, per span, first hit wins (modelled on Langfuse's
// OtelIngestionProcessor, which has to solve the same problem):
//   inputs / outputs  Langfuse observation I/O, Vercel AI (ai.prompt*, ai.response.*), GenAI
//                     message events (span events, else the span's log records: gen_ai.*.message,
//                     gen_ai.choice, gen_ai.client.inference.operation.details), MLflow (mlflow.spanInputs/Outputs), OpenLLMetry
//                     (traceloop.entity.*), OpenInference input.value/output.value, bare
//                     input/output, indexed gen_ai.prompt.N / gen_ai.completion.N, OpenInference
//                     llm.input_messages.N / llm.output_messages.N, gen_ai.input/output.messages
//   span type         mlflow.spanType, openinference.span.kind, langfuse.observation.type,
//                     traceloop.span.kind / llm.request.type / db.query.result events,
//                     ai.operationId, gen_ai.operation.name; else UNKNOWN
//   token usage       mlflow.chat.tokenUsage, langfuse usage_details, ai.usage.*,
//                     llm.token_count.*, gen_ai.usage.*
//   session / user    mlflow.trace.session|user, session.id / user.id (enduser.id),
//                     gen_ai.conversation.id, langfuse.session|user.id,
//                     ai.telemetry.metadata.sessionId|userId, traceloop association properties
//                     session_id|user_id; the root span first, then spans by start time
//
// Trace level:
// - root span: the parentless span (the earliest-starting one if several); none: the
//   earliest-starting span whose parent is not in the trace (the top of what arrived), else the
//   earliest span. Spans are ordered by start time, parents first on equal times.
// - status: ERROR when the root span's OTel status is ERROR (or its Langfuse level is ERROR);
//   UNSET and OK are OK, as MLflow reports finished traces.
// - executionTimeMs: root end - root start; without a parentless span, the whole trace's extent.
// - inputs / outputs: `langfuse.trace.input|output` when a span sets them; else the root span's
//   inputs/outputs; else the outermost LLM span's (the first to start for inputs, the last to end
//   for outputs); else the first (last) other span with any, retriever, embedding and reranker
//   spans excluded. Values are parsed JSON where the convention encodes JSON; malformed JSON
//   stays the raw string. Content an instrumentation records only as log events (the
//   OpenTelemetry JS OpenAI instrumentation) is read from the log records joined to the trace,
//   so such a trace has inputs and outputs when its logs reached scorecar before it completed.
// - tokenUsage: the sum over spans that report usage and have no descendant that does (SDKs such
//   as Vercel AI and some MLflow autologgers roll children's usage up into parents; this is the
//   rule MLflow's own server applies).
// - retrievals: one entry per RETRIEVER span, with its documents: OpenInference
//   retrieval.documents.N.document.*, gen_ai.retrieval.documents, OpenLLMetry db.query.result
//   events, else the span's outputs read as a document list (MLflow `[{page_content, metadata,
//   id}]`, Langfuse retriever outputs, ...).
// - expectations: see expectations.ts.
// - tags (filter `tag.k`): MLflow `mlflow.traceTag.<k>` root attributes; Langfuse
//   `langfuse.trace.tags` and OpenInference `tag.tags` labels become `<label>: "true"`.
// - metadata (filter `metadata.k`): the root span's attributes, then the resource's for keys the
//   root lacks, stringified (strings as is, MLflow's JSON-quoted strings unquoted, other values
//   as JSON); then per-trace metadata conventions under their short key when free
//   (`langfuse.trace.metadata.<k>`, `ai.telemetry.metadata.<k>`,
//   `traceloop.association.properties.<k>`); then `mlflow.trace.session` / `mlflow.trace.user`
//   from the resolved ids.
import type { CompleteTrace } from '../assembly/index.ts';
import {
  DEFAULT_VIEW_LIMITS,
  type LogRecordData,
  STATUS_ERROR,
  type SpanData,
  ViewDecoder,
  type ViewLimits,
} from '../wire/index.ts';
import { ScorecarError } from '../util/index.ts';
import type { ConventionReader, SpanType } from './convention.ts';
import { normalizeDocuments } from './documents.ts';
import { encodedSpanHasParent, resolveExperimentWith } from './experiment.ts';
import { readExpectations } from './expectations.ts';
import { generic } from './generic.ts';
import { langfuse, langfuseTags, TRACE_METADATA_PREFIX } from './langfuse.ts';
import { mlflow, mlflowTraceTags } from './mlflow.ts';
import { openinference, openinferenceTags } from './openinference.ts';
import { ASSOCIATION_PREFIX, openllmetry } from './openllmetry.ts';
import { semconv } from './semconv.ts';
import type { Retrieval, RetrievedDocument, TokenUsage, TraceView } from './types.ts';
import { type Found, stringify, unquote } from './values.ts';
import { METADATA_PREFIX as VERCEL_METADATA_PREFIX, vercel } from './vercel.ts';

export interface TraceViewOptions {
  /** Experiment resolution rules (config experiments.resolution). */
  resolution: readonly string[];
  /** Experiment when no rule matches (config experiments.default). */
  defaultExperiment: string;
  /** Bounds of the decode (config genai.viewLimits; default DEFAULT_VIEW_LIMITS). */
  limits?: Readonly<ViewLimits> | undefined;
}

type Rule<T> = (span: SpanData) => T | undefined;

/** Every reader, in the order TraceView.conventions lists them. */
export const READERS: readonly ConventionReader[] = [
  mlflow,
  semconv,
  openinference,
  openllmetry,
  vercel,
  langfuse,
];

const INPUT_RULES: readonly Rule<Found>[] = [
  langfuse.inputs!,
  vercel.inputs!,
  semconv.eventInputs,
  mlflow.inputs!,
  openllmetry.inputs!,
  openinference.valueInputs,
  generic.inputs!,
  semconv.indexedInputs,
  openinference.messageInputs,
  semconv.messageInputs,
];
const OUTPUT_RULES: readonly Rule<Found>[] = [
  langfuse.outputs!,
  vercel.outputs!,
  semconv.eventOutputs,
  mlflow.outputs!,
  openllmetry.outputs!,
  openinference.valueOutputs,
  generic.outputs!,
  semconv.indexedOutputs,
  openinference.messageOutputs,
  semconv.messageOutputs,
];
const TYPE_RULES: readonly Rule<SpanType>[] = [
  mlflow,
  openinference,
  langfuse,
  openllmetry,
  vercel,
  semconv,
].map((r) => r.spanType!);
const USAGE_RULES: readonly Rule<TokenUsage>[] = [mlflow, langfuse, vercel, openinference, semconv].map(
  (r) => r.usage!,
);
const SESSION_RULES: readonly Rule<string>[] = [mlflow, generic, semconv, langfuse, vercel, openllmetry].map(
  (r) => r.sessionId!,
);
const USER_RULES: readonly Rule<string>[] = [mlflow, generic, langfuse, vercel, openllmetry].map(
  (r) => r.userId!,
);
const DOCUMENT_RULES: readonly Rule<RetrievedDocument[]>[] = [openinference, semconv, openllmetry].map(
  (r) => r.documents!,
);

/** First defined answer of the rules; a rule that throws on odd input counts as no answer. */
function first<T>(rules: readonly Rule<T>[], span: SpanData): T | undefined {
  for (const rule of rules) {
    try {
      const v = rule(span);
      if (v !== undefined) return v;
    } catch {
      // Readers are written not to throw; this keeps one odd attribute from losing the view.
    }
  }
  return undefined;
}

/** Inputs of one span, by the convention precedence above. */
export function readSpanInputs(span: SpanData): Found | undefined {
  return first(INPUT_RULES, span);
}

/** Outputs of one span, by the convention precedence above. */
export function readSpanOutputs(span: SpanData): Found | undefined {
  return first(OUTPUT_RULES, span);
}

/** MLflow span type of one span (UNKNOWN when no convention types it). */
export function readSpanType(span: SpanData): SpanType {
  return first(TYPE_RULES, span) ?? 'UNKNOWN';
}

/** Token usage one span reports itself (not including its children). */
export function readSpanUsage(span: SpanData): TokenUsage | undefined {
  return first(USAGE_RULES, span);
}

/** Documents of a retriever span. */
export function readSpanDocuments(span: SpanData): RetrievedDocument[] {
  const docs = first(DOCUMENT_RULES, span);
  if (docs) return docs;
  const out = readSpanOutputs(span);
  return (out && normalizeDocuments(out.value)) ?? [];
}

/**
 * The whole view over what its decode built: the decoded spans and records are most of it; the
 * rest is what the readers derive (inputs and outputs parsed from JSON, metadata, tags, span
 * types). Measured against the heap (node --expose-gc, heapUsed after building 2,000 views): on
 * the bench payload (8 spans) the estimate is 21.1 KiB per view for 19.7 KiB on the heap; views
 * of many short attributes, arrays or maps come out 1.4-6x above the heap (V8 shares their
 * shapes and small integers): conservative, as a memory bound should be.
 */
export const VIEW_BYTES_PER_DECODED_BYTE = 1.5;

const LLM_TYPES = new Set<SpanType>(['LLM', 'CHAT_MODEL']);
const NOT_IO_FALLBACK = new Set<SpanType>(['RETRIEVER', 'EMBEDDING', 'RERANKER']);

/**
 * Which spans to decode, in arrival order: all of them, or when there are more than
 * spansPerTrace, the parentless ones first (so the root is never the one cut), then the others
 * in arrival order.
 */
function spansToDecode(trace: CompleteTrace, max: number): number[] {
  const n = trace.spans.length;
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  const keep: number[] = [];
  for (let i = 0; i < n && keep.length < max; i++) if (!encodedSpanHasParent(trace.spans[i]!)) keep.push(i);
  const chosen = new Set(keep);
  for (let i = 0; i < n && keep.length < max; i++) if (!chosen.has(i)) keep.push(i);
  return keep.sort((a, b) => a - b);
}

function decodeAll(trace: CompleteTrace, dec: ViewDecoder): SpanData[] {
  const spans: SpanData[] = [];
  const seen = new Set<string>();
  let firstError: unknown;
  const chosen = spansToDecode(trace, dec.limits.spansPerTrace);
  dec.cut('spans', trace.spans.length - chosen.length);
  for (const i of chosen) {
    let s: SpanData;
    try {
      s = dec.span(trace.spans[i]!, trace.resources[i]!, trace.scopes[i]!);
    } catch (e) {
      firstError ??= e;
      continue;
    }
    if (seen.has(s.spanId)) continue;
    seen.add(s.spanId);
    spans.push(s);
  }
  if (spans.length === 0) {
    throw new ScorecarError('INVALID_PROTOBUF', `trace ${trace.traceId}: no span could be decoded`, {
      cause: firstError,
    });
  }
  // Equal start times (common: JS clocks tick in coarse steps) put parents before children,
  // then keep arrival order.
  const depth = depths(spans);
  return spans
    .map((s, i) => ({ s, i, d: depth[i]! }))
    .sort((a, b) =>
      a.s.startTimeUnixNano < b.s.startTimeUnixNano
        ? -1
        : a.s.startTimeUnixNano > b.s.startTimeUnixNano
          ? 1
          : a.d - b.d || a.i - b.i,
    )
    .map((x) => x.s);
}

/**
 * Decodes the trace's log records and hangs each on the span it names, else on the root span
 * (module header). Only spans that get a record get a `logs` list.
 */
function attachLogs(
  trace: CompleteTrace,
  spans: readonly SpanData[],
  byId: ReadonlyMap<string, number>,
  root: SpanData,
  dec: ViewDecoder,
): void {
  const logs = trace.logs;
  const resources = trace.logResources;
  const scopes = trace.logScopes;
  if (logs === undefined || logs.length === 0 || resources === undefined || scopes === undefined) return;
  const seen = new Set<string>();
  const touched = new Set<SpanData>();
  let decoded = 0;
  for (let i = 0; i < logs.length; i++) {
    const bytes = logs[i]!;
    const key = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
    if (seen.has(key)) continue;
    seen.add(key);
    if (decoded >= dec.limits.logRecordsPerTrace) {
      dec.cut('logRecords');
      continue;
    }
    decoded++;
    let rec: LogRecordData;
    try {
      rec = dec.logRecord(bytes, resources[i]!, scopes[i]!);
    } catch {
      continue;
    }
    const at = rec.spanId === '' ? undefined : byId.get(rec.spanId);
    const span = at === undefined ? root : spans[at]!;
    span.logs ??= [];
    span.logs.push(rec);
    touched.add(span);
  }
  // Exporters send records in batches that may overtake each other: time orders them, arrival
  // order breaks ties (sort is stable). Records without a time use their observed time.
  const time = (l: LogRecordData): bigint => (l.timeUnixNano !== 0n ? l.timeUnixNano : l.observedTimeUnixNano);
  for (const s of touched) s.logs!.sort((a, b) => (time(a) < time(b) ? -1 : time(a) > time(b) ? 1 : 0));
}

/** Depth of each span below the topmost ancestor present in the trace (cycles cut). */
function depths(spans: readonly SpanData[]): number[] {
  const byId = new Map<string, number>();
  for (const [i, s] of spans.entries()) byId.set(s.spanId, i);
  const depth = new Array<number>(spans.length).fill(-1);
  for (let i = 0; i < spans.length; i++) {
    if (depth[i]! >= 0) continue;
    const chain: number[] = [];
    const onChain = new Set<number>();
    let cur: number | undefined = i;
    let base = -1;
    while (cur !== undefined && !onChain.has(cur)) {
      if (depth[cur]! >= 0) {
        base = depth[cur]!;
        break;
      }
      chain.push(cur);
      onChain.add(cur);
      cur = byId.get(spans[cur]!.parentSpanId);
    }
    for (let k = chain.length - 1; k >= 0; k--) depth[chain[k]!] = ++base;
  }
  return depth;
}

/**
 * Spans ordered by start: the first parentless one; without one (the root never arrived), the
 * first span whose parent is missing from the trace (the top of what did arrive), else the first.
 */
function pickRoot(
  spans: readonly SpanData[],
  byId: ReadonlyMap<string, number>,
): { root: SpanData; parentless: boolean } {
  for (const s of spans) if (s.parentSpanId === '') return { root: s, parentless: true };
  for (const s of spans) if (!byId.has(s.parentSpanId)) return { root: s, parentless: false };
  return { root: spans[0]!, parentless: false };
}

/**
 * Marks, for every span, whether some ancestor satisfies `pred`; amortised linear (each span's
 * answer is computed once), and safe against parent cycles in malformed input.
 */
function ancestorFlags(
  spans: readonly SpanData[],
  byId: ReadonlyMap<string, number>,
  pred: (i: number) => boolean,
): boolean[] {
  const result = new Array<boolean | undefined>(spans.length);
  for (let i = 0; i < spans.length; i++) {
    if (result[i] !== undefined) continue;
    const chain: number[] = [];
    const onChain = new Set<number>();
    let cur = i;
    let answer = false;
    for (;;) {
      chain.push(cur);
      onChain.add(cur);
      const p = byId.get(spans[cur]!.parentSpanId);
      if (p === undefined || onChain.has(p)) break;
      if (pred(p)) {
        answer = true;
        break;
      }
      if (result[p] !== undefined) {
        answer = result[p]!;
        break;
      }
      cur = p;
    }
    for (const c of chain) result[c] = answer;
  }
  return result as boolean[];
}

function sumUsage(
  spans: readonly SpanData[],
  byId: ReadonlyMap<string, number>,
  usage: readonly (TokenUsage | undefined)[],
): TokenUsage {
  // A span's usage counts only when no descendant reports usage (children's usage is what a
  // rolled-up parent repeats). Mark the ancestors of every reporting span, stopping at marked ones.
  const hasReportingDescendant = new Array<boolean>(spans.length).fill(false);
  for (let i = 0; i < spans.length; i++) {
    if (!usage[i]) continue;
    let p = byId.get(spans[i]!.parentSpanId);
    let steps = 0;
    while (p !== undefined && !hasReportingDescendant[p] && steps++ < spans.length) {
      hasReportingDescendant[p] = true;
      p = byId.get(spans[p]!.parentSpanId);
    }
  }
  const total: TokenUsage = {};
  for (let i = 0; i < spans.length; i++) {
    const u = usage[i];
    if (!u || hasReportingDescendant[i]) continue;
    if (u.inputTokens !== undefined) total.inputTokens = (total.inputTokens ?? 0) + u.inputTokens;
    if (u.outputTokens !== undefined) total.outputTokens = (total.outputTokens ?? 0) + u.outputTokens;
    if (u.totalTokens !== undefined) total.totalTokens = (total.totalTokens ?? 0) + u.totalTokens;
  }
  return total;
}

function firstAcross<T>(
  rules: readonly Rule<T>[],
  root: SpanData,
  spans: readonly SpanData[],
): T | undefined {
  const r = first(rules, root);
  if (r !== undefined) return r;
  for (const s of spans) {
    if (s === root) continue;
    const v = first(rules, s);
    if (v !== undefined) return v;
  }
  return undefined;
}

function traceIo(
  which: 'inputs' | 'outputs',
  root: SpanData,
  spans: readonly SpanData[],
  types: readonly SpanType[],
  underLlm: readonly boolean[],
): unknown {
  const traceLevel = which === 'inputs' ? langfuse.traceInputs : langfuse.traceOutputs;
  const explicit = firstAcross([traceLevel], root, spans);
  if (explicit) return explicit.value;
  const read = which === 'inputs' ? readSpanInputs : readSpanOutputs;
  const own = read(root);
  if (own) return own.value;
  // Inputs: the first span to start; outputs: the last span to end.
  const order = spans.map((_, i) => i);
  if (which === 'outputs') {
    order.sort((a, b) => {
      const ea = spans[a]!.endTimeUnixNano;
      const eb = spans[b]!.endTimeUnixNano;
      return ea > eb ? -1 : ea < eb ? 1 : b - a;
    });
  }
  for (const i of order) {
    if (!LLM_TYPES.has(types[i]!) || underLlm[i] || spans[i] === root) continue;
    const v = read(spans[i]!);
    if (v) return v.value;
  }
  for (const i of order) {
    if (NOT_IO_FALLBACK.has(types[i]!) || spans[i] === root) continue;
    const v = read(spans[i]!);
    if (v) return v.value;
  }
  return undefined;
}

function addMetadata(out: Record<string, string>, key: string, v: unknown, mlflowEncoded: boolean): void {
  if (Object.hasOwn(out, key) || v === null || v === undefined) return;
  out[key] = typeof v === 'string' && mlflowEncoded ? unquote(v) : stringify(v);
}

function metadataOf(
  root: SpanData,
  spans: readonly SpanData[],
  sessionId?: string,
  userId?: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  const rootIsMlflow = mlflow.detect(root);
  for (const [k, v] of Object.entries(root.attributes)) addMetadata(out, k, v, rootIsMlflow);
  for (const [k, v] of Object.entries(root.resource)) addMetadata(out, k, v, false);
  const prefixes = [TRACE_METADATA_PREFIX, VERCEL_METADATA_PREFIX, ASSOCIATION_PREFIX];
  for (const s of [root, ...spans]) {
    for (const [k, v] of Object.entries(s.attributes)) {
      for (const p of prefixes) {
        if (k.startsWith(p) && k.length > p.length) addMetadata(out, k.slice(p.length), v, false);
      }
    }
  }
  if (sessionId !== undefined) addMetadata(out, 'mlflow.trace.session', sessionId, false);
  if (userId !== undefined) addMetadata(out, 'mlflow.trace.user', userId, false);
  return out;
}

function tagsOf(root: SpanData, spans: readonly SpanData[]): Record<string, string> {
  const tags: Record<string, string> = { ...mlflowTraceTags(root) };
  const labels = [...openinferenceTags(root)];
  for (const s of [root, ...spans]) {
    const l = langfuseTags(s);
    if (l.length) {
      labels.push(...l);
      break;
    }
  }
  for (const l of labels) if (!Object.hasOwn(tags, l)) tags[l] = 'true';
  return tags;
}

/** Builds the GenAI view of a completed trace (see the module header for every rule). */
export function buildTraceView(trace: CompleteTrace, opts: TraceViewOptions, decoder?: ViewDecoder): TraceView {
  const dec = decoder ?? new ViewDecoder(opts.limits ?? DEFAULT_VIEW_LIMITS);
  const spans = decodeAll(trace, dec);
  const byId = new Map<string, number>();
  for (const [i, s] of spans.entries()) byId.set(s.spanId, i);
  const { root, parentless } = pickRoot(spans, byId);
  attachLogs(trace, spans, byId, root, dec);

  const spanTypes: SpanType[] = spans.map(readSpanType);
  const usage = spans.map(readSpanUsage);
  const underLlm = ancestorFlags(spans, byId, (i) => LLM_TYPES.has(spanTypes[i]!));

  const found = new Set<string>();
  for (const s of spans) {
    for (const r of READERS) {
      if (found.has(r.name)) continue;
      try {
        if (r.detect(s)) found.add(r.name);
      } catch {
        // detection is best effort
      }
    }
  }

  const retrievals: Retrieval[] = [];
  spans.forEach((s, i) => {
    if (spanTypes[i] !== 'RETRIEVER') return;
    const r: Retrieval = { spanId: s.spanId, spanName: s.name, documents: readSpanDocuments(s) };
    const q = first([semconv.query!, readSpanInputs], s);
    if (q) r.query = q.value;
    retrievals.push(r);
  });

  let startNs = root.startTimeUnixNano;
  let endNs = root.endTimeUnixNano;
  if (!parentless) {
    for (const s of spans) {
      if (s.startTimeUnixNano < startNs) startNs = s.startTimeUnixNano;
      if (s.endTimeUnixNano > endNs) endNs = s.endTimeUnixNano;
    }
  }
  const startTimeMs = parentless
    ? root.startTimeMs
    : Number(startNs / 1_000_000n) + Number(startNs % 1_000_000n) / 1e6;
  const endTimeMs = parentless
    ? root.endTimeMs
    : Number(endNs / 1_000_000n) + Number(endNs % 1_000_000n) / 1e6;
  const executionTimeMs = endNs > startNs ? Number(endNs - startNs) / 1e6 : 0;

  const sessionId = firstAcross(SESSION_RULES, root, spans);
  const userId = firstAcross(USER_RULES, root, spans);
  const tags = tagsOf(root, spans);
  const failed = root.status.code === STATUS_ERROR || langfuse.failed(root);

  const view: TraceView = {
    traceId: trace.traceId,
    experimentId: resolveExperimentWith(trace, opts.resolution, opts.defaultExperiment, () => root),
    rootSpan: root,
    spans,
    spanTypes,
    name: root.name,
    status: failed ? 'ERROR' : 'OK',
    startTimeMs,
    endTimeMs,
    executionTimeMs,
    tokenUsage: sumUsage(spans, byId, usage),
    inputs: traceIo('inputs', root, spans, spanTypes, underLlm),
    outputs: traceIo('outputs', root, spans, spanTypes, underLlm),
    retrievals,
    expectations: readExpectations(root, spans, tags),
    tags,
    metadata: metadataOf(root, spans, sessionId, userId),
    conventions: READERS.filter((r) => found.has(r.name)).map((r) => r.name),
    resource: root.resource,
  };
  if (sessionId !== undefined) view.sessionId = sessionId;
  if (userId !== undefined) view.userId = userId;
  if (dec.truncated) view.truncated = { ...dec.cuts };
  view.approxBytes = Math.ceil(dec.work.bytes * VIEW_BYTES_PER_DECODED_BYTE);
  return view;
}
