// Hand-built TraceViews for tests, benches and the demo: a root span carrying the inputs and
// outputs, one RETRIEVER child span per retrieval, and any extra spans, with deterministic ids.
import { createHash } from 'node:crypto';
import type { Attributes, SpanData } from '../../src/wire/index.ts';
import type { Expectations, RetrievedDocument, TraceStatus, TraceView } from '../../src/genai/index.ts';

export interface TestSpan {
  spanId?: string;
  /** Defaults to the root span. */
  parentSpanId?: string;
  name: string;
  /** MLflow span type (LLM, TOOL, RETRIEVER, ...). */
  type?: string;
  attributes?: Attributes;
  startOffsetMs?: number;
  durationMs?: number;
  status?: 'UNSET' | 'OK' | 'ERROR';
  statusMessage?: string;
}

export interface TestViewInput {
  /** Any string; hashed into a 32-hex-digit trace id unless it already is one. */
  traceId?: string;
  experimentId?: string;
  name?: string;
  status?: TraceStatus;
  inputs?: unknown;
  outputs?: unknown;
  expectations?: Expectations;
  retrievals?: Array<{
    spanId?: string;
    spanName?: string;
    query?: unknown;
    documents: Array<string | RetrievedDocument>;
  }>;
  spans?: TestSpan[];
  startTimeMs?: number;
  durationMs?: number;
  tags?: Record<string, string>;
}

function hexId(seed: string, digits: number): string {
  return createHash('sha256').update(seed).digest('hex').slice(0, digits);
}

const STATUS_CODE = { UNSET: 0, OK: 1, ERROR: 2 } as const;

function span(
  traceId: string,
  spanId: string,
  parentSpanId: string,
  name: string,
  startMs: number,
  durationMs: number,
  attributes: Attributes,
  status: { code: number; message: string },
  resource: Attributes,
): SpanData {
  const startNs = BigInt(Math.round(startMs * 1e6));
  const endNs = startNs + BigInt(Math.round(durationMs * 1e6));
  return {
    traceId,
    spanId,
    parentSpanId,
    traceState: '',
    flags: 1,
    name,
    kind: 1,
    startTimeUnixNano: startNs,
    endTimeUnixNano: endNs,
    startTimeMs: startMs,
    endTimeMs: startMs + durationMs,
    attributes,
    events: [],
    links: [],
    status,
    resource,
    scope: { name: 'scorecar-testkit', version: '0', attributes: {} },
    experimentHeader: undefined,
  };
}

export function makeTraceView(input: TestViewInput = {}): TraceView {
  const seed = input.traceId ?? 'trace';
  const traceId = /^[0-9a-f]{32}$/.test(seed) ? seed : hexId(seed, 32);
  const start = input.startTimeMs ?? 1_700_000_000_000;
  const duration = input.durationMs ?? 1200;
  const resource: Attributes = { 'service.name': input.experimentId ?? 'test-app' };
  const rootId = hexId(`${traceId}/root`, 16);
  const rootAttrs: Attributes = { 'mlflow.spanType': '"CHAIN"' };
  if (input.inputs !== undefined) rootAttrs['mlflow.spanInputs'] = JSON.stringify(input.inputs);
  if (input.outputs !== undefined) rootAttrs['mlflow.spanOutputs'] = JSON.stringify(input.outputs);
  const status = input.status ?? 'OK';
  const root = span(
    traceId,
    rootId,
    '',
    input.name ?? 'agent',
    start,
    duration,
    rootAttrs,
    { code: STATUS_CODE[status], message: '' },
    resource,
  );
  const spans: SpanData[] = [root];
  const types: string[] = ['CHAIN'];
  const retrievals = (input.retrievals ?? []).map((r, i) => {
    const spanId = r.spanId ?? hexId(`${traceId}/retriever/${i}`, 16);
    const spanName = r.spanName ?? `retrieve_${i + 1}`;
    const documents: RetrievedDocument[] = r.documents.map((d) =>
      typeof d === 'string' ? { content: d } : d,
    );
    const attrs: Attributes = {
      'mlflow.spanType': '"RETRIEVER"',
      'mlflow.spanOutputs': JSON.stringify(
        documents.map((d) => ({ page_content: d.content, metadata: d.metadata ?? {} })),
      ),
    };
    if (r.query !== undefined) attrs['mlflow.spanInputs'] = JSON.stringify(r.query);
    spans.push(
      span(
        traceId,
        spanId,
        rootId,
        spanName,
        start + 10 + i * 50,
        40,
        attrs,
        { code: 1, message: '' },
        resource,
      ),
    );
    types.push('RETRIEVER');
    const out: TraceView['retrievals'][number] = { spanId, spanName, documents };
    if (r.query !== undefined) out.query = r.query;
    return out;
  });
  (input.spans ?? []).forEach((s, i) => {
    spans.push(
      span(
        traceId,
        s.spanId ?? hexId(`${traceId}/span/${i}`, 16),
        s.parentSpanId ?? rootId,
        s.name,
        start + (s.startOffsetMs ?? 100 + i * 10),
        s.durationMs ?? 100,
        s.attributes ?? {},
        { code: STATUS_CODE[s.status ?? 'UNSET'], message: s.statusMessage ?? '' },
        resource,
      ),
    );
    types.push(s.type ?? 'UNKNOWN');
  });
  // Keep `spans` ordered by start time, as the view builder does, with types alongside.
  const order = spans.map((_s, i) => i).sort((a, b) => spans[a]!.startTimeMs - spans[b]!.startTimeMs);
  return {
    traceId,
    experimentId: input.experimentId ?? 'test-app',
    rootSpan: root,
    spans: order.map((i) => spans[i]!),
    spanTypes: order.map((i) => types[i]!),
    name: root.name,
    status,
    startTimeMs: start,
    endTimeMs: start + duration,
    executionTimeMs: duration,
    tokenUsage: {},
    inputs: input.inputs,
    outputs: input.outputs,
    retrievals,
    expectations: input.expectations ?? {},
    tags: input.tags ?? {},
    metadata: {},
    conventions: ['mlflow'],
    resource,
  };
}

/** The assessments of one runner job, without their typed usage (most tests look at these only). */
export async function runAssessments(
  runner: {
    run(
      job: never,
      signal?: AbortSignal,
    ): Promise<ReadonlyArray<{ assessment: import('../../src/assessments/index.ts').Assessment }>>;
  },
  job: unknown,
  signal?: AbortSignal,
): Promise<import('../../src/assessments/index.ts').Assessment[]> {
  return (await runner.run(job as never, signal)).map((s) => s.assessment);
}
