// Issue 7 over the wire: an app instrumented with the OpenTelemetry JS OpenAI instrumentation
// (GenAI semconv: usage on spans, message content only in gen_ai.* log events) calls the local
// model server and exports with the real OTel SDK exporters to a running scorecar. Its log
// records are exported as they are emitted and its spans only afterwards, so every trace's logs
// reach scorecar before any of its spans. A code scorer reading ctx.inputs / ctx.outputs and a
// guidelines judge then score every trace from that content, and the log records still arrive
// downstream unchanged. A record of a trace a head sampler dropped (sampled flag clear) opens no
// entry.
import { context, trace } from '@opentelemetry/api';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OpenAIInstrumentation } from '@opentelemetry/instrumentation-openai';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { AlwaysOffSampler, BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import OpenAI from 'openai';
import { VERSION as OPENAI_VERSION } from 'openai/version';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ModelServer, startModelServer } from '../../scripts/model-server.ts';
import type { Assessment } from '../../src/assessments/index.ts';
import { protobufToJson } from '../../src/wire/index.ts';
import { type CaptureServer, startHttpCapture } from '../support/capture.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

const N = 12;
const SYSTEM = 'Answer in one short sentence.';
/** Every third question carries a word the model server's judge rule answers "no" to. */
const question = (i: number) => (i % 3 === 0 ? `Question ${i}: is this WRONG?` : `Question ${i}: what is ${i} + ${i}?`);

// Reads the content the view found in the log events: the user messages and the choices' text.
const CODE_SCORER = `(ctx) => JSON.stringify({
  system: ctx.inputs.filter((m) => m.role === 'system').map((m) => m.content),
  user: ctx.inputs.filter((m) => m.role === 'user').map((m) => m.content),
  answer: ctx.outputs.map((c) => c.message.content),
  logs: ctx.trace.spans.reduce((n, s) => n + s.logs.length, 0),
})`;

interface LogJson {
  traceId: string;
  spanId: string;
  timeUnixNano: string;
  body: unknown;
  attributes?: Array<{ key: string; value: unknown }>;
}

describe('GenAI content from log events, over the wire', () => {
  let model: ModelServer;
  let capture: CaptureServer;
  let sc: TestScorecar;
  const assessments: Assessment[] = [];

  beforeAll(async () => {
    model = await startModelServer();
    capture = await startHttpCapture();
    sc = await startScorecar(
      `exporters: {otlp: {endpoint: "${capture.url}"}}
# Logs wait for their spans far longer than this test takes, however busy the machine.
assembler: {settleMs: 300, idleTimeoutMs: 600000}
scoring:
  providers: {openai: {baseUrl: "${model.url}/v1", apiKey: "test-key"}}
  defaultModel: "openai:/scorecar-judge"
scorers:
  - experiment: genai-js-app
    name: content
    definition: {type: code, source: ${JSON.stringify(CODE_SCORER)}}
    sampleRate: 1.0
  - experiment: genai-js-app
    name: sound_answer
    definition: {type: guidelines, guidelines: ["The answer must address the question"]}
    sampleRate: 1.0
`,
      { onAssessment: (a) => assessments.push(a) },
    );
  }, 60_000);
  afterAll(async () => {
    await sc?.stop();
    await capture?.close();
    await model?.close();
  });

  it('scores traces whose content is only in log events sent before their spans; logs pass through unchanged', async () => {
    const resource = resourceFromAttributes({ 'service.name': 'genai-js-app' });
    // Spans wait in the batch processor until forceFlush: nothing else exports them.
    const tracerProvider = new NodeTracerProvider({
      resource,
      spanProcessors: [
        new BatchSpanProcessor(new OTLPTraceExporter({ url: `${sc.httpUrl}/v1/traces` }), {
          scheduledDelayMillis: 3_600_000,
          maxExportBatchSize: 10_000,
          maxQueueSize: 10_000,
        }),
      ],
    });
    // The global context manager carries the app's root span into the instrumented call.
    tracerProvider.register();
    const sentLogs = new InMemoryLogRecordExporter();
    const loggerProvider = new LoggerProvider({
      resource,
      processors: [
        new SimpleLogRecordProcessor({ exporter: new OTLPLogExporter({ url: `${sc.httpUrl}/v1/logs` }) }),
        new SimpleLogRecordProcessor({ exporter: sentLogs }),
      ],
    });
    const instrumentation = new OpenAIInstrumentation({ captureMessageContent: true });
    instrumentation.setTracerProvider(tracerProvider);
    instrumentation.setLoggerProvider(loggerProvider);
    instrumentation.setMeterProvider(new MeterProvider());
    // An ES module import never passes the require hook: apply the instrumentation's own patch to
    // the loaded module, as its hook would (as scripts/record-fixtures/apps/semconv.ts does).
    for (const def of instrumentation.getModuleDefinitions()) def.patch?.({ OpenAI }, OPENAI_VERSION);
    const client = new OpenAI({ baseURL: `${model.url}/v1`, apiKey: 'test-key' });
    const tracer = tracerProvider.getTracer('genai-js-app');
    const turns = new Map<string, { i: number; answer: string; rootSpanId: string }>();
    try {
      for (let i = 0; i < N; i++) {
        const root = tracer.startSpan('answer-question');
        const answer = await context.with(trace.setSpan(context.active(), root), async () => {
          const r = await client.chat.completions.create({
            model: 'scorecar-judge',
            messages: [
              { role: 'system', content: SYSTEM },
              { role: 'user', content: question(i) },
            ],
          });
          return r.choices[0]!.message.content ?? '';
        });
        root.end();
        turns.set(root.spanContext().traceId, { i, answer, rootSpanId: root.spanContext().spanId });
      }
      await loggerProvider.forceFlush();
      // system + user message + choice per call: all at scorecar before any span was sent.
      const emitted = sentLogs.getFinishedLogRecords();
      expect(emitted).toHaveLength(3 * N);
      await waitFor(async () => (await sc.metric('scorecar_receiver_accepted_items_total', { signal: 'logs', transport: 'http' })) === 3 * N, 20_000, 'logs at scorecar');
      expect(await sc.metric('scorecar_receiver_accepted_items_total', { signal: 'traces' })).toBe(0);
      expect(await sc.metric('scorecar_assembler_log_records_total', { outcome: 'buffered' })).toBe(3 * N);
      expect(sc.app.pipeline.assembler.traceCount).toBe(N);

      await tracerProvider.forceFlush();
      await waitFor(() => assessments.length >= 2 * N, 60_000, `${2 * N} assessments`);

      expect(assessments).toHaveLength(2 * N);
      // Each trace completed once, by its root, with the records that opened it.
      expect(await sc.metric('scorecar_assembler_traces_completed_total', { reason: 'root' })).toBe(N);
      expect(sc.app.pipeline.assembler.traceCount).toBe(0);
      const code = assessments.filter((a) => a.scorer.name === 'content');
      const judge = assessments.filter((a) => a.scorer.name === 'sound_answer');
      expect(new Set(code.map((a) => a.traceId))).toEqual(new Set(turns.keys()));
      expect(new Set(judge.map((a) => a.traceId))).toEqual(new Set(turns.keys()));
      for (const a of code) {
        const turn = turns.get(a.traceId)!;
        expect(a.error).toBeUndefined();
        expect(a.spanId).toBe(turn.rootSpanId);
        expect(JSON.parse(a.value as string)).toEqual({
          system: [SYSTEM],
          user: [question(turn.i)],
          answer: [turn.answer],
          logs: 3,
        });
      }
      // The judge read the request from the log events too (before: MISSING_INPUT): its verdict
      // follows the question's marker word.
      for (const a of judge) {
        expect(a.error).toBeUndefined();
        expect(a.value).toBe(turns.get(a.traceId)!.i % 3 === 0 ? 'no' : 'yes');
      }
      expect(await sc.metric('scorecar_assembler_log_records_total', { outcome: 'late' })).toBe(0);

      // A trace an upstream head sampler dropped: the SDK still stamps its log records with the
      // trace id (sampled flag clear), but no span will ever come, so they open no entry.
      const headSampler = new NodeTracerProvider({ resource, sampler: new AlwaysOffSampler() });
      const dropped = headSampler.getTracer('genai-js-app').startSpan('answer-question');
      expect(dropped.spanContext().traceId).not.toMatch(/^0+$/);
      loggerProvider.getLogger('genai-js-app').emit({
        eventName: 'gen_ai.user.message',
        body: { content: 'never traced' },
        context: trace.setSpan(context.active(), dropped),
      });
      dropped.end();
      await loggerProvider.forceFlush();
      await waitFor(async () => (await sc.metric('scorecar_receiver_accepted_items_total', { signal: 'logs', transport: 'http' })) === 3 * N + 1, 20_000, 'the unsampled record');
      expect(await sc.metric('scorecar_assembler_log_records_total', { outcome: 'unsampled' })).toBe(1);
      expect(await sc.metric('scorecar_assembler_log_records_total', { outcome: 'buffered' })).toBe(3 * N);
      expect(sc.app.pipeline.assembler.traceCount).toBe(0);
      await headSampler.shutdown();

      // Downstream: every log record exactly once, as the app emitted it.
      await waitFor(async () => (await sc.metric('scorecar_exporter_sent_items_total', { signal: 'logs' })) >= 3 * N + 1, 20_000, 'logs downstream');
      const received = capture.requests
        .filter((r) => r.signal === 'logs')
        .flatMap((r) => {
          const json = protobufToJson('logs', r.body) as {
            resourceLogs: Array<{ resource: unknown; scopeLogs: Array<{ scope: { name: string }; logRecords: LogJson[] }> }>;
          };
          return json.resourceLogs.flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords.map((lr) => ({ scope: sl.scope.name, lr }))));
        });
      // Only the app's records: scorecar's own gen_ai.evaluation.result records are its assessments.
      const appLogs = received.filter((r) => r.scope !== 'scorecar');
      expect(appLogs).toHaveLength(3 * N + 1);
      const key = (traceId: string, spanId: string, name: unknown, body: unknown) => JSON.stringify([traceId, spanId, name, body]);
      const fromApp = sentLogs.getFinishedLogRecords().map((l) =>
        key(l.spanContext!.traceId, l.spanContext!.spanId, l.attributes['event.name'] ?? l.eventName, l.body),
      );
      const downstream = appLogs.map(({ lr }) => {
        const attrs = Object.fromEntries((lr.attributes ?? []).map((a) => [a.key, a.value]));
        const name = (attrs['event.name'] as { stringValue?: string } | undefined)?.stringValue ?? (lr as { eventName?: string }).eventName;
        return key(lr.traceId, lr.spanId, name, plainBody(lr.body));
      });
      expect(downstream.sort()).toEqual(fromApp.sort());
    } finally {
      instrumentation.disable();
      trace.disable();
      context.disable();
      await tracerProvider.shutdown();
      await loggerProvider.shutdown();
    }
  }, 120_000);
});

/** An OTLP/JSON AnyValue as the plain value the SDK was given. */
function plainBody(v: unknown): unknown {
  const a = v as Record<string, unknown>;
  if (a === undefined || a === null) return undefined;
  if ('stringValue' in a) return a.stringValue;
  if ('intValue' in a) return Number(a.intValue);
  if ('doubleValue' in a) return a.doubleValue;
  if ('boolValue' in a) return a.boolValue;
  if ('arrayValue' in a) return ((a.arrayValue as { values?: unknown[] }).values ?? []).map(plainBody);
  if ('kvlistValue' in a) {
    const values = (a.kvlistValue as { values?: Array<{ key: string; value: unknown }> }).values ?? [];
    return Object.fromEntries(values.map((kv) => [kv.key, plainBody(kv.value)]));
  }
  return undefined;
}
