// A backfill with an LLM judge, against the local model server: its assessments go downstream as
// the live ones do (gen_ai.evaluation.result log events and evaluation spans, marked
// scorecar.source = backfill), and the experiment's daily judge budget stops it as it would stop
// live scoring: once spent, no further judge call reaches the model.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ModelServer, startModelServer } from '../../scripts/model-server.ts';
import { protobufToJson } from '../../src/wire/index.ts';
import { type CaptureServer, startHttpCapture } from '../support/capture.ts';
import { fixtureBatches, sendBatch } from '../support/archive.ts';
import { startScorecar, type TestScorecar } from '../support/scorecar.ts';

const EXP = 'bf-judge';

describe('backfill with a judge', () => {
  let model: ModelServer;
  let capture: CaptureServer;
  let sc: TestScorecar;
  let traces = 0;

  beforeAll(async () => {
    model = await startModelServer();
    capture = await startHttpCapture();
    sc = await startScorecar(`
exporters: {otlp: {endpoint: "${capture.url}"}}
experiments: { resolution: ["header:x-mlflow-experiment-id"] }
assembler: { settleMs: 50, idleTimeoutMs: 1000 }
archive: { tables: { ${EXP}: {} }, commitIntervalMs: 100 }
backfill: { maxJobsInFlight: 2 }
scoring:
  providers: {openai: {baseUrl: "${model.url}/v1", apiKey: "test-key", concurrency: 1}}
  defaultModel: "openai:/scorecar-judge"
  retry: {initialIntervalMs: 100, maxIntervalMs: 200, maxElapsedMs: 1000}
  budgets: { ${EXP}: { tokensPerDay: 3000 } }
scorers:
  - {experiment: ${EXP}, name: safe, definition: {type: builtin, judge: safety}, sampleRate: 0}
`);
    for (const b of fixtureBatches(2, 2, 'judge')) {
      await sendBatch(sc.httpUrl, b.body, EXP);
      traces += b.traces.length;
    }
    await sc.app.whenIdle();
    await sc.app.pipeline.archiver.flush();
  }, 60_000);

  afterAll(async () => {
    await sc?.stop();
    await capture?.close();
    await model?.close();
  });

  it('emits like live scoring, marked as a backfill, and stops at the daily judge budget', async () => {
    expect(model.stats().requests).toBe(0);
    const manager = sc.app.pipeline.backfills;
    const job = await manager.create(EXP, { scorers: [{ name: 'safe', sampleRate: 1 }], startTimeMs: 0 });
    const done = await manager.whenDone(job.jobId);
    expect(done.state).toBe('succeeded');
    expect(done.selected).toBe(traces);
    await sc.app.whenIdle();
    // The budget stopped the judge before the end: some jobs were dropped for it, and the model
    // saw fewer calls than there were traces.
    const dropped = await sc.metric('scorecar_scoring_jobs_dropped_total', { experiment: EXP, reason: 'budget_exhausted' });
    expect(dropped).toBeGreaterThan(0);
    expect(model.stats().requests).toBeLessThan(traces);
    expect(await sc.metric('scorecar_judge_budget_exhausted', { experiment: EXP })).toBe(1);
    const judged = await sc.app.pipeline.store.count();
    expect(judged + dropped).toBe(traces);
    // Downstream: one log event per assessment, each marked as a backfill.
    const events = capture.requests
      .filter((r) => r.signal === 'logs')
      .flatMap((r) => (protobufToJson('logs', r.body) as unknown as { resourceLogs: Array<{ scopeLogs: Array<{ logRecords: Array<{ eventName: string; attributes: Array<{ key: string; value: { stringValue?: string } }> }> }> }> }).resourceLogs)
      .flatMap((rl) => rl.scopeLogs.flatMap((s) => s.logRecords))
      .filter((l) => l.eventName === 'gen_ai.evaluation.result');
    expect(events.length).toBe(judged);
    for (const e of events) expect(e.attributes.find((a) => a.key === 'scorecar.source')?.value.stringValue).toBe('backfill');
  }, 120_000);
});
