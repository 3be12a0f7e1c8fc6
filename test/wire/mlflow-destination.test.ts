// MLflow as a destination and as a source (issue 11, part 3), with real MLflow 3.18 on both sides:
//  - an app traced with MLflow's SDK points its tracking URI at scorecar's admin port
//    (test/support/mlflow/traced_app.py): set_experiment gets scorecar's numeric id, its spans
//    reach scorecar through /v1/traces with that id as x-mlflow-experiment-id, and they are
//    scored by the experiment's scorers (a native `{type: python}` one, a JavaScript one and a
//    guidelines judge);
//  - exporters.mlflow sends the traces and the verdicts to a real `mlflow server` (SQLite), which
//    is started only after the traces were scored: the exporter retries until it is up; MLflow's
//    own client then reads every trace, its spans and one Feedback per scorer with the fields and
//    metadata keys MLflow's online scorer writes;
//  - delivering the same assessments again adds nothing (idempotent);
//  - mlflow.get_trace against scorecar itself reads the verdicts too.
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ModelServer, startModelServer } from '../../scripts/model-server.ts';
import type { Assessment } from '../../src/assessments/index.ts';
import { type MlflowServer, mlflowPython, runMlflowScript, startMlflowServer } from '../support/mlflow.ts';
import { startScorecar, type TestScorecar } from '../support/scorecar.ts';

const EXP = 'traced-app';

async function reservePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface ReadBack {
  traces: Record<
    string,
    {
      state: string;
      spans: string[];
      assessments: {
        name: string;
        value: unknown;
        source_type: string;
        source_id: string;
        rationale: string | null;
        metadata: Record<string, string>;
        error: { code: string; message: string } | null;
        span_id: string | null;
      }[];
    } | null
  >;
  search?: string[];
}

describe('MLflow as a source and a destination', () => {
  let python: string | undefined;
  let model: ModelServer;
  let sc: TestScorecar;
  let mlflow: MlflowServer | undefined;
  let port: number;
  let app: { trace_ids: string[]; experiment_id: string };
  const assessments: Assessment[] = [];

  beforeAll(async () => {
    python = await mlflowPython();
    if (!python) return;
    model = await startModelServer();
    port = await reservePort();
    sc = await startScorecar(
      `assembler: {settleMs: 200}
scoring:
  providers: {openai: {baseUrl: "${model.url}/v1", apiKey: "test-key"}}
  defaultModel: "openai:/scorecar-judge"
exporters:
  mlflow:
    trackingUri: "http://127.0.0.1:${port}"
    experimentMapping: {${EXP}: "0"}
    retry: {initialIntervalMs: 200, maxIntervalMs: 1000, maxElapsedMs: 300000}
scorers:
  - experiment: ${EXP}
    name: answer_length
    definition: {type: python, source: "def answer_length(outputs):\\n    return len(str(outputs))\\n"}
    sampleRate: 1.0
  - experiment: ${EXP}
    name: js_words
    definition: {type: code, source: "(ctx) => String(ctx.outputs).split(' ').length"}
    sampleRate: 1.0
  - experiment: ${EXP}
    name: is_english
    definition: {type: guidelines, guidelines: ["The response must be in English"]}
    sampleRate: 1.0
`,
      { onAssessment: (a) => assessments.push(a) },
    );
    app = (await runMlflowScript(python, 'traced_app.py', sc.adminUrl, { APP_EXPERIMENT: EXP })) as typeof app;
  }, 900_000);

  afterAll(async () => {
    await sc?.stop();
    await mlflow?.close();
    await model?.close();
  });

  it('scores the traces of an app traced with MLflow whose tracking URI is scorecar', async ({ skip }) => {
    if (!python) return skip();
    expect(app.trace_ids).toHaveLength(3);
    expect(app.experiment_id).toMatch(/^[1-9]\d*$/);
    await sc.app.pipeline.whenIdle();
    const questions = ['what is scorecar?', 'how does sampling work?', 'where do verdicts go?'];
    app.trace_ids.forEach((tid, i) => {
      const hex = tid.replace(/^tr-/, '');
      const mine = new Map(assessments.filter((a) => a.traceId === hex).map((a) => [a.name, a]));
      expect([...mine.keys()].sort(), tid).toEqual(['answer_length', 'is_english', 'js_words']);
      // Scored as experiment traced-app: the header's numeric id was the alias of that name.
      for (const a of mine.values()) expect(a.experimentId).toBe(EXP);
      const answer = `Answer to ${questions[i]}: scorecar scores traces`;
      expect(mine.get('answer_length')!.value).toBe(answer.length);
      expect(mine.get('js_words')!.value).toBe(answer.split(' ').length);
      expect(mine.get('is_english')!.error).toBeUndefined();
    });
  });

  it('exports traces and Feedback to a real MLflow server once it is up, and MLflow reads them', async ({ skip }) => {
    if (!python) return skip();
    // Only now does MLflow come up: the exporter has been retrying.
    mlflow = await startMlflowServer(python, port);
    await sc.app.whenIdle();
    const read = (await runMlflowScript(python, 'read_traces.py', mlflow.url, {}, [JSON.stringify(app.trace_ids), '0'])) as unknown as ReadBack;
    expect(read.search).toEqual([...app.trace_ids].sort());
    for (const tid of app.trace_ids) {
      const t = read.traces[tid]!;
      expect(t, tid).not.toBeNull();
      expect(t.spans).toEqual(['answer', 'retrieve']);
      const byName = new Map(t.assessments.map((a) => [a.name, a]));
      expect(t.assessments).toHaveLength(3);
      const hex = tid.replace(/^tr-/, '');
      const ours = new Map(assessments.filter((a) => a.traceId === hex).map((a) => [a.name, a]));
      const len = byName.get('answer_length')!;
      expect(len).toMatchObject({ value: ours.get('answer_length')!.value, source_type: 'CODE', source_id: 'answer_length', error: null });
      expect(len.metadata).toMatchObject({
        'mlflow.assessment.scorerName': 'answer_length',
        'mlflow.assessment.scorerVersion': '1',
        'scorecar.assessment_id': ours.get('answer_length')!.assessmentId,
      });
      const judge = byName.get('is_english')!;
      expect(judge).toMatchObject({ value: ours.get('is_english')!.value, source_type: 'LLM_JUDGE', source_id: 'openai:/scorecar-judge' });
      expect(judge.rationale).toBe(ours.get('is_english')!.rationale);
      expect(Number(judge.metadata['mlflow.assessment.judgeInputTokens'])).toBeGreaterThan(0);
      expect(Number(judge.metadata['mlflow.assessment.judgeOutputTokens'])).toBeGreaterThan(0);
      expect(judge.span_id).toBe(ours.get('is_english')!.spanId);
    }
    // MLflow was down while the traces were scored: everything above came through retries.
    expect(await sc.metric('scorecar_mlflow_export_retries_total', { kind: 'trace' })).toBeGreaterThan(0);
  }, 300_000);

  it('logs each Feedback once, however often it is delivered', async ({ skip }) => {
    if (!python || !mlflow) return skip();
    const exporter = sc.app.mlflowExporter!;
    for (const a of assessments) exporter.onAssessment(a);
    for (const a of assessments) exporter.onAssessment(a);
    await exporter.whenIdle();
    const read = (await runMlflowScript(python, 'read_traces.py', mlflow.url, {}, [JSON.stringify(app.trace_ids)])) as unknown as ReadBack;
    for (const tid of app.trace_ids) {
      const names = read.traces[tid]!.assessments.map((a) => a.name).sort();
      expect(names).toEqual(['answer_length', 'is_english', 'js_words']);
    }
    expect(await sc.metric('scorecar_mlflow_export_failed_total')).toBe(0);
  }, 120_000);

  it("reads the verdicts through scorecar's own MLflow API with mlflow.get_trace", async ({ skip }) => {
    if (!python) return skip();
    const read = (await runMlflowScript(python, 'read_traces.py', sc.adminUrl, {}, [JSON.stringify(app.trace_ids)])) as unknown as ReadBack;
    for (const tid of app.trace_ids) {
      const names = read.traces[tid]!.assessments.map((a) => `${a.name}:${a.source_type}`).sort();
      expect(names).toEqual(['answer_length:CODE', 'is_english:LLM_JUDGE', 'js_words:CODE']);
    }
  });
});
