// Issue 4 end to end over the wire: an app instrumented with the real OpenTelemetry SDK sends
// 500 traces through scorecar; a code scorer at rate 1.0 and a guidelines judge at rate 0.3
// (against the local model server) produce exactly one code assessment per trace and exactly
// one judge assessment per trace of the deterministic 30% sample — downstream as a log event
// and an evaluation span with the right trace and span ids, in the store, and in the metrics.
import { context, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ModelServer, startModelServer } from '../../scripts/model-server.ts';
import { tracesFromRequest } from '../../src/assembly/index.ts';
import type { Assessment } from '../../src/assessments/index.ts';
import { decodeSpan, protobufToJson } from '../../src/wire/index.ts';
import { isSelected } from '../../src/select/index.ts';
import { type CaptureServer, startHttpCapture } from '../support/capture.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

const N = 500;
const SALT = 'scorecar/sampling/v1';

describe('scoring end to end', () => {
  let model: ModelServer;
  let capture: CaptureServer;
  let sc: TestScorecar;
  const assessments: Assessment[] = [];
  const roots = new Map<string, string>(); // traceId -> root span id
  const index = new Map<string, number>(); // traceId -> i

  beforeAll(async () => {
    model = await startModelServer();
    capture = await startHttpCapture();
    sc = await startScorecar(
      `exporters: {otlp: {endpoint: "${capture.url}"}}
assembler: {settleMs: 200}
scoring:
  providers: {openai: {baseUrl: "${model.url}/v1", apiKey: "test-key"}}
  defaultModel: "openai:/scorecar-judge"
scorers:
  - experiment: e2e
    name: answer_length
    definition: {type: code, source: "(ctx) => String(ctx.outputs ?? '').length", aggregations: [mean, max, p90]}
    sampleRate: 1.0
  - experiment: e2e
    name: is_english
    definition: {type: guidelines, guidelines: ["The response must be in English"]}
    sampleRate: 0.3
`,
      { onAssessment: (a) => assessments.push(a) },
    );
  }, 60_000);
  afterAll(async () => {
    await sc?.stop();
    await capture?.close();
    await model?.close();
  });

  it('scores every trace with the code scorer and exactly the 30% sample with the judge', async () => {
    const provider = new NodeTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'chat-app', 'mlflow.experimentId': 'e2e' }),
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${sc.httpUrl}/v1/traces` }), { maxQueueSize: 10_000, scheduledDelayMillis: 20 })],
    });
    const tracer = provider.getTracer('chat-app');
    for (let i = 0; i < N; i++) {
      const root = tracer.startSpan('chat', {
        attributes: {
          'mlflow.spanInputs': JSON.stringify({ question: `question ${i}` }),
          // Every 4th answer carries a marker the model server judges as failing the guideline.
          'mlflow.spanOutputs': JSON.stringify(i % 4 === 0 ? `WRONG answer ${i}` : `answer number ${i}`),
        },
      });
      const child = tracer.startSpan('llm', {}, trace.setSpan(context.active(), root));
      child.end();
      root.end();
      roots.set(root.spanContext().traceId, root.spanContext().spanId);
      index.set(root.spanContext().traceId, i);
    }
    await provider.forceFlush();
    await provider.shutdown();

    const sampled = [...roots.keys()].filter((id) => isSelected(id, 0.3, SALT));
    expect(sampled.length).toBeGreaterThan(100);
    const expected = N + sampled.length;
    await waitFor(() => assessments.length >= expected, 60_000, `${expected} assessments`);
    await sc.app.whenIdle(); // every trace completed and scored: no extra ones may follow
    expect(assessments).toHaveLength(expected);

    const code = assessments.filter((a) => a.scorer.name === 'answer_length');
    const judge = assessments.filter((a) => a.scorer.name === 'is_english');
    expect(new Set(code.map((a) => a.traceId))).toEqual(new Set(roots.keys()));
    expect(code).toHaveLength(N);
    expect(new Set(judge.map((a) => a.traceId))).toEqual(new Set(sampled));
    expect(judge).toHaveLength(sampled.length);
    for (const a of assessments) {
      expect(a.spanId).toBe(roots.get(a.traceId));
      expect(a.error).toBeUndefined();
      expect(a.experimentId).toBe('e2e');
    }
    for (const a of code) {
      expect(a.source).toEqual({ type: 'CODE', id: 'answer_length' });
      expect(a.sampleRate).toBe(1);
      expect(typeof a.value).toBe('number');
    }
    for (const a of judge) {
      expect(a.source.type).toBe('LLM_JUDGE');
      expect(a.sampleRate).toBe(0.3);
      // The model server answers "no" exactly for the answers carrying its marker word.
      expect(a.value).toBe(index.get(a.traceId)! % 4 === 0 ? 'no' : 'yes');
      expect(a.rationale).toBeTruthy();
      expect(Number(a.metadata['scorecar.usage.input_tokens'])).toBeGreaterThan(0);
    }
    for (const a of code) {
      const i = index.get(a.traceId)!;
      expect(a.value).toBe((i % 4 === 0 ? `WRONG answer ${i}` : `answer number ${i}`).length);
    }
    expect(model.stats().requests).toBe(sampled.length);
  }, 120_000);

  it('puts each assessment downstream as a gen_ai.evaluation.result log and an evaluation span', async () => {
    await waitFor(() => {
      const logs = capture.requests.filter((r) => r.signal === 'logs');
      let n = 0;
      for (const r of logs) for (const rl of protobufToJson('logs', r.body).resourceLogs as Array<{ scopeLogs: Array<{ logRecords: unknown[] }> }>) for (const sl of rl.scopeLogs) n += sl.logRecords.length;
      return n >= assessments.length;
    }, 20_000, 'assessment logs downstream');
    const records: Array<{ traceId: string; spanId: string; eventName: string; attributes: Array<{ key: string; value: Record<string, unknown> }> }> = [];
    for (const r of capture.requests.filter((x) => x.signal === 'logs')) {
      for (const rl of protobufToJson('logs', r.body).resourceLogs as Array<{ scopeLogs: Array<{ logRecords: typeof records }> }>) {
        for (const sl of rl.scopeLogs) records.push(...sl.logRecords);
      }
    }
    expect(records).toHaveLength(assessments.length);
    const byId = new Map(assessments.map((a) => [a.assessmentId, a]));
    for (const lr of records) {
      expect(lr.eventName).toBe('gen_ai.evaluation.result');
      const attrs = Object.fromEntries(lr.attributes.map((kv) => [kv.key, Object.values(kv.value)[0]]));
      const a = byId.get(String(attrs['scorecar.assessment_id']))!;
      expect(a).toBeDefined();
      expect(lr.traceId).toBe(a.traceId);
      expect(lr.spanId).toBe(a.spanId);
      expect(attrs['gen_ai.evaluation.name']).toBe(a.name);
      if (a.scorer.name === 'is_english') {
        expect(attrs['gen_ai.evaluation.score.label']).toBe(a.value);
        expect(attrs['gen_ai.evaluation.score.value']).toBe(a.value === 'yes' ? 1 : 0);
      } else expect(attrs['gen_ai.evaluation.score.value']).toBe(a.value);
    }
    // Evaluation spans: children of the evaluated span, in the same trace.
    const evalSpans = capture.requests
      .filter((r) => r.signal === 'traces')
      .flatMap((r) => tracesFromRequest(r.body).flatMap((t) => t.spans.map((s, i) => decodeSpan(s, t.resources[i]!, t.scopes[i]!))))
      .filter((s) => s.name.startsWith('evaluation '));
    expect(evalSpans).toHaveLength(assessments.length);
    for (const s of evalSpans) {
      const a = byId.get(String(s.attributes['scorecar.assessment_id']))!;
      expect(s.traceId).toBe(a.traceId);
      expect(s.parentSpanId).toBe(a.spanId);
      expect(s.name).toBe(`evaluation ${a.name}`);
      expect(s.resource['service.name']).toBe('scorecar');
    }
  });

  it('stores them (GET /api/v1/traces/{traceId}) and counts them in the metrics', async () => {
    const some = [...roots.keys()].slice(0, 20);
    for (const id of some) {
      const res = await fetch(`${sc.adminUrl}/api/v1/traces/${id}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { assessments: Assessment[] };
      const mine = assessments.filter((a) => a.traceId === id).map((a) => a.assessmentId).sort();
      expect(body.assessments.map((a) => a.assessmentId).sort()).toEqual(mine);
    }
    expect((await fetch(`${sc.adminUrl}/api/v1/traces/${'0'.repeat(31)}1`)).status).toBe(404);
    expect((await fetch(`${sc.adminUrl}/api/v1/traces/nothex`)).status).toBe(400);
    expect(await sc.metric('scorecar_assessments_total', { experiment: 'e2e', scorer: 'answer_length' })).toBe(N);
    const judged = assessments.filter((a) => a.scorer.name === 'is_english');
    expect(await sc.metric('scorecar_assessments_total', { experiment: 'e2e', scorer: 'is_english', label: 'yes' })).toBe(judged.filter((a) => a.value === 'yes').length);
    expect(await sc.metric('scorecar_assessments_total', { experiment: 'e2e', scorer: 'is_english', label: 'no' })).toBe(judged.filter((a) => a.value === 'no').length);
    expect(await sc.metric('scorecar_judge_tokens_total', { experiment: 'e2e', direction: 'input' })).toBeGreaterThan(0);
    // The code scorer's aggregations, over its last 1000 values (here: all 500).
    const lengths = assessments.filter((a) => a.scorer.name === 'answer_length').map((a) => Number(a.value));
    expect(await sc.metric('scorecar_scorer_aggregate', { scorer: 'answer_length', aggregation: 'max' })).toBe(Math.max(...lengths));
    const mean = lengths.reduce((x, y) => x + y, 0) / lengths.length;
    expect(await sc.metric('scorecar_scorer_aggregate', { scorer: 'answer_length', aggregation: 'mean' })).toBeCloseTo(mean, 6);
    expect(await sc.metric('scorecar_scoring_jobs_dropped_total')).toBe(0);
    const scorer = (await (await fetch(`${sc.adminUrl}/api/v1/experiments/e2e/scorers/is_english`)).json()) as { health?: { state: string } };
    expect(scorer.health?.state).toBe('ok');
  });
});
