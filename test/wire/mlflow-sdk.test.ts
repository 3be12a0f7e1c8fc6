// MLflow 3.18's own Python SDK drives scorecar (issue 11, parts 1 and 2): the feature
// description's examples (test/support/mlflow/seed_examples.py) run unchanged against scorecar's
// admin port, with MLFLOW_TRACKING_URI as their only setting, in one Python process. Then:
//  - the registry behind MLflow's API is scorecar's own: what the SDK registered is what
//    /api/v1 shows (and a scorer registered through /api/v1 is listed by the SDK);
//  - traces sent to scorecar are scored in production by the @scorer functions the SDK
//    registered (Python in the Pyodide sandbox) and by the judges (through a gateway:/ model
//    mapped by the config table to the local model server);
//  - the sandbox escape attempts registered through the SDK end as error assessments, and the
//    well-behaved scorer beside them scores every trace.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ModelServer, startModelServer } from '../../scripts/model-server.ts';
import type { Assessment } from '../../src/assessments/index.ts';
import { mlflowPython, runMlflowScript } from '../support/mlflow.ts';
import { startScorecar, type TestScorecar } from '../support/scorecar.ts';

const EXP = 'seed-app';
const QUERY = 'What is Databricks?';
const RESPONSE = 'Databricks is a data platform';

interface Cell {
  ok: boolean;
  error?: string;
  error_code?: string | null;
  out: string;
}
interface Report {
  cells: Record<string, Cell>;
  // biome-ignore lint/suspicious/noExplicitAny: the script's JSON, checked field by field below
  values: Record<string, any>;
  experiment_id: string;
}

/** One OTLP/JSON request with one MLflow-style root span per trace id. */
function otlpTraces(service: string, traceIds: string[]): string {
  const now = BigInt(Date.now()) * 1_000_000n;
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [
          {
            spans: traceIds.map((traceId, i) => ({
              traceId,
              spanId: (0x1000 + i).toString(16).padStart(16, '0'),
              name: 'agent',
              kind: 1,
              startTimeUnixNano: String(now),
              endTimeUnixNano: String(now + 5_000_000n),
              attributes: [
                { key: 'mlflow.spanType', value: { stringValue: '"CHAIN"' } },
                { key: 'mlflow.spanInputs', value: { stringValue: JSON.stringify({ query: QUERY }) } },
                { key: 'mlflow.spanOutputs', value: { stringValue: JSON.stringify({ response: RESPONSE }) } },
              ],
              status: { code: 1 },
            })),
          },
        ],
      },
    ],
  });
}

function traceId(seed: number): string {
  return (0xabc00000 + seed).toString(16).padStart(32, '0');
}

describe('MLflow 3.18 Python SDK against scorecar', () => {
  let python: string | undefined;
  let model: ModelServer;
  let sc: TestScorecar;
  let report: Report;
  const assessments: Assessment[] = [];

  beforeAll(async () => {
    python = await mlflowPython();
    if (!python) return;
    model = await startModelServer();
    sc = await startScorecar(
      `assembler: {settleMs: 100}
scoring:
  providers: {openai: {baseUrl: "${model.url}/v1", apiKey: "test-key"}}
  defaultModel: "openai:/scorecar-judge"
  python: {timeoutMs: 500, workers: 1}
mlflow:
  gatewayEndpoints: {fake-judge: "openai:/scorecar-judge@${model.url}/v1"}
`,
      { onAssessment: (a) => assessments.push(a) },
    );
    // Registered through scorecar's own API before the SDK runs: the SDK must list it too.
    const r = await fetch(`${sc.adminUrl}/api/v1/experiments/${EXP}/scorers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'js_length', definition: { type: 'code', source: "(ctx) => String(ctx.outputs?.response ?? '').length" } }),
    });
    expect(r.status).toBe(201);
    report = (await runMlflowScript(python, 'seed_examples.py', sc.adminUrl, { SEED_EXPERIMENT: EXP })) as unknown as Report;
  }, 900_000);

  afterAll(async () => {
    await sc?.stop();
    await model?.close();
  });

  it('runs the description examples: every cell works, or fails exactly as against MLflow itself', ({ skip }) => {
    if (!python) return skip();
    const c = report.cells;
    const ok = Object.entries(c).filter(([, v]) => v.ok).map(([k]) => k);
    expect(ok).toEqual(
      expect.arrayContaining([
        'setup',
        'builtin_safety',
        'builtin_safety_databricks_model',
        'guidelines',
        'guidelines_databricks_model',
        'custom_prompt_judge',
        'custom_scorers',
        'custom_lifecycle',
        'immutable_updates',
        'well_designed',
        'versions_and_delete',
        'make_judge_gateway',
        'delete_all_versions_form',
        'final_state',
        'escapes',
      ]),
    );
    expect(c.immutable_updates!.out).toBe('Original: 0.3\nUpdated: 0.8\n');
    // The description's own mistakes, which MLflow's client or SDK raises whatever the server:
    // registered-only scorers have no sample rate (None > 0), `delete_scorer` is used before it is
    // imported and without the version MLflow's OSS client requires, `_server_name` is a Databricks
    // attribute, and "safety_monitor" was never registered (the server answers 404).
    expect(c.multiple_scorers!.error).toMatch(/^TypeError: '>' not supported between instances of 'NoneType' and 'int'/);
    expect(c.basic_lifecycle!.error).toBe("NameError: name 'delete_scorer' is not defined");
    expect(c.list_scorers!.error).toMatch(/^AttributeError: .*_server_name/);
    expect(c.get_and_update!.error_code).toBe('RESOURCE_DOES_NOT_EXIST');
    expect(c.stop_and_delete!.out).toBe('Sample rate after stop: 0\n');
    expect(c.stop_and_delete!.error).toMatch(/You must set `version` argument/);
    // Refusals with MLflow's error codes.
    expect(c.unknown_gateway_endpoint!.error_code).toBe('INVALID_PARAMETER_VALUE');
    expect(c.unknown_gateway_endpoint!.error).toMatch(/gateway endpoint 'nowhere' is not configured/);
    expect(c.rate_out_of_range!.error_code).toBe('INVALID_PARAMETER_VALUE');
  });

  it('versions, update replacing the whole config, get by version and delete by version or all', ({ skip }) => {
    if (!python) return skip();
    const tone = report.values.tone;
    expect(tone.versions).toEqual([1, 2]);
    expect(tone.v1_guidelines).toEqual(['Be polite']);
    expect(tone.latest_guidelines).toEqual(['Be polite', 'Be brief']);
    expect(tone.started).toEqual([0.7, "trace.status = 'OK'"]);
    expect(tone.updated).toEqual([0.4, null]);
    expect(tone.after_delete_v1).toEqual([2]);
    expect(tone.after_delete_all).toBe('RESOURCE_DOES_NOT_EXIST');
    expect(report.values.names_after).toContain('js_length');
    expect(report.values.names_after).not.toContain('tone');
    expect(report.values.after_delete_all).not.toContain('databricks_mentions');
    expect(report.values.polite).toEqual({ model: 'gateway:/fake-judge', rate: 1 });
  });

  it('keeps one registry behind both APIs', async ({ skip }) => {
    if (!python) return skip();
    const list = (await (await fetch(`${sc.adminUrl}/api/v1/experiments/${EXP}/scorers`)).json()) as {
      scorers: { name: string; version: number; sampleRate: number; status: string; definition: Record<string, unknown> }[];
    };
    const byName = new Map(list.scorers.map((s) => [s.name, s]));
    const final = report.values.final as Record<string, [number | null, string | null]>;
    // Every scorer the SDK lists is scorecar's, at the same rate (null = never started = registered).
    expect([...byName.keys()].sort()).toEqual(Object.keys(final).sort());
    for (const [name, [rate]] of Object.entries(final)) {
      const s = byName.get(name)!;
      expect(s.sampleRate, name).toBe(rate ?? 0);
      if (rate === null) expect(s.status, name).toBe('registered');
    }
    expect(byName.get('response_length')!.definition).toMatchObject({ type: 'python', function: 'response_length', aggregations: ['mean', 'min', 'max'] });
    expect(byName.get('is_english')!.definition).toEqual({ type: 'guidelines', guidelines: ['The response must be in English'] });
    expect(byName.get('my_custom_safety_judge')!.definition).toEqual({ type: 'builtin', judge: 'safety', model: 'databricks:/databricks-gpt-oss-20b' });
    expect(byName.get('polite')!.definition).toMatchObject({ type: 'judge', feedbackValueType: 'bool', model: `openai:/scorecar-judge@${model.url}/v1` });
    // "safety" was registered twice (multiple_scorers, immutable_updates): two versions.
    expect(byName.get('safety')!.version).toBe(2);
    // The MLflow experiment id is a numeric alias of the scorecar experiment.
    expect(report.experiment_id).toMatch(/^[1-9]\d*$/);
    const exp = (await (await fetch(`${sc.adminUrl}/api/2.0/mlflow/experiments/get?experiment_id=${report.experiment_id}`)).json()) as {
      experiment: { name: string };
    };
    expect(exp.experiment.name).toBe(EXP);
  });

  it('scores traces with the registered @scorer functions and judges', async ({ skip }) => {
    if (!python) return skip();
    const ids = [1, 2, 3].map(traceId);
    const r = await fetch(`${sc.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: otlpTraces(EXP, ids) });
    expect(r.status).toBe(200);
    await sc.app.whenIdle();
    const good = JSON.stringify({ response: RESPONSE }).replace(/":"/g, '": "');
    for (const id of ids) {
      const mine = new Map(assessments.filter((a) => a.traceId === id).map((a) => [a.name, a]));
      expect(mine.get('response_length'), id).toMatchObject({ value: RESPONSE.length, source: { type: 'CODE', id: 'response_length' } });
      expect(mine.get('response_relevance_score')!.value).toBeCloseTo(1 / 3, 10);
      expect(mine.get('well_designed')!.value).toBe(0);
      expect(mine.get('good_scorer')!.value).toBe(good.length);
      expect(mine.get('js_length')).toBeUndefined(); // registered, never started
      // make_judge through gateway:/fake-judge, mapped to the local model server.
      expect(mine.get('polite')).toMatchObject({ value: true, source: { type: 'LLM_JUDGE', id: `openai:/scorecar-judge@${model.url}/v1` } });
      expect(mine.get('polite')!.error).toBeUndefined();
      // A built-in judge at rate 0.8 and a stopped one.
      expect(mine.has('safety_check')).toBe(false);
      for (const a of mine.values()) {
        // The description's formality example calls MLflow's custom_prompt_judge from inside an
        // @scorer (rate 0.1, so maybe not sampled): see the sandbox's mlflow module.
        if (a.name === 'my_formality_judge') continue;
        expect(a.error, `${a.name}: ${JSON.stringify(a.error)}`).toBeUndefined();
      }
    }
  });

  it('turns every sandbox escape attempt into an error assessment, and the others keep scoring', async ({ skip }) => {
    if (!python) return skip();
    const ids = [11, 12].map(traceId);
    const r = await fetch(`${sc.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: otlpTraces(`${EXP}-escapes`, ids) });
    expect(r.status).toBe(200);
    await sc.app.whenIdle();
    for (const id of ids) {
      const mine = new Map(assessments.filter((a) => a.traceId === id).map((a) => [a.name, a]));
      const code = (name: string) => mine.get(name)?.error?.code;
      const message = (name: string) => mine.get(name)?.error?.message ?? '';
      expect(code('endless_loop')).toBe('TIMEOUT');
      expect(code('huge_allocation')).toBe('OUT_OF_MEMORY');
      expect(code('shell_command')).toBe('CODE_SCORER_ERROR');
      expect(message('shell_command')).toMatch(/PermissionError: os.system is not allowed/);
      expect(code('read_host_file')).toBe('CODE_SCORER_ERROR');
      expect(message('read_host_file')).toMatch(/PermissionError: open\(\) is not allowed/);
      expect(message('open_socket')).toMatch(/ImportError: module 'socket' is not available/);
      expect(message('load_ctypes')).toMatch(/ImportError: module 'ctypes' is not available/);
      expect(message('run_javascript')).toMatch(/ImportError: module 'pyodide(\.code)?' is not available/);
      expect(message('deep_recursion')).toMatch(/RecursionError/);
      expect(message('raises')).toMatch(/ValueError: a bug in the scorer/);
      expect(mine.get('well_behaved')).toMatchObject({ value: RESPONSE.length });
      expect(mine.get('well_behaved')!.error).toBeUndefined();
      for (const a of mine.values()) expect(a.source.type).toBe('CODE');
    }
  });
});
