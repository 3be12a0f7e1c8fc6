// Renderings of a TraceView as text for judge prompts: values as text or compact JSON,
// truncated; the `{{ trace }}` outline of spans with name, type, duration, status and truncated
// inputs/outputs. (The JSON form code scorers read is genai's traceViewJson.)
import { type TraceView, toJsonSafe } from '../../genai/index.ts';
import type { AttrValue, SpanData } from '../../wire/index.ts';

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
