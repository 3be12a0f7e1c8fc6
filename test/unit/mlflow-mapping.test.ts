// MLflow's serialized scorers to scorecar definitions and back, the numeric experiment ids, the
// error mapping and the Feedback form of an assessment (src/mlflow, src/util/errors.ts).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Assessment } from '../../src/assessments/index.ts';
import { validateDefinition } from '../../src/definitions/index.ts';
import { definitionFromMlflow, definitionToMlflow, feedbackJson, MlflowStore, mlflowTraceId, pythonSource } from '../../src/mlflow/index.ts';
import { ERROR_CODES, mlflowErrorOf, ScorecarError } from '../../src/util/index.ts';

const GATEWAY = { gatewayEndpoints: { 'fake-judge': 'openai:/judge@http://127.0.0.1:9/v1' } };
const ser = (o: Record<string, unknown>) => JSON.stringify({ aggregations: null, is_session_level_scorer: false, ...o });

describe('serialized scorers -> definitions', () => {
  it('maps built-in judges, Guidelines, make_judge and @scorer, with their models', () => {
    expect(definitionFromMlflow(ser({ name: 's', builtin_scorer_class: 'Safety', builtin_scorer_pydantic_data: { model: null } }), GATEWAY).definition).toEqual({
      type: 'builtin',
      judge: 'safety',
    });
    expect(
      definitionFromMlflow(ser({ name: 'r', builtin_scorer_class: 'RetrievalGroundedness', builtin_scorer_pydantic_data: { model: 'databricks' } }), GATEWAY).definition,
    ).toEqual({ type: 'builtin', judge: 'retrieval_groundedness' });
    expect(
      definitionFromMlflow(
        ser({ name: 'g', builtin_scorer_class: 'Guidelines', builtin_scorer_pydantic_data: { guidelines: ['Be kind'], model: 'gateway:/fake-judge' } }),
        GATEWAY,
      ).definition,
    ).toEqual({ type: 'guidelines', guidelines: ['Be kind'], model: 'openai:/judge@http://127.0.0.1:9/v1' });
    for (const [schema, fvt] of [
      [{ type: 'boolean' }, 'bool'],
      [{ type: 'integer' }, 'number'],
      [{ type: 'string' }, 'string'],
      [{ enum: ['yes', 'no'] }, 'yes_no'],
      [{ enum: ['good', 'bad'] }, 'string'],
    ] as const) {
      const d = definitionFromMlflow(
        ser({ name: 'j', instructions_judge_pydantic_data: { instructions: 'Is {{ outputs }} ok?', model: 'anthropic:/claude', feedback_value_type: schema } }),
        GATEWAY,
      ).definition;
      expect(d).toEqual({ type: 'judge', instructions: 'Is {{ outputs }} ok?', feedbackValueType: fvt, model: 'anthropic:/claude' });
    }
    const dec = definitionFromMlflow(
      ser({ name: 'len', aggregations: ['mean', 'p90'], call_source: 'n = len(str(outputs))\nreturn n', call_signature: '(outputs) -> int', original_func_name: 'answer_length' }),
      GATEWAY,
    );
    expect(dec).toEqual({
      name: 'len',
      definition: {
        type: 'python',
        source: 'def answer_length(outputs) -> int:\n    n = len(str(outputs))\n    return n\n',
        function: 'answer_length',
        aggregations: ['mean', 'p90'],
      },
    });
    // Every mapped definition is one scorecar accepts.
    expect(validateDefinition(dec.definition).ok).toBe(true);
  });

  it('refuses what scorecar cannot run, naming it', () => {
    const refuse = (o: Record<string, unknown>) => {
      try {
        definitionFromMlflow(typeof o.raw === 'string' ? o.raw : ser(o), GATEWAY);
      } catch (e) {
        expect(e).toBeInstanceOf(ScorecarError);
        return (e as ScorecarError).message;
      }
      throw new Error('not refused');
    };
    expect(refuse({ name: 'x', builtin_scorer_class: 'Fluency' })).toMatch(/Fluency is not supported/);
    expect(refuse({ name: 'x', is_session_level_scorer: true, builtin_scorer_class: 'Safety' })).toMatch(/session-level/);
    expect(refuse({ name: 'x', ensemble_scorer_data: {} })).toMatch(/scorer ensembles/);
    expect(refuse({ name: 'x', third_party_scorer_data: {} })).toMatch(/third-party/);
    expect(refuse({ name: 'x' })).toMatch(/no kind scorecar knows/);
    expect(refuse({ raw: '{not json' })).toMatch(/not valid JSON/);
    expect(refuse({ raw: '[1]' })).toMatch(/JSON object/);
    expect(refuse({ name: 'x', builtin_scorer_class: 'Safety', builtin_scorer_pydantic_data: { model: 'gateway:/other' } })).toMatch(
      /gateway endpoint 'other' is not configured/,
    );
    expect(refuse({ name: 'x', call_source: 'return 1', original_func_name: 'not valid' })).toMatch(/Python identifier/);
  });

  it('gives every scorecar definition a form MLflow can rebuild', () => {
    const forms = [
      { type: 'builtin', judge: 'correctness' },
      { type: 'builtin', judge: 'guidelines', guidelines: ['a'] },
      { type: 'guidelines', guidelines: ['a'], model: 'openai:/x' },
      { type: 'judge', instructions: 'Is {{ outputs }} ok?', feedbackValueType: 'yes_no' },
      { type: 'prompt', promptTemplate: '[[a]] {{response}}' },
      { type: 'code', source: '(ctx) => 1', aggregations: ['mean'] },
      { type: 'python', source: 'def f(outputs):\n    return 1\n' },
      { type: 'python', source: 'import math\ndef f(outputs):\n    return math.pi\n' },
    ] as const;
    const out = forms.map((d) => JSON.parse(definitionToMlflow('n', d as never, 'openai:/default')) as Record<string, unknown>);
    expect(out[0]).toMatchObject({ builtin_scorer_class: 'Correctness', builtin_scorer_pydantic_data: { name: 'n', model: null } });
    expect(out[1]).toMatchObject({ builtin_scorer_class: 'Guidelines', builtin_scorer_pydantic_data: { guidelines: ['a'] } });
    expect(out[2]).toMatchObject({ builtin_scorer_class: 'Guidelines', builtin_scorer_pydantic_data: { model: 'openai:/x' } });
    expect(out[3]).toMatchObject({ instructions_judge_pydantic_data: { model: 'openai:/default', feedback_value_type: { enum: ['yes', 'no'] } } });
    expect(out[4]).toMatchObject({ call_source: expect.stringMatching(/^raise NotImplementedError/) });
    expect(out[5]).toMatchObject({ aggregations: ['mean'], call_source: expect.stringMatching(/JavaScript/) });
    expect(out[6]).toMatchObject({ call_source: 'return 1', call_signature: '(outputs)', original_func_name: 'f' });
    expect(out[7]).toMatchObject({ call_source: expect.stringMatching(/^raise NotImplementedError/) });
    // The round trip of an @scorer: the same definition again.
    const back = definitionFromMlflow(definitionToMlflow('n', { type: 'python', source: pythonSource('f', '(outputs)', 'return 1'), function: 'f' }, ''), GATEWAY);
    expect(back.definition).toEqual({ type: 'python', source: 'def f(outputs):\n    return 1\n', function: 'f' });
  });
});

describe('MLflow experiment ids', () => {
  it('allocates 1, 2, … once per name, skips numbers that are scorecar experiments, maps 0 to the default', () => {
    const dir = mkdtempSync(join(tmpdir(), 'scorecar-mlflow-store-'));
    const s = new MlflowStore({ dir, defaultExperiment: 'default' });
    try {
      expect(s.ensure('a', 1).experiment.id).toBe('1');
      expect(s.ensure('a', 2)).toMatchObject({ created: false, experiment: { id: '1' } });
      expect(s.ensure('b', 3, (id) => id === '2' || id === '3').experiment.id).toBe('4');
      expect(s.byId('4')?.name).toBe('b');
      expect(s.byId('0')?.name).toBe('default');
      expect(s.byName('default')?.id).toBe('0');
      expect(s.byId('99')).toBeUndefined();
      expect(s.byId('x')).toBeUndefined();
      expect(s.byId('99999999999')).toBeUndefined();
      expect(s.list().map((e) => e.name)).toEqual(['default', 'a', 'b']);
      // A kept serialized form is handed back only for the definition it was registered as.
      s.putSerialized('a', 'n', 1, '{"d":1}', 'TEXT');
      expect(s.getSerialized('a', 'n', 1, '{"d":1}')).toBe('TEXT');
      expect(s.getSerialized('a', 'n', 1, '{"d":2}')).toBeUndefined();
    } finally {
      s.close();
    }
    // Another process opening the same file sees the same ids.
    const again = new MlflowStore({ dir, defaultExperiment: 'default' });
    expect(again.byName('b')?.id).toBe('4');
    again.close();
  });
});

describe('MLflow error codes', () => {
  it('maps every scorecar code to one MLflow code with the status MLflow pairs it with', () => {
    const pairs: Record<string, number> = {
      INVALID_PARAMETER_VALUE: 400,
      BAD_REQUEST: 400,
      RESOURCE_ALREADY_EXISTS: 400,
      RESOURCE_DOES_NOT_EXIST: 404,
      UNAUTHENTICATED: 401,
      PERMISSION_DENIED: 403,
      REQUEST_LIMIT_EXCEEDED: 429,
      TEMPORARILY_UNAVAILABLE: 503,
      DEADLINE_EXCEEDED: 504,
      INTERNAL_ERROR: 500,
    };
    for (const code of ERROR_CODES) {
      const m = mlflowErrorOf(code);
      expect(pairs[m.errorCode], `${code} -> ${m.errorCode}`).toBe(m.http);
    }
    expect(mlflowErrorOf('NOT_FOUND').errorCode).toBe('RESOURCE_DOES_NOT_EXIST');
    expect(mlflowErrorOf('INVALID_DEFINITION').errorCode).toBe('INVALID_PARAMETER_VALUE');
    expect(mlflowErrorOf('ALREADY_EXISTS').errorCode).toBe('RESOURCE_ALREADY_EXISTS');
    expect(mlflowErrorOf('LIMIT_EXCEEDED').errorCode).toBe('INVALID_PARAMETER_VALUE');
    expect(mlflowErrorOf('HOST_NOT_ALLOWED').errorCode).toBe('PERMISSION_DENIED');
    expect(mlflowErrorOf('INTERNAL').errorCode).toBe('INTERNAL_ERROR');
  });
});

describe('assessments as MLflow Feedback', () => {
  const base: Assessment = {
    assessmentId: 'abc',
    name: 'is_english',
    traceId: 'f'.repeat(32),
    spanId: '1'.repeat(16),
    experimentId: 'chat',
    scorer: { name: 'is_english', version: 3 },
    source: { type: 'LLM_JUDGE', id: 'openai:/judge' },
    value: 'yes',
    rationale: 'because',
    metadata: { 'scorecar.usage.input_tokens': '12', 'scorecar.usage.output_tokens': '3' },
    sampleRate: 0.5,
    createdAt: '2026-01-01T00:00:00.000Z',
  };

  it("writes the fields and metadata keys MLflow's online scorer writes", () => {
    expect(mlflowTraceId(base.traceId)).toBe(`tr-${base.traceId}`);
    expect(feedbackJson(base)).toEqual({
      assessment: {
        assessment_name: 'is_english',
        trace_id: `tr-${base.traceId}`,
        span_id: base.spanId,
        source: { source_type: 'LLM_JUDGE', source_id: 'openai:/judge' },
        create_time: base.createdAt,
        last_update_time: base.createdAt,
        feedback: { value: 'yes' },
        rationale: 'because',
        metadata: {
          'scorecar.usage.input_tokens': '12',
          'scorecar.usage.output_tokens': '3',
          'scorecar.assessment_id': 'abc',
          'scorecar.sample_rate': '0.5',
          'mlflow.assessment.scorerName': 'is_english',
          'mlflow.assessment.scorerVersion': '3',
          'mlflow.assessment.judgeInputTokens': '12',
          'mlflow.assessment.judgeOutputTokens': '3',
        },
        valid: true,
      },
    });
    const failed = feedbackJson({ ...base, value: null, rationale: undefined as never, error: { code: 'TIMEOUT', message: 'slow' } }).assessment as Record<string, unknown>;
    expect(failed.feedback).toEqual({ value: null, error: { error_code: 'TIMEOUT', error_message: 'slow' } });
  });
});
