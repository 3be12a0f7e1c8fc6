// Renderings of a TraceView for the two kinds of scorers:
// - text for judge prompts (values as text or compact JSON, truncated; the `{{ trace }}` outline
//   of spans with name, type, duration, status and truncated inputs/outputs);
// - JSON-safe data for code scorers (bigint → decimal string, bytes → base64, no cycles).
import type { AttrValue, SpanData } from '../otlp/decode.ts';
import type { TraceView } from '../genai/types.ts';

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

export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}… [${text.length - max} more characters truncated]`;
}

/** A value as prompt text: strings as they are, anything else as compact JSON; '' when absent. */
export function valueText(value: unknown, max: number): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return truncate(value, max);
  return truncate(JSON.stringify(toJsonSafe(value)), max);
}

/** True when a value carries something to judge (not undefined, null, '' or an empty container). */
export function isPresent(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'string') return value.trim() !== '';
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object' && !(value instanceof Uint8Array)) return Object.keys(value).length > 0;
  return true;
}

// Where the common conventions keep a span's own input and output (first hit wins).
const SPAN_INPUT_KEYS = [
  'mlflow.spanInputs',
  'input.value',
  'traceloop.entity.input',
  'gen_ai.input.messages',
  'ai.prompt.messages',
  'ai.prompt',
  'langfuse.observation.input',
  'ai.toolCall.args',
  'gen_ai.tool.call.arguments',
];
const SPAN_OUTPUT_KEYS = [
  'mlflow.spanOutputs',
  'output.value',
  'traceloop.entity.output',
  'gen_ai.output.messages',
  'ai.response.text',
  'ai.response.object',
  'langfuse.observation.output',
  'ai.toolCall.result',
  'gen_ai.tool.call.result',
];

function firstAttr(span: SpanData, keys: string[]): AttrValue | undefined {
  for (const k of keys) {
    const v = span.attributes[k];
    if (v !== undefined && v !== null && v !== '') return v;
  }
  return undefined;
}

const STATUS_NAMES = ['UNSET', 'OK', 'ERROR'];

/**
 * The `{{ trace }}` outline: one line per span in call-tree order, indented by depth, with its
 * type, duration and status, then its truncated inputs and outputs.
 */
export function renderTraceOutline(
  view: TraceView,
  opts: { maxValueChars?: number; maxChars?: number } = {},
): string {
  const maxValue = opts.maxValueChars ?? 500;
  const maxChars = opts.maxChars ?? 20_000;
  const typeOf = new Map<SpanData, string>();
  view.spans.forEach((s, i) => {
    typeOf.set(s, view.spanTypes?.[i] ?? 'UNKNOWN');
  });
  const byId = new Map(view.spans.map((s) => [s.spanId, s]));
  const children = new Map<string, SpanData[]>();
  const roots: SpanData[] = [];
  for (const s of view.spans) {
    if (s.parentSpanId !== '' && byId.has(s.parentSpanId) && s.parentSpanId !== s.spanId) {
      const list = children.get(s.parentSpanId) ?? [];
      list.push(s);
      children.set(s.parentSpanId, list);
    } else {
      roots.push(s);
    }
  }
  const lines: string[] = [
    `trace ${view.traceId} "${view.name}" status=${view.status} duration=${fmtMs(view.executionTimeMs)} spans=${view.spans.length}`,
  ];
  let size = lines[0]!.length;
  let omitted = 0;
  const seen = new Set<SpanData>();
  const visit = (span: SpanData, depth: number): void => {
    if (seen.has(span)) return;
    seen.add(span);
    const pad = '  '.repeat(depth);
    const status = STATUS_NAMES[span.status.code] ?? String(span.status.code);
    const spanLines = [
      `${pad}- ${span.name} [${typeOf.get(span) ?? 'UNKNOWN'}] ${fmtMs(span.endTimeMs - span.startTimeMs)} ${status}${span.status.message ? ` (${truncate(span.status.message, 200)})` : ''}`,
    ];
    const input = firstAttr(span, SPAN_INPUT_KEYS);
    if (input !== undefined) spanLines.push(`${pad}  inputs: ${oneLine(valueText(input, maxValue))}`);
    const output = firstAttr(span, SPAN_OUTPUT_KEYS);
    if (output !== undefined) spanLines.push(`${pad}  outputs: ${oneLine(valueText(output, maxValue))}`);
    const chunk = spanLines.join('\n');
    if (size + chunk.length + 1 > maxChars) omitted++;
    else {
      lines.push(chunk);
      size += chunk.length + 1;
    }
    for (const c of children.get(span.spanId) ?? []) visit(c, depth + 1);
  };
  for (const r of roots) visit(r, 0);
  if (omitted > 0) lines.push(`(${omitted} more spans omitted)`);
  return lines.join('\n');
}

function fmtMs(ms: number): string {
  return `${Math.round(ms * 10) / 10}ms`;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ');
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
    })),
    links: span.links.map((l) => ({
      traceId: l.traceId,
      spanId: l.spanId,
      attributes: toJsonSafe(l.attributes),
    })),
    scope: { name: span.scope.name, version: span.scope.version },
  };
}

/**
 * The code scorers' `ctx.trace`: the TraceView's fields as JSON-safe data. Spans leave out
 * their resource (it is `trace.resource`) and status codes become UNSET/OK/ERROR.
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
    rootSpan: spanJson(view.rootSpan, rootIndex >= 0 ? view.spanTypes?.[rootIndex] : undefined),
    spans: view.spans.map((s, i) => spanJson(s, view.spanTypes?.[i])),
  };
}
