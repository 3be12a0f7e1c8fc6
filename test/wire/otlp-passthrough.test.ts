// Over the wire, with the real OpenTelemetry JS SDK exporters as clients: every span, log
// record and metric sent to scorecar arrives downstream exactly once and unchanged, and every
// trace is handed to the next stage exactly once.
import { context, type Span, trace } from '@opentelemetry/api';
import { OTLPLogExporter as GrpcLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as JsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as ProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import {
  BatchSpanProcessor,
  InMemorySpanExporter,
  NodeTracerProvider,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSpan, protobufToJson, type SpanData } from '../../src/wire/index.ts';
import { type CaptureServer, startGrpcCapture, startHttpCapture } from '../support/capture.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';
import { tracesFromRequest } from '../../src/assembly/index.ts';
import { buildTraceView } from '../../src/genai/index.ts';

const TRACES = 1000;

/** A small RAG-style GenAI trace: chain root -> retriever, LLM (-> tool). */
function emitTrace(tracer: ReturnType<NodeTracerProvider['getTracer']>, i: number): void {
  const question = `question ${i}: where is my order #${i}?`;
  const root: Span = tracer.startSpan('chat_pipeline', {
    attributes: {
      'mlflow.spanType': '"CHAIN"',
      'mlflow.spanInputs': JSON.stringify({ question }),
      'mlflow.spanOutputs': JSON.stringify(`answer ${i}`),
      'session.id': `session-${i % 7}`,
      'app.flags': ['a', 'b'],
      'app.score': 0.25 + i,
      'app.ok': i % 2 === 0,
    },
  });
  const ctx = trace.setSpan(context.active(), root);
  const ret = tracer.startSpan('retrieve', { attributes: { 'mlflow.spanType': '"RETRIEVER"' } }, ctx);
  ret.setAttribute('mlflow.spanInputs', JSON.stringify({ query: question }));
  ret.setAttribute(
    'mlflow.spanOutputs',
    JSON.stringify([{ page_content: `doc ${i}`, metadata: { doc_uri: `kb://${i}` } }]),
  );
  ret.end();
  const llm = tracer.startSpan(
    'chat gpt-4.1-mini',
    {
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.request.model': 'gpt-4.1-mini',
        'gen_ai.usage.input_tokens': 100 + i,
        'gen_ai.usage.output_tokens': 20,
      },
    },
    ctx,
  );
  if (i % 3 === 0) {
    const tool = tracer.startSpan('lookup_order', { attributes: { 'mlflow.spanType': '"TOOL"', 'order.id': i } }, trace.setSpan(ctx, llm));
    tool.addEvent('lookup', { hit: true });
    tool.end();
  }
  llm.end();
  if (i % 10 === 0) root.setStatus({ code: 2, message: 'failed' });
  root.end();
}

const hrToNs = (t: [number, number]): bigint => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);

function normalise(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalise);
  return v;
}

async function sendAll(exporter: SpanExporter, n: number) {
  const memory = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'chat-app', 'mlflow.experimentId': 'exp-7' }),
    spanProcessors: [
      new BatchSpanProcessor(exporter, { maxQueueSize: 20_000, maxExportBatchSize: 256, scheduledDelayMillis: 20 }),
      new SimpleSpanProcessor(memory),
    ],
  });
  const tracer = provider.getTracer('genai-app', '1.2.3');
  for (let i = 0; i < n; i++) emitTrace(tracer, i);
  await provider.forceFlush();
  const sent = memory.getFinishedSpans();
  await provider.shutdown();
  return sent;
}

function expectSameSpans(sent: ReadableSpan[], received: Map<string, SpanData>): void {
  expect(received.size).toBe(sent.length);
  for (const s of sent) {
    const r = received.get(s.spanContext().spanId);
    expect(r, `span ${s.name} ${s.spanContext().spanId}`).toBeDefined();
    expect(r!.traceId).toBe(s.spanContext().traceId);
    expect(r!.parentSpanId).toBe(s.parentSpanContext?.spanId ?? '');
    expect(r!.name).toBe(s.name);
    expect(r!.startTimeUnixNano).toBe(hrToNs(s.startTime));
    expect(r!.endTimeUnixNano).toBe(hrToNs(s.endTime));
    expect(r!.status.code).toBe(s.status.code);
    expect(r!.attributes).toEqual(Object.fromEntries(Object.entries(s.attributes).map(([k, v]) => [k, normalise(v)])));
    expect(r!.events.map((e) => [e.name, e.attributes])).toEqual(s.events.map((e) => [e.name, e.attributes ?? {}]));
    expect(r!.scope).toMatchObject({ name: 'genai-app', version: '1.2.3' });
    expect(r!.resource['mlflow.experimentId']).toBe('exp-7');
  }
}

function decodeDownstream(capture: CaptureServer): { spans: Map<string, SpanData>; count: number } {
  const spans = new Map<string, SpanData>();
  let count = 0;
  for (const req of capture.requests.filter((r) => r.signal === 'traces')) {
    for (const t of tracesFromRequest(req.body)) {
      t.spans.forEach((b, i) => {
        count++;
        const d = decodeSpan(b, t.resources[i]!, t.scopes[i]!);
        spans.set(d.spanId, d);
      });
    }
  }
  return { spans, count };
}

describe.each([
  ['OTLP/gRPC', 'grpc'],
  ['OTLP/HTTP protobuf', 'proto'],
  ['OTLP/HTTP JSON', 'json'],
] as const)('pass-through with the SDK %s exporter', (_label, kind) => {
  let capture: CaptureServer;
  let sc: TestScorecar;

  beforeAll(async () => {
    // The gRPC client case also uses a gRPC downstream, so both exporter transports are covered.
    capture = kind === 'grpc' ? await startGrpcCapture() : await startHttpCapture();
    sc = await startScorecar(`exporters: {otlp: {endpoint: "${capture.url}"}}\nassembler: {settleMs: 300}`, { captureTraces: true });
  });
  afterAll(async () => {
    await sc.stop();
    await capture.close();
  });

  it(`delivers every span of ${TRACES} GenAI traces exactly once, unchanged, and hands each trace on once`, async () => {
    const exporter =
      kind === 'grpc'
        ? new GrpcTraceExporter({ url: `http://${sc.grpcUrl}` })
        : kind === 'proto'
          ? new ProtoTraceExporter({ url: `${sc.httpUrl}/v1/traces` })
          : new JsonTraceExporter({ url: `${sc.httpUrl}/v1/traces` });
    const sent = await sendAll(exporter, TRACES);
    const expectedSpans = sent.length;
    await waitFor(() => capture.spanIds().length >= expectedSpans, 30_000, 'spans downstream');
    await waitFor(() => sc.traces.length >= TRACES, 30_000, 'completed traces');
    // Nothing buffered, queued or in flight any more: anything extra would have arrived by now.
    await sc.app.whenIdle();
    const { spans, count } = decodeDownstream(capture);
    expect(count).toBe(expectedSpans); // exactly once: no duplicates
    expectSameSpans(sent, spans);
    // Each trace handed to the next stage once, with all of its spans.
    const ids = sc.traces.map((t) => t.traceId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(TRACES);
    const perTrace = new Map<string, number>();
    for (const s of sent) perTrace.set(s.spanContext().traceId, (perTrace.get(s.spanContext().traceId) ?? 0) + 1);
    for (const t of sc.traces) {
      expect(t.spans.length).toBe(perTrace.get(t.traceId));
      expect(t.hasRoot).toBe(true);
      expect(t.reason).toBe('root');
      // The GenAI view the next stage reads.
      const view = buildTraceView(t, { resolution: sc.app.config.experiments.resolution, defaultExperiment: 'default' });
      const i = Number(/question (\d+)/.exec(JSON.stringify(view.inputs))?.[1]);
      expect(view.inputs).toEqual({ question: `question ${i}: where is my order #${i}?` });
      expect(view.outputs).toBe(`answer ${i}`);
      expect(view.experimentId).toBe('exp-7');
      expect(view.name).toBe('chat_pipeline');
      expect(view.status).toBe(i % 10 === 0 ? 'ERROR' : 'OK');
      expect(view.sessionId).toBe(`session-${i % 7}`);
      expect(view.retrievals).toHaveLength(1);
      expect(view.retrievals[0]!.documents.map((d) => d.content)).toEqual([`doc ${i}`]);
      expect(view.tokenUsage.inputTokens).toBe(100 + i);
    }
    expect(await sc.metric('scorecar_receiver_accepted_items_total', { signal: 'traces' })).toBe(expectedSpans);
    expect(await sc.metric('scorecar_exporter_sent_items_total', { signal: 'traces' })).toBe(expectedSpans);
    expect(await sc.metric('scorecar_exporter_dropped_items_total')).toBe(0);
  });
});

describe('logs and metrics pass through unchanged', () => {
  it('forwards SDK logs (gRPC, protobuf, JSON) and metrics to an HTTP and a gRPC downstream', async () => {
    for (const downstream of ['http', 'grpc'] as const) {
      const capture = downstream === 'http' ? await startHttpCapture() : await startGrpcCapture();
      const sc = await startScorecar(`exporters: {otlp: {endpoint: "${capture.url}"}}`);
      try {
        const exporters = [
          new GrpcLogExporter({ url: `http://${sc.grpcUrl}` }),
          new ProtoLogExporter({ url: `${sc.httpUrl}/v1/logs` }),
          new JsonLogExporter({ url: `${sc.httpUrl}/v1/logs` }),
        ];
        for (const [k, exporter] of exporters.entries()) {
          const lp = new LoggerProvider({
            resource: resourceFromAttributes({ 'service.name': `logs-${k}` }),
            processors: [new SimpleLogRecordProcessor({ exporter })],
          });
          const logger = lp.getLogger('app-logs', '2.0');
          for (let i = 0; i < 5; i++) {
            logger.emit({ body: `line ${i}`, severityNumber: 9, severityText: 'INFO', attributes: { i, via: k }, eventName: i === 0 ? 'app.start' : undefined });
          }
          await lp.forceFlush();
          await lp.shutdown();
        }
        const mp = new MeterProvider({
          resource: resourceFromAttributes({ 'service.name': 'metrics-app' }),
          readers: [new PeriodicExportingMetricReader({ exporter: new ProtoMetricExporter({ url: `${sc.httpUrl}/v1/metrics` }), exportIntervalMillis: 60_000 })],
        });
        const meter = mp.getMeter('app-metrics');
        meter.createCounter('requests').add(3, { route: '/chat' });
        meter.createHistogram('latency_ms').record(12.5);
        await mp.forceFlush();
        await mp.shutdown();

        await waitFor(() => capture.requests.filter((r) => r.signal === 'logs').length > 0 && capture.requests.some((r) => r.signal === 'metrics'), 10_000, 'logs and metrics downstream');
        await waitFor(async () => (await sc.metric('scorecar_exporter_sent_items_total', { signal: 'logs' })) === 15, 10_000, 'all logs sent');
        const logs = capture.requests
          .filter((r) => r.signal === 'logs')
          .flatMap((r) => (protobufToJson('logs', r.body).resourceLogs as Array<{ resource: { attributes: unknown[] }; scopeLogs: Array<{ scope: { name: string }; logRecords: Array<{ body: { stringValue: string }; attributes: Array<{ key: string; value: Record<string, unknown> }>; severityNumber: number; eventName?: string }> }> }>));
        const records = logs.flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords.map((lr) => ({ scope: sl.scope.name, lr }))));
        expect(records).toHaveLength(15);
        for (const { scope, lr } of records) {
          expect(scope).toBe('app-logs');
          expect(lr.severityNumber).toBe(9);
          expect(lr.body.stringValue).toMatch(/^line \d$/);
        }
        expect(records.filter(({ lr }) => lr.eventName === 'app.start')).toHaveLength(3);
        const metrics = capture.requests
          .filter((r) => r.signal === 'metrics')
          .flatMap((r) => (protobufToJson('metrics', r.body).resourceMetrics as Array<{ scopeMetrics: Array<{ metrics: Array<{ name: string }> }> }>));
        const names = metrics.flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics.map((m) => m.name))).sort();
        // forceFlush and shutdown each export the (cumulative) metrics once.
        expect(names).toEqual(['latency_ms', 'latency_ms', 'requests', 'requests']);
        expect(await sc.metric('scorecar_receiver_accepted_items_total', { signal: 'metrics' })).toBe(4);
        expect(await sc.metric('scorecar_exporter_sent_items_total', { signal: 'metrics' })).toBe(4);
      } finally {
        await sc.stop();
        await capture.close();
      }
    }
  });
});
