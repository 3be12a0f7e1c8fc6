// The deploy tests' app and sink checks: an app instrumented with the OpenTelemetry JS SDK that
// sends GenAI traces (three spans each, with attributes of every type, events and error
// statuses) over OTLP/HTTP, keeping a copy of what it sent; the sink's requests decoded; and the
// comparison of the two (every span once, every field as sent) plus the assessments a
// `response_length` code scorer adds (an evaluation span and a gen_ai.evaluation.result log
// record per trace, on its root span).
import { gunzipSync } from 'node:zlib';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, InMemorySpanExporter, NodeTracerProvider, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { expect } from 'vitest';
import { protobufToJson } from '../../src/wire/index.ts';
import type { CaptureServer } from './capture.ts';

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes?: Array<{ key: string; value: Record<string, unknown> }>;
  events?: Array<{ name: string; timeUnixNano: string }>;
  status?: { code?: number; message?: string };
  /** The resource's service.name. */
  service: unknown;
}

export interface OtlpLog {
  traceId: string;
  spanId: string;
  eventName?: string;
  attributes?: Array<{ key: string; value: Record<string, unknown> }>;
}

export function attrs(kvs: Array<{ key: string; value: Record<string, unknown> }> | undefined): Record<string, unknown> {
  return Object.fromEntries((kvs ?? []).map((kv) => [kv.key, Object.values(kv.value)[0]]));
}

function nanos(t: [number, number]): string {
  return (BigInt(t[0]) * 1_000_000_000n + BigInt(t[1])).toString();
}

export interface Sent {
  spans: ReadableSpan[];
  /** traceId -> the root span's answer (its mlflow.spanOutputs). */
  answers: Map<string, string>;
  /** traceId -> root span id. */
  roots: Map<string, string>;
}

/** Sends `n` GenAI traces to an OTLP/HTTP endpoint with the SDK's protobuf exporter. */
export async function sendGenAiTraces(url: string, serviceName: string, n: number): Promise<Sent> {
  const kept = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    spanProcessors: [new SimpleSpanProcessor(kept), new BatchSpanProcessor(new OTLPTraceExporter({ url }), { scheduledDelayMillis: 50 })],
  });
  const tracer = provider.getTracer('chat-app', '1.0.0');
  const answers = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const answer = `answer ${'x'.repeat(i)}`;
    const root = tracer.startSpan('chat', {
      kind: SpanKind.SERVER,
      attributes: { 'mlflow.spanInputs': JSON.stringify({ question: `question ${i}` }), 'mlflow.spanOutputs': JSON.stringify(answer), 'app.turn': i },
    });
    const ctx = trace.setSpan(context.active(), root);
    const retrieve = tracer.startSpan('retrieve', { attributes: { 'openinference.span.kind': 'RETRIEVER', 'app.docs': ['a', 'b'] } }, ctx);
    retrieve.addEvent('cache.miss', { 'cache.key': `k${i}` });
    retrieve.end();
    const llm = tracer.startSpan(
      'chat gpt-4.1-mini',
      {
        kind: SpanKind.CLIENT,
        attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-4.1-mini', 'gen_ai.usage.input_tokens': 12 + i, 'gen_ai.usage.output_tokens': 3.5 },
      },
      ctx,
    );
    if (i % 5 === 0) llm.setStatus({ code: SpanStatusCode.ERROR, message: 'rate limited once' });
    llm.end();
    root.end();
    answers.set(root.spanContext().traceId, answer);
  }
  await provider.forceFlush();
  const spans = [...kept.getFinishedSpans()]; // before shutdown, which empties the exporter
  await provider.shutdown();
  const roots = new Map(spans.filter((s) => !s.parentSpanContext).map((s) => [s.spanContext().traceId, s.spanContext().spanId]));
  return { spans, answers, roots };
}

/** Everything the sink received so far, decoded (gzip bodies too: Collectors compress). */
export function sinkContents(capture: CaptureServer): { spans: OtlpSpan[]; logs: OtlpLog[] } {
  const spans: OtlpSpan[] = [];
  const logs: OtlpLog[] = [];
  for (const r of capture.requests) {
    const body = r.headers['content-encoding'] === 'gzip' ? gunzipSync(r.body) : r.body;
    if (r.signal === 'traces') {
      for (const rs of protobufToJson('traces', body).resourceSpans as Array<{ resource: { attributes: [] }; scopeSpans: Array<{ spans: OtlpSpan[] }> }>)
        for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, service: attrs(rs.resource.attributes)['service.name'] });
    } else if (r.signal === 'logs') {
      for (const rl of protobufToJson('logs', body).resourceLogs as Array<{ scopeLogs: Array<{ logRecords: OtlpLog[] }> }>)
        for (const sl of rl.scopeLogs) logs.push(...sl.logRecords);
    }
  }
  return { spans, logs };
}

/** Every sent span arrived once and as sent: ids, parent, name, kind, times, attributes, events, status, resource. */
export function expectIntact(sent: Sent, received: OtlpSpan[], serviceName: string): void {
  const app = received.filter((s) => !s.name.startsWith('evaluation '));
  expect(app).toHaveLength(sent.spans.length);
  const byId = new Map(app.map((s) => [s.spanId, s]));
  expect(byId.size).toBe(sent.spans.length);
  for (const s of sent.spans) {
    const r = byId.get(s.spanContext().spanId);
    expect(r, s.name).toBeDefined();
    expect(r!.traceId).toBe(s.spanContext().traceId);
    expect(r!.parentSpanId || undefined).toBe(s.parentSpanContext?.spanId);
    expect(r!.name).toBe(s.name);
    expect(r!.kind).toBe(s.kind + 1); // OTLP's enum counts UNSPECIFIED first
    expect(r!.startTimeUnixNano).toBe(nanos(s.startTime));
    expect(r!.endTimeUnixNano).toBe(nanos(s.endTime));
    const want = Object.fromEntries(
      Object.entries(s.attributes).map(([k, v]) => [
        k,
        // OTLP/JSON: arrays as arrayValue, integers as intValue strings.
        Array.isArray(v) ? { values: v.map((x) => ({ stringValue: x })) } : typeof v === 'number' && Number.isInteger(v) ? String(v) : v,
      ]),
    );
    expect(attrs(r!.attributes)).toEqual(want);
    expect((r!.events ?? []).map((e) => [e.name, e.timeUnixNano])).toEqual(s.events.map((e) => [e.name, nanos(e.time)]));
    expect(r!.status?.code ?? 0).toBe(s.status.code);
    expect(r!.status?.message ?? '').toBe(s.status.message ?? '');
    expect(r!.service).toBe(serviceName);
  }
}

/** One response_length assessment per trace on its root span, as an evaluation span and (when `logs`) a log record. */
export function expectAssessments(sent: Sent, received: { spans: OtlpSpan[]; logs?: OtlpLog[] }): void {
  const evals = received.spans.filter((s) => s.name.startsWith('evaluation '));
  expect(evals).toHaveLength(sent.roots.size);
  expect(new Set(evals.map((s) => s.traceId))).toEqual(new Set(sent.roots.keys()));
  for (const e of evals) {
    expect(e.name).toBe('evaluation response_length');
    expect(e.parentSpanId).toBe(sent.roots.get(e.traceId));
    expect(attrs(e.attributes)['gen_ai.evaluation.score.value']).toBe(sent.answers.get(e.traceId)!.length);
    expect(e.service).toBe('scorecar');
  }
  if (!received.logs) return;
  const results = received.logs.filter((l) => l.eventName === 'gen_ai.evaluation.result');
  expect(results).toHaveLength(sent.roots.size);
  for (const l of results) {
    expect(l.spanId).toBe(sent.roots.get(l.traceId));
    const a = attrs(l.attributes);
    expect(a['gen_ai.evaluation.name']).toBe('response_length');
    expect(a['gen_ai.evaluation.score.value']).toBe(sent.answers.get(l.traceId)!.length);
  }
}
