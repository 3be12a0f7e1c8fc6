// What an archived row is made of: a completed trace turned into a `traces` row (through its
// GenAI view: request, response, previews, metadata and tags come from the same readers that
// scorers and filters use), an assessment into an `assessments` row, and the compact form a
// completed trace travels in to the archive's writer thread.
import type { Assessment } from '../assessments/index.ts';
import type { CompleteTrace } from '../assembly/index.ts';
import { type JsonValue, type TraceView, toJsonSafe } from '../genai/index.ts';
import { type AttrValue, type Attributes, otlpType, type ResourceRef, type ScopeRef, type SpanData, TYPE } from '../wire/index.ts';
import type { Row } from './parquet.ts';

/** MLflow's preview length (TRACE_REQUEST_RESPONSE_PREVIEW_MAX_LENGTH). */
export const PREVIEW_CHARS = 1000;

const KINDS = ['SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER', 'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER'];
const STATUS = ['STATUS_CODE_UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_ERROR'];

/** UTC date (YYYY-MM-DD) of an epoch-microsecond time: the partition value. */
export function dateOfMicros(us: number): string {
  return new Date(Math.floor(us / 1000)).toISOString().slice(0, 10);
}

/**
 * Span attributes as MLflow stores them: every value JSON-encoded (a string attribute 'x' is
 * '"x"'), so numbers, booleans, arrays and maps keep their type and a reader can get_json_object
 * them. Bytes become base64 strings.
 */
export function attributesMap(attrs: Attributes): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) out[k] = JSON.stringify(toJsonSafe(v));
  return out;
}

/** The inverse of attributesMap, for filters over archived spans. */
export function attributesFromMap(map: Record<string, string> | null | undefined): Attributes {
  const out: Attributes = {};
  if (!map) return out;
  for (const [k, v] of Object.entries(map)) {
    try {
      out[k] = JSON.parse(v) as AttrValue;
    } catch {
      out[k] = v;
    }
  }
  return out;
}

const usOf = (ns: bigint): number => Number(ns / 1000n);

function spanRow(s: SpanData): Row {
  return {
    trace_id: s.traceId,
    span_id: s.spanId,
    trace_state: s.traceState,
    flags: s.flags,
    name: s.name,
    kind: KINDS[s.kind] ?? `SPAN_KIND_${s.kind}`,
    attributes: attributesMap(s.attributes),
    dropped_attributes_count: null,
    dropped_events_count: null,
    dropped_links_count: null,
    parent_id: s.parentSpanId === '' ? null : s.parentSpanId,
    start_time: usOf(s.startTimeUnixNano),
    end_time: usOf(s.endTimeUnixNano),
    status_code: STATUS[s.status.code] ?? `STATUS_CODE_${s.status.code}`,
    status_message: s.status.message,
    events: s.events.map((e) => ({ name: e.name, timestamp: usOf(e.timeUnixNano), attributes: attributesMap(e.attributes) })),
  };
}

function jsonText(v: unknown): string | null {
  if (v === undefined) return null;
  return JSON.stringify(toJsonSafe(v));
}

function preview(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  const s = typeof v === 'string' ? v : JSON.stringify(toJsonSafe(v) as JsonValue);
  return s.length > PREVIEW_CHARS ? s.slice(0, PREVIEW_CHARS) : s;
}

/** Epoch µs at which a trace started: its root's start, or the earliest span's without a root. */
export function traceStartMicros(view: TraceView): number {
  if (view.rootSpan.parentSpanId === '') return usOf(view.rootSpan.startTimeUnixNano);
  let min = view.rootSpan.startTimeUnixNano;
  for (const s of view.spans) if (s.startTimeUnixNano < min) min = s.startTimeUnixNano;
  return usOf(min);
}

/** A `traces` row (TRACES_SCHEMA) of a trace view, and its partition value. */
export function traceRow(view: TraceView): { row: Row; date: string } {
  const start = traceStartMicros(view);
  const row: Row = {
    trace_id: view.traceId,
    client_request_id: null,
    experiment_id: view.experimentId,
    request_time: start,
    state: view.status,
    execution_duration_ms: BigInt(Math.floor(view.executionTimeMs)),
    request_preview: preview(view.inputs),
    response_preview: preview(view.outputs),
    request: jsonText(view.inputs),
    response: jsonText(view.outputs),
    trace_metadata: view.metadata,
    tags: view.tags,
    trace_location: { type: 'MLFLOW_EXPERIMENT', mlflow_experiment: { experiment_id: view.experimentId }, inference_table: null },
    spans: view.spans.map(spanRow),
  };
  return { row, date: dateOfMicros(start) };
}

/** An `assessments` row (ASSESSMENTS_SCHEMA) and its partition value. */
export function assessmentRow(a: Assessment): { row: Row; date: string } {
  const created = Date.parse(a.createdAt) * 1000;
  const row: Row = {
    assessment_id: a.assessmentId,
    trace_id: a.traceId,
    span_id: a.spanId,
    experiment_id: a.experimentId,
    name: a.name,
    scorer_name: a.scorer.name,
    scorer_version: a.scorer.version,
    source: { source_type: a.source.type, source_id: a.source.id },
    value: JSON.stringify(a.value),
    rationale: a.rationale ?? null,
    error: a.error ? { error_code: a.error.code, error_message: a.error.message } : null,
    metadata: a.metadata,
    sample_rate: a.sampleRate,
    create_time: created,
  };
  return { row, date: dateOfMicros(created) };
}

/** An assessment read back from its row (the inverse of assessmentRow). */
export function assessmentFromRow(r: Record<string, unknown>): Assessment {
  const source = r.source as { source_type: Assessment['source']['type']; source_id: string };
  const err = r.error as { error_code: string; error_message: string } | null;
  const a: Assessment = {
    assessmentId: r.assessment_id as string,
    name: r.name as string,
    traceId: r.trace_id as string,
    spanId: r.span_id as string,
    experimentId: r.experiment_id as string,
    scorer: { name: r.scorer_name as string, version: r.scorer_version as number },
    source: { type: source.source_type, id: source.source_id },
    value: JSON.parse(r.value as string) as Assessment['value'],
    metadata: (r.metadata as Record<string, string> | null) ?? {},
    sampleRate: r.sample_rate as number,
    createdAt: new Date(Number(r.create_time as bigint) / 1000).toISOString(),
  };
  if (r.rationale !== null && r.rationale !== undefined) a.rationale = r.rationale as string;
  if (err) a.error = { code: err.error_code, message: err.error_message };
  return a;
}

// ------------------------------------------------------------------ transfer form

/** A completed trace's metadata when it travels to the writer thread; its bytes go in `buf`. */
export interface PackedTrace {
  traceId: string;
  reason: CompleteTrace['reason'];
  hasRoot: boolean;
  firstSeenMs: number;
  completedMs: number;
  wireBytes: number;
  /** Distinct resources: [bytes offset, length (-1 = none), experiment header]. */
  resources: Array<[number, number, string | undefined]>;
  scopes: Array<[number, number]>;
  /** Per span: offset, length, resource index, scope index. Same for logs. */
  spans: number[];
  logs: number[];
  buf: ArrayBuffer;
}

/**
 * Copies a trace's bytes into one fresh ArrayBuffer that can be transferred to a worker (its
 * spans are views into the larger request buffers they arrived in; cloning those views would
 * copy whole requests). Resources and scopes shared by spans are copied once.
 */
export function packTrace(trace: CompleteTrace): PackedTrace {
  const parts: Uint8Array[] = [];
  let size = 0;
  const put = (b: Uint8Array | null): [number, number] => {
    if (b === null) return [0, -1];
    const at = size;
    parts.push(b);
    size += b.byteLength;
    return [at, b.byteLength];
  };
  const resIndex = new Map<ResourceRef, number>();
  const scopeIndex = new Map<ScopeRef, number>();
  const resources: PackedTrace['resources'] = [];
  const scopes: PackedTrace['scopes'] = [];
  const refOf = (r: ResourceRef): number => {
    let i = resIndex.get(r);
    if (i === undefined) {
      i = resources.length;
      resIndex.set(r, i);
      resources.push([...put(r.bytes), r.experimentHeader]);
    }
    return i;
  };
  const scopeOf = (s: ScopeRef): number => {
    let i = scopeIndex.get(s);
    if (i === undefined) {
      i = scopes.length;
      scopeIndex.set(s, i);
      scopes.push(put(s.bytes));
    }
    return i;
  };
  const spans: number[] = [];
  for (let i = 0; i < trace.spans.length; i++) {
    const [at, len] = put(trace.spans[i]!);
    spans.push(at, len, refOf(trace.resources[i]!), scopeOf(trace.scopes[i]!));
  }
  const logs: number[] = [];
  const logList = trace.logs ?? [];
  for (let i = 0; i < logList.length; i++) {
    const [at, len] = put(logList[i]!);
    logs.push(at, len, refOf(trace.logResources![i]!), scopeOf(trace.logScopes![i]!));
  }
  const buf = new ArrayBuffer(size);
  const out = new Uint8Array(buf);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return {
    traceId: trace.traceId,
    reason: trace.reason,
    hasRoot: trace.hasRoot,
    firstSeenMs: trace.firstSeenMs,
    completedMs: trace.completedMs,
    wireBytes: trace.wireBytes,
    resources,
    scopes,
    spans,
    logs,
    buf,
  };
}

/** The CompleteTrace a PackedTrace carries (views into its buffer). */
export function unpackTrace(p: PackedTrace): CompleteTrace {
  const all = new Uint8Array(p.buf);
  const view = (at: number, len: number): Uint8Array | null => (len < 0 ? null : all.subarray(at, at + len));
  const resources: ResourceRef[] = p.resources.map(([at, len, header]) => ({ bytes: view(at, len), schemaUrl: null, experimentHeader: header }));
  const scopes: ScopeRef[] = p.scopes.map(([at, len]) => ({ bytes: view(at, len), schemaUrl: null }));
  const unpack = (list: number[]) => {
    const bytes: Uint8Array[] = [];
    const res: ResourceRef[] = [];
    const sc: ScopeRef[] = [];
    for (let i = 0; i < list.length; i += 4) {
      bytes.push(view(list[i]!, list[i + 1]!)!);
      res.push(resources[list[i + 2]!]!);
      sc.push(scopes[list[i + 3]!]!);
    }
    return { bytes, res, sc };
  };
  const s = unpack(p.spans);
  const l = unpack(p.logs);
  return {
    traceId: p.traceId,
    spans: s.bytes,
    resources: s.res,
    scopes: s.sc,
    logs: l.bytes,
    logResources: l.res,
    logScopes: l.sc,
    reason: p.reason,
    hasRoot: p.hasRoot,
    firstSeenMs: p.firstSeenMs,
    completedMs: p.completedMs,
    wireBytes: p.wireBytes,
  };
}

// ------------------------------------------------------------------ back from a row

/** A plain value as an OTLP AnyValue (protobufjs object form). */
function anyValueOf(v: unknown): Record<string, unknown> {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { intValue: v } : { doubleValue: v };
  if (Array.isArray(v)) return { arrayValue: { values: v.map(anyValueOf) } };
  if (v !== null && typeof v === 'object') {
    return { kvlistValue: { values: Object.entries(v).map(([key, x]) => ({ key, value: anyValueOf(x) })) } };
  }
  return {};
}

const KIND_OF: Record<string, number> = Object.fromEntries(KINDS.map((k, i) => [k, i]));
const STATUS_OF: Record<string, number> = Object.fromEntries(STATUS.map((k, i) => [k, i]));

/** An archived span as it is read back (timestamps as epoch-µs numbers). */
export interface RowSpan {
  trace_id: string;
  span_id: string;
  trace_state: string | null;
  flags: number | null;
  name: string;
  kind: string;
  attributes: Record<string, string> | null;
  parent_id: string | null;
  start_time: number;
  end_time: number;
  status_code: string;
  status_message: string | null;
  events: Array<{ name: string; timestamp: number; attributes: Record<string, string> | null }> | null;
}

/**
 * The completed trace an archived row came from, as far as the row keeps it: its spans,
 * re-encoded (resources, scopes and log records are not archived). Backfills build the trace
 * view scorers read from it.
 */
export function traceFromRow(traceId: string, spans: readonly RowSpan[]): CompleteTrace {
  const type = otlpType(TYPE.span);
  const kv = (m: Record<string, string> | null) => Object.entries(attributesFromMap(m)).map(([key, v]) => ({ key, value: anyValueOf(v) }));
  const ns = (us: number) => (BigInt(us) * 1000n).toString();
  const encoded = spans.map((s) =>
    type
      .encode(
        type.fromObject({
          traceId: Buffer.from(s.trace_id, 'hex'),
          spanId: Buffer.from(s.span_id, 'hex'),
          ...(s.parent_id ? { parentSpanId: Buffer.from(s.parent_id, 'hex') } : {}),
          traceState: s.trace_state ?? '',
          flags: s.flags ?? 0,
          name: s.name,
          kind: KIND_OF[s.kind] ?? 0,
          startTimeUnixNano: ns(s.start_time),
          endTimeUnixNano: ns(s.end_time),
          attributes: kv(s.attributes),
          events: (s.events ?? []).map((e) => ({ name: e.name, timeUnixNano: ns(e.timestamp), attributes: kv(e.attributes) })),
          status: { code: STATUS_OF[s.status_code] ?? 0, message: s.status_message ?? '' },
        }),
      )
      .finish(),
  );
  const resource: ResourceRef = { bytes: null, schemaUrl: null, experimentHeader: undefined };
  const scope: ScopeRef = { bytes: null, schemaUrl: null };
  return {
    traceId,
    spans: encoded,
    resources: encoded.map(() => resource),
    scopes: encoded.map(() => scope),
    reason: 'root',
    hasRoot: spans.some((s) => !s.parent_id),
    firstSeenMs: 0,
    completedMs: 0,
    wireBytes: encoded.reduce((n, b) => n + b.byteLength, 0),
  };
}
