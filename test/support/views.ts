// Synthetic TraceView builders for unit tests that need a trace view without recording one:
// every field gets a plain default, so a test states only what it is about.
import type { TraceStatus, TraceView } from '../../src/genai/types.ts';
import type { Attributes, SpanData, SpanEventData } from '../../src/wire/decode.ts';

export interface SpanSpec {
  name?: string;
  /** MLflow span type reported in view.spanTypes (default UNKNOWN). */
  type?: string;
  spanId?: string;
  /** '' for a root span; defaults to the first span's id for every span but the first. */
  parentSpanId?: string;
  attributes?: Attributes;
  /** OTel status by name or code. */
  status?: 'UNSET' | 'OK' | 'ERROR' | number;
  statusMessage?: string;
  /** Offsets from the trace start, in milliseconds. */
  startOffsetMs?: number;
  durationMs?: number;
  events?: { name: string; attributes?: Attributes }[];
  resource?: Attributes;
}

export interface ViewSpec {
  traceId?: string;
  experimentId?: string;
  /** Trace name; defaults to the root span's name. */
  name?: string;
  status?: TraceStatus;
  startTimeMs?: number;
  executionTimeMs?: number;
  /** First entry is the root span; default: one root span named `name` (or 'root'). */
  spans?: SpanSpec[];
  tags?: Record<string, string>;
  metadata?: Record<string, string>;
  sessionId?: string;
  userId?: string;
  inputs?: unknown;
  outputs?: unknown;
  resource?: Attributes;
}

const STATUS_CODES = { UNSET: 0, OK: 1, ERROR: 2 } as const;
const NS_PER_MS = 1_000_000n;

let idCounter = 0;

/** A fresh, valid (non-zero) lowercase hex id of `bytes` bytes. */
export function nextHexId(bytes = 16): string {
  idCounter++;
  return idCounter.toString(16).padStart(bytes * 2, '0');
}

function msToNs(ms: number): bigint {
  const whole = Math.floor(ms);
  return BigInt(whole) * NS_PER_MS + BigInt(Math.round((ms - whole) * 1e6));
}

/** One SpanData; `traceStartMs` anchors the span's offsets. */
export function makeSpan(
  spec: SpanSpec,
  traceId: string,
  traceStartMs: number,
  defaultParent = '',
): SpanData {
  const startMs = traceStartMs + (spec.startOffsetMs ?? 0);
  const endMs = startMs + (spec.durationMs ?? 10);
  const status = spec.status ?? 'UNSET';
  const events: SpanEventData[] = (spec.events ?? []).map((e) => ({
    name: e.name,
    timeUnixNano: msToNs(startMs),
    attributes: e.attributes ?? {},
  }));
  return {
    traceId,
    spanId: spec.spanId ?? nextHexId(8),
    parentSpanId: spec.parentSpanId ?? defaultParent,
    traceState: '',
    flags: 1,
    name: spec.name ?? 'span',
    kind: 1,
    startTimeUnixNano: msToNs(startMs),
    endTimeUnixNano: msToNs(endMs),
    startTimeMs: startMs,
    endTimeMs: endMs,
    attributes: spec.attributes ?? {},
    events,
    links: [],
    status: {
      code: typeof status === 'number' ? status : STATUS_CODES[status],
      message: spec.statusMessage ?? '',
    },
    resource: spec.resource ?? {},
    scope: { name: 'test', version: '0.0.0', attributes: {} },
    experimentHeader: undefined,
  };
}

/** A complete TraceView built from a few stated facts. */
export function makeView(spec: ViewSpec = {}): TraceView {
  const traceId = spec.traceId ?? nextHexId(16);
  const startTimeMs = spec.startTimeMs ?? 1_700_000_000_000;
  const executionTimeMs = spec.executionTimeMs ?? 100;
  const resource = spec.resource ?? { 'service.name': 'test-app' };
  const specs = spec.spans ?? [{ name: spec.name ?? 'root', type: 'CHAIN' }];
  const spans: SpanData[] = [];
  for (const [i, s] of specs.entries()) {
    const parent = i === 0 ? '' : spans[0]!.spanId;
    spans.push(makeSpan({ resource, ...s }, traceId, startTimeMs, parent));
  }
  const rootSpan = spans.find((s) => s.parentSpanId === '') ?? spans[0]!;
  return {
    traceId,
    experimentId: spec.experimentId ?? 'exp-test',
    rootSpan,
    spans,
    spanTypes: specs.map((s) => s.type ?? 'UNKNOWN'),
    name: spec.name ?? rootSpan.name,
    status: spec.status ?? 'OK',
    startTimeMs,
    endTimeMs: startTimeMs + executionTimeMs,
    executionTimeMs,
    sessionId: spec.sessionId,
    userId: spec.userId,
    tokenUsage: {},
    inputs: spec.inputs ?? null,
    outputs: spec.outputs ?? null,
    retrievals: [],
    expectations: {},
    tags: spec.tags ?? {},
    metadata: spec.metadata ?? {},
    conventions: [],
    resource,
  };
}
