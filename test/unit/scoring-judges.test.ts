import { describe, expect, it } from 'vitest';
import { assessmentId } from '../../src/assessments/id.ts';
import { configSchema } from '../../src/config/index.ts';
import type { Scorer, ScorerDefinition } from '../../src/definitions/index.ts';
import { traceViewJson } from '../../src/genai/index.ts';
import {
  aggregate,
  createScorerRunner,
  judgeTasks,
  modelCallsFor,
  readCodeResult,
  readVerdict,
  renderTraceOutline,
  type ScoringOptions,
} from '../../src/scoring/index.ts';
import { ScorecarError } from '../../src/util/index.ts';
import { makeTraceView, runAssessments } from '../support/testkit.ts';

const rag = makeTraceView({
  traceId: 'rag-1',
  inputs: { messages: [{ role: 'user', content: 'Where is the Eiffel Tower?' }] },
  outputs: 'In Paris.',
  expectations: {
    expectedFacts: ['It is in Paris'],
    expectedResponse: 'Paris, France',
    guidelines: ['Be brief'],
  },
  retrievals: [
    {
      spanName: 'vector_search',
      documents: ['The Eiffel Tower is in Paris.', { content: 'Paris is in France.', id: 'doc-2' }],
    },
    { spanName: 'web_search', documents: [] },
  ],
  spans: [
    {
      name: 'llm',
      type: 'LLM',
      attributes: { 'gen_ai.output.messages': 'In Paris.' },
      status: 'ERROR',
      statusMessage: 'retry',
    },
  ],
});

describe('judge prompts', () => {
  it('puts the material in the user message and the question in the system message', () => {
    const [t] = judgeTasks({ type: 'builtin', judge: 'relevance_to_query' }, rag, 1000);
    expect(t!.spanId).toBe(rag.rootSpan.spanId);
    expect(t!.prompt!.user).toBe(
      '<request>\n{"messages":[{"role":"user","content":"Where is the Eiffel Tower?"}]}\n</request>\n\n<response>\nIn Paris.\n</response>',
    );
    expect(t!.prompt!.system).toContain('does the response address the request');
    expect(t!.prompt!.system).toContain('The value of "result" must be "yes" or "no".');
  });

  it('correctness prefers expected facts, then the expected response', () => {
    const facts = judgeTasks({ type: 'builtin', judge: 'correctness' }, rag, 1000)[0]!.prompt!.user;
    expect(facts).toContain('<expected_facts>\n1. It is in Paris\n</expected_facts>');
    const v2 = makeTraceView({
      inputs: 'q',
      outputs: 'a',
      expectations: { expectedResponse: 'Paris, France' },
    });
    expect(judgeTasks({ type: 'builtin', judge: 'correctness' }, v2, 1000)[0]!.prompt!.user).toContain(
      '<expected_response>\nParis, France\n</expected_response>',
    );
  });

  it('retrieval judges make one task per retriever span, with its span id', () => {
    const tasks = judgeTasks({ type: 'builtin', judge: 'retrieval_groundedness' }, rag, 1000);
    expect(tasks.map((t) => t.spanId)).toEqual(rag.retrievals.map((r) => r.spanId));
    expect(tasks[0]!.prompt!.user).toContain(
      '[1] The Eiffel Tower is in Paris.\n[2] (id doc-2) Paris is in France.',
    );
    expect(tasks[1]!.prompt!.user).toContain('(the retriever returned no documents)');
    expect(tasks[0]!.metadata).toEqual({
      'scorecar.retrieval.span_name': 'vector_search',
      'scorecar.retrieval.documents': '2',
    });
    expect(modelCallsFor({ type: 'builtin', judge: 'retrieval_sufficiency' }, rag)).toBe(2);
    expect(modelCallsFor({ type: 'builtin', judge: 'safety' }, rag)).toBe(1);
    expect(modelCallsFor({ type: 'code', source: '(c) => 1' }, rag)).toBe(0);
  });

  it('missing expectations or outputs become task errors, per span for retrieval judges', () => {
    const bare = makeTraceView({ inputs: 'q', retrievals: [{ documents: ['d'] }, { documents: ['e'] }] });
    const codes = (def: ScorerDefinition): string[] =>
      judgeTasks(def, bare, 1000).map((t) => t.error?.code ?? 'ok');
    expect(codes({ type: 'builtin', judge: 'correctness' })).toEqual(['MISSING_INPUT']);
    expect(codes({ type: 'builtin', judge: 'retrieval_sufficiency' })).toEqual([
      'MISSING_EXPECTATIONS',
      'MISSING_EXPECTATIONS',
    ]);
    expect(codes({ type: 'builtin', judge: 'retrieval_relevance' })).toEqual(['ok', 'ok']);
    expect(codes({ type: 'builtin', judge: 'expectations_guidelines' })).toEqual(['MISSING_EXPECTATIONS']);
    expect(codes({ type: 'judge', instructions: '{{ expectations }}' })).toEqual(['MISSING_EXPECTATIONS']);
    expect(codes({ type: 'prompt', promptTemplate: '[[a]] {{response}}' })).toEqual(['MISSING_INPUT']);
  });

  it('the prompt judge renders its template and lists its choices; the instructions judge its variables', () => {
    const [p] = judgeTasks(
      { type: 'prompt', promptTemplate: 'Reply {{response}} is [[short]] or [[long]]' },
      rag,
      1000,
    );
    expect(p!.prompt!.user).toBe('Reply In Paris. is [[short]] or [[long]]');
    expect(p!.prompt!.system).toContain('The value of "result" must be exactly one of: "short", "long".');
    const [j] = judgeTasks(
      {
        type: 'judge',
        instructions: 'Given {{ expectations }}, grade {{ outputs }}',
        feedbackValueType: 'number',
      },
      rag,
      1000,
    );
    expect(j!.prompt!.user).toBe(
      'Given {"expectedFacts":["It is in Paris"],"expectedResponse":"Paris, France","guidelines":["Be brief"]}, grade In Paris.',
    );
    expect(j!.prompt!.system).toContain('The value of "result" must be a number.');
  });

  it('truncates long values', () => {
    const v = makeTraceView({ outputs: 'x'.repeat(50) });
    expect(judgeTasks({ type: 'builtin', judge: 'safety' }, v, 10)[0]!.prompt!.user).toContain(
      'xxxxxxxxxx… [40 more characters truncated]',
    );
  });

  it('readVerdict maps a prompt judge label to its number and keeps the label', () => {
    const [t] = judgeTasks(
      { type: 'prompt', promptTemplate: '{{response}} [[good]] [[bad]]', numericValues: { good: 1, bad: 0 } },
      rag,
      1000,
    );
    expect(readVerdict(t!, '{"result": "Bad", "rationale": "r"}')).toEqual({
      value: 0,
      label: 'bad',
      rationale: 'r',
    });
    expect(() => readVerdict(t!, '{"result": "ugly"}')).toThrow(ScorecarError);
  });
});

describe('trace renderings', () => {
  it('outlines spans in call-tree order with type, duration, status and io', () => {
    const outline = renderTraceOutline(rag);
    const lines = outline.split('\n');
    expect(lines[0]).toBe(`trace ${rag.traceId} "agent" status=OK duration=1200ms spans=4`);
    expect(lines[1]).toBe('- agent [CHAIN] 1200ms OK');
    expect(lines[2]).toContain('  inputs: {"messages"');
    expect(outline).toContain('  - vector_search [RETRIEVER] 40ms OK');
    expect(outline).toContain('  - llm [LLM] 100ms ERROR (retry)');
    expect(outline).toContain('    outputs: In Paris.');
  });

  it('caps the outline size', () => {
    const many = makeTraceView({
      spans: Array.from({ length: 200 }, (_, i) => ({ name: `step_${i}`, type: 'TOOL' })),
    });
    const outline = renderTraceOutline(many, { maxChars: 1000 });
    expect(outline.length).toBeLessThan(1100);
    expect(outline).toMatch(/\(\d+ more spans omitted\)$/);
  });

  it('renders the view as JSON-safe data (bigint as string, bytes as base64)', () => {
    const v = makeTraceView({
      spans: [{ name: 'bin', attributes: { blob: new Uint8Array([1, 2, 3]), n: 5 } }],
    });
    const json = traceViewJson(v) as {
      spans: Array<Record<string, unknown>>;
      rootSpan: Record<string, unknown>;
    };
    const bin = json.spans.find((s) => s.name === 'bin')!;
    expect(bin.attributes).toEqual({ blob: 'AQID', n: 5 });
    expect(typeof bin.startTimeUnixNano).toBe('string');
    expect(json.rootSpan.spanType).toBe('CHAIN');
    expect(() => JSON.stringify(json)).not.toThrow();
  });
});

describe('code scorer results', () => {
  it('reads each return kind', () => {
    expect(readCodeResult('{"v":true}', 's')).toEqual([{ name: 's', value: true, metadata: {} }]);
    expect(readCodeResult('{"v":3.5}', 's')).toEqual([{ name: 's', value: 3.5, metadata: {} }]);
    expect(readCodeResult('{"v":"ok"}', 's')).toEqual([{ name: 's', value: 'ok', metadata: {} }]);
    expect(readCodeResult('{"v":{"value":1,"rationale":"r","metadata":{"k":2,"s":"x"}}}', 's')).toEqual([
      { name: 's', value: 1, rationale: 'r', metadata: { k: '2', s: 'x' } },
    ]);
    expect(
      readCodeResult('{"v":[{"name":"a","value":1},{"name":"a","value":2},false]}', 's').map((f) => f.name),
    ).toEqual(['a', 'a/2', 's']);
  });

  it.each([
    ['{"v":null}', 'null'],
    ['{}', 'undefined'],
    ['{"v":{"__scorecarUndefined":true}}', 'undefined'],
    ['{"v":{"__scorecarNonFinite":"Infinity"}}', 'Infinity'],
    ['{"v":[]}', 'empty list'],
    ['{"v":[[1]]}', 'nested list'],
    ['{"v":{"score":1}}', 'without a "value"'],
    ['{"v":{"value":{"a":1}}}', 'expected a boolean'],
    ['{"v":{"name":"","value":1}}', 'non-empty string'],
  ])('refuses %s', (json, message) => {
    try {
      readCodeResult(json, 's');
      throw new Error('expected a refusal');
    } catch (e) {
      expect(e).toBeInstanceOf(ScorecarError);
      expect((e as ScorecarError).code).toBe('CODE_SCORER_INVALID_RESULT');
      expect((e as ScorecarError).message).toContain(message);
    }
  });

  it('aggregates like MLflow (numpy var and percentile)', () => {
    const xs = [1, 2, 3, 4, 10];
    expect(aggregate(xs, 'mean')).toBe(4);
    expect(aggregate(xs, 'min')).toBe(1);
    expect(aggregate(xs, 'max')).toBe(10);
    expect(aggregate(xs, 'median')).toBe(3);
    expect(aggregate([1, 2, 3, 4], 'median')).toBe(2.5);
    expect(aggregate(xs, 'variance')).toBeCloseTo(10, 10);
    expect(aggregate(xs, 'p90')).toBeCloseTo(7.6, 10);
    expect(aggregate([5], 'p90')).toBe(5);
    expect(aggregate([], 'mean')).toBeNaN();
  });
});

describe('assessmentId', () => {
  it('is deterministic, prefixed, and changes with every field', () => {
    const base = assessmentId('ab'.repeat(16), 'cd'.repeat(8), 'safety', 1, 'safety');
    expect(base).toMatch(/^a-[0-9a-f]{32}$/);
    expect(assessmentId('AB'.repeat(16), 'CD'.repeat(8), 'safety', 1, 'safety')).toBe(base);
    const variants = [
      assessmentId('ab'.repeat(16), 'ce'.repeat(8), 'safety', 1, 'safety'),
      assessmentId('ab'.repeat(16), 'cd'.repeat(8), 'safety2', 1, 'safety'),
      assessmentId('ab'.repeat(16), 'cd'.repeat(8), 'safety', 2, 'safety'),
      assessmentId('ab'.repeat(16), 'cd'.repeat(8), 'safety', 1, 'safety/2'),
    ];
    expect(new Set([base, ...variants]).size).toBe(5);
  });
});

describe('runner with a fake provider', () => {
  const scorer = (definition: ScorerDefinition, name = 'judge'): Scorer => ({
    experimentId: 'exp-1',
    name,
    version: 3,
    definition,
    sampleRate: 0.5,
    filterString: null,
    status: 'active',
    createdAt: '2025-01-01T00:00:00Z',
    updatedAt: '2025-01-01T00:00:00Z',
  });

  function fakeFetch(content: string | ((body: string) => string), status = 200): typeof fetch {
    return (async (_url: string, init?: RequestInit) => {
      const text = typeof content === 'function' ? content(String(init?.body)) : content;
      return new Response(
        JSON.stringify({
          choices: [{ message: { content: text } }],
          usage: { prompt_tokens: 10, completion_tokens: 2 },
        }),
        {
          status,
        },
      );
    }) as typeof fetch;
  }

  it('builds MLflow-style assessments with usage, cost and deterministic ids', async () => {
    const runner = createScorerRunner({
      fetch: fakeFetch('{"result": "yes", "rationale": "fine"}'),
      env: {},
      defaultModel: 'openai:/judge-model',
      prices: { 'openai:/judge-model': { inputPerMillionTokens: 1, outputPerMillionTokens: 2 } },
    });
    const [a] = await runAssessments(runner, {
      view: rag,
      scorer: scorer({ type: 'builtin', judge: 'safety' }),
      sampleRate: 0.25,
    });
    expect(a).toEqual({
      assessmentId: assessmentId(rag.traceId, rag.rootSpan.spanId, 'judge', 3, 'judge'),
      name: 'judge',
      traceId: rag.traceId,
      spanId: rag.rootSpan.spanId,
      experimentId: 'exp-1',
      scorer: { name: 'judge', version: 3 },
      source: { type: 'LLM_JUDGE', id: 'openai:/judge-model' },
      value: 'yes',
      rationale: 'fine',
      metadata: {
        'scorecar.usage.input_tokens': '10',
        'scorecar.usage.output_tokens': '2',
        'scorecar.attempts': '1',
        'scorecar.cost': '0.000014',
      },
      sampleRate: 0.25,
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    await runner.close();
  });

  it('turns an answer outside the choices, a bad definition and an unusable model into error assessments', async () => {
    const runner = createScorerRunner({
      fetch: fakeFetch('{"result": "maybe"}'),
      env: {},
      defaultModel: 'openai:/m',
    });
    const [a] = await runAssessments(runner, {
      view: rag,
      scorer: scorer({ type: 'prompt', promptTemplate: '{{response}} [[x]] [[y]]' }),
      sampleRate: 1,
    });
    expect(a!.value).toBeNull();
    expect(a!.error?.code).toBe('JUDGE_INVALID_RESPONSE');
    expect(a!.metadata['scorecar.usage.input_tokens']).toBe('10');
    const [b] = await runAssessments(runner, {
      view: rag,
      scorer: scorer({ type: 'builtin', judge: 'nope' } as unknown as ScorerDefinition),
      sampleRate: 1,
    });
    expect(b!.error).toEqual({
      code: 'INVALID_DEFINITION',
      message: expect.stringContaining('definition.judge'),
    });
    const [c] = await runAssessments(runner, {
      view: rag,
      scorer: scorer({ type: 'builtin', judge: 'safety', model: 'databricks:/ep' }),
      sampleRate: 1,
    });
    expect(c!.error?.code).toBe('PROVIDER_NOT_CONFIGURED');
    expect(c!.source).toEqual({ type: 'LLM_JUDGE', id: 'databricks:/ep' });
    await runner.close();
  });

  it('a retrieval judge on a trace without retriever spans yields no assessment', async () => {
    const runner = createScorerRunner({ fetch: fakeFetch('{"result": "yes"}'), env: {} });
    const out = await runAssessments(runner, {
      view: makeTraceView({ inputs: 'q', outputs: 'a' }),
      scorer: scorer({ type: 'builtin', judge: 'retrieval_relevance' }),
      sampleRate: 1,
    });
    expect(out).toEqual([]);
    expect(runner.modelFor({ type: 'builtin', judge: 'safety' })).toBe('openai:/gpt-4.1-mini');
    expect(runner.modelFor({ type: 'code', source: '(c) => 1' })).toBeUndefined();
    await runner.close();
  });

  it('takes the validated config section scoring.* as its options', async () => {
    const config = configSchema.parse({
      scoring: {
        defaultModel: 'anthropic:/claude-haiku-4-5',
        providers: { anthropic: { baseUrl: 'http://127.0.0.1:1', concurrency: 2 } },
      },
    });
    const options: ScoringOptions = { ...config.scoring, env: {}, fetch: fakeFetch('x') };
    const runner = createScorerRunner(options);
    expect(runner.modelFor({ type: 'builtin', judge: 'safety' })).toBe('anthropic:/claude-haiku-4-5');
    await runner.close();
  });

  it('rejects after close and when aborted', async () => {
    const runner = createScorerRunner({ fetch: fakeFetch('{"result": "yes"}'), env: {} });
    const ctrl = new AbortController();
    ctrl.abort(new Error('stop'));
    await expect(
      runner.run(
        { view: rag, scorer: scorer({ type: 'builtin', judge: 'safety' }), sampleRate: 1 },
        ctrl.signal,
      ),
    ).rejects.toThrow('stop');
    await runner.close();
    await expect(
      runner.run({ view: rag, scorer: scorer({ type: 'builtin', judge: 'safety' }), sampleRate: 1 }),
    ).rejects.toMatchObject({
      code: 'SHUTTING_DOWN',
    });
  });
});
