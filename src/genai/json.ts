// JSON forms of a TraceView: JSON-safe copies of decoded values (bigint → decimal string,
// bytes → base64, no cycles) and the whole view as code scorers read it (`ctx.trace`), as text
// built once per view (by whoever builds the view when it knows a code scorer will read it: the
// selection stage's view workers, off the event loop; else on first use).
import type { LogRecordData, SpanData } from '../wire/index.ts';
import { logEventName } from './semconv.ts';
import type { TraceView } from './types.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

const MAX_DEPTH = 64;

/** A JSON-safe copy: bigint → string, Uint8Array → base64, Date → ISO string, undefined dropped. */
export function toJsonSafe(value: unknown, depth = 0): JsonValue {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'bigint':
      return value.toString();
    case 'function':
    case 'symbol':
      return null;
    default:
      break;
  }
  if (depth >= MAX_DEPTH) return '[depth limit]';
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Array.isArray(value)) return value.map((v) => toJsonSafe(v, depth + 1));
  if (value instanceof Map) {
    const out: Record<string, JsonValue> = {};
    for (const [k, v] of value) out[String(k)] = toJsonSafe(v, depth + 1);
    return out;
  }
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    out[k] = toJsonSafe(v, depth + 1);
  }
  return out;
}

const STATUS_NAMES = ['UNSET', 'OK', 'ERROR'];

function logJson(l: LogRecordData): JsonValue {
  return {
    eventName: logEventName(l),
    timeUnixNano: (l.timeUnixNano !== 0n ? l.timeUnixNano : l.observedTimeUnixNano).toString(),
    severityNumber: l.severityNumber,
    severityText: l.severityText,
    body: toJsonSafe(l.body),
    attributes: toJsonSafe(l.attributes),
    droppedAttributesCount: l.droppedAttributesCount ?? 0,
  };
}

function spanJson(span: SpanData, spanType: string | undefined): JsonValue {
  return {
    traceId: span.traceId,
    spanId: span.spanId,
    parentSpanId: span.parentSpanId,
    name: span.name,
    kind: span.kind,
    spanType: spanType ?? 'UNKNOWN',
    startTimeUnixNano: span.startTimeUnixNano.toString(),
    endTimeUnixNano: span.endTimeUnixNano.toString(),
    startTimeMs: span.startTimeMs,
    endTimeMs: span.endTimeMs,
    durationMs: span.endTimeMs - span.startTimeMs,
    status: {
      code: STATUS_NAMES[span.status.code] ?? String(span.status.code),
      message: span.status.message,
    },
    attributes: toJsonSafe(span.attributes),
    events: span.events.map((e) => ({
      name: e.name,
      timeUnixNano: e.timeUnixNano.toString(),
      attributes: toJsonSafe(e.attributes),
      droppedAttributesCount: e.droppedAttributesCount ?? 0,
    })),
    links: span.links.map((l) => ({
      traceId: l.traceId,
      spanId: l.spanId,
      attributes: toJsonSafe(l.attributes),
      droppedAttributesCount: l.droppedAttributesCount ?? 0,
    })),
    // As OTLP's counts: what the sender dropped plus what the view limits cut.
    droppedAttributesCount: span.droppedAttributesCount ?? 0,
    droppedEventsCount: span.droppedEventsCount ?? 0,
    droppedLinksCount: span.droppedLinksCount ?? 0,
    // The trace's log records joined to this span (GenAI message events ...), by time.
    logs: span.logs === undefined ? [] : span.logs.map(logJson),
    scope: { name: span.scope.name, version: span.scope.version },
  };
}

/**
 * The code scorers' `ctx.trace`: the TraceView's fields as JSON-safe data. Spans leave out
 * their resource (it is `trace.resource`) and status codes become UNSET/OK/ERROR; each span lists
 * the log records joined to it (`logs`: eventName, timeUnixNano, severity, body, attributes).
 * `truncated` is null, or what the view limits cut by kind (spans, logRecords, attributes,
 * events, links, arrayItems, truncatedValues, depth); spans, events, links and log records carry
 * OTLP's dropped counts.
 */
export function traceViewJson(view: TraceView): JsonValue {
  const rootIndex = view.spans.indexOf(view.rootSpan);
  return {
    traceId: view.traceId,
    experimentId: view.experimentId,
    name: view.name,
    status: view.status,
    startTimeMs: view.startTimeMs,
    endTimeMs: view.endTimeMs,
    executionTimeMs: view.executionTimeMs,
    sessionId: view.sessionId ?? null,
    userId: view.userId ?? null,
    tokenUsage: toJsonSafe(view.tokenUsage),
    inputs: toJsonSafe(view.inputs),
    outputs: toJsonSafe(view.outputs),
    retrievals: toJsonSafe(view.retrievals),
    expectations: toJsonSafe(view.expectations),
    tags: toJsonSafe(view.tags),
    metadata: toJsonSafe(view.metadata),
    conventions: toJsonSafe(view.conventions),
    resource: toJsonSafe(view.resource),
    truncated: view.truncated ? toJsonSafe(view.truncated) : null,
    rootSpan: spanJson(view.rootSpan, rootIndex >= 0 ? view.spanTypes?.[rootIndex] : undefined),
    spans: view.spans.map((s, i) => spanJson(s, view.spanTypes?.[i])),
  };
}

// The same view is often scored by several code scorers: its ctx.trace text is built once.
const textCache = new WeakMap<TraceView, string>();

/** `JSON.stringify(traceViewJson(view))`, built once per view. */
export function traceViewJsonText(view: TraceView): string {
  let text = textCache.get(view);
  if (text === undefined) {
    text = JSON.stringify(traceViewJson(view));
    textCache.set(view, text);
  }
  return text;
}

/** Hands over a view's ctx.trace text built elsewhere (a view worker), so it is not built again. */
export function primeTraceViewJsonText(view: TraceView, text: string): void {
  textCache.set(view, text);
}

/**
 * Whether a code scorer's source could observe ctx.trace. The trace is by far the largest part of
 * a sandbox call (serialising it, copying it across the thread and into the wasm heap), and most
 * scorers never touch it. Conservative: any mention of "trace", any computed property access,
 * spread, reflection or JSON of ctx keeps it.
 */
export function sourceMayReadTrace(source: string): boolean {
  return /trace|\[|\.\.\.|JSON|Object|Reflect|\bin\b|arguments|eval|Function|with|this/.test(source);
}
