// Judges against the real local model server over HTTP. Verdicts follow the server's documented
// rule (scripts/model-server.ts): marker words such as WRONG or UNSAFE in the judged material
// give "no", SCORE=N gives N, and a prompt judge picks the label that appears in the response.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ModelServer, startModelServer } from '../../scripts/model-server.ts';
import type { Assessment } from '../../src/assessments/types.ts';
import type { TraceView } from '../../src/genai/types.ts';
import type { Scorer, ScorerDefinition } from '../../src/definitions/index.ts';
import { validateDefinition } from '../../src/definitions/index.ts';
import { createScorerRunner, type ScorerRunner, type ScoringOptions } from '../../src/scoring/index.ts';
import { makeTraceView, runAssessments } from '../support/testkit.ts';

let server: ModelServer;
let runner: ScorerRunner;
let model: string;

const retry = {
  initialIntervalMs: 20,
  maxIntervalMs: 200,
  maxElapsedMs: 10_000,
  multiplier: 2,
  randomizationFactor: 0,
};

function scorer(definition: unknown, name = 'judge'): Scorer {
  const v = validateDefinition(definition);
  if (!v.ok) throw new Error(`invalid test definition: ${JSON.stringify(v.errors)}`);
  return {
    experimentId: 'exp',
    name,
    version: 1,
    definition: v.definition,
    sampleRate: 1,
    filterString: null,
    status: 'active',
    createdAt: '2025-01-01T00:00:00Z',
    updatedAt: '2025-01-01T00:00:00Z',
  };
}

async function judge(
  definition: ScorerDefinition | Record<string, unknown>,
  view: TraceView,
  r: ScorerRunner = runner,
): Promise<Assessment[]> {
  return runAssessments(r, { view, scorer: scorer(definition), sampleRate: 1 });
}

async function values(
  definition: ScorerDefinition | Record<string, unknown>,
  view: TraceView,
): Promise<unknown[]> {
  const out = await judge(definition, view);
  for (const a of out) expect(a.error, JSON.stringify(a.error)).toBeUndefined();
  return out.map((a) => a.value);
}

beforeAll(async () => {
  server = await startModelServer();
  model = `openai:/scorecar-judge@${server.url}/v1`;
  runner = createScorerRunner({ defaultModel: model, env: {}, retry, timeoutMs: 5000 });
});

afterAll(async () => {
  await runner.close();
  await server.close();
});

beforeEach(() => {
  server.reset();
});

const question = { messages: [{ role: 'user', content: 'What is the capital of France?' }] };
const good = makeTraceView({
  traceId: 'good',
  inputs: question,
  outputs: 'The capital of France is Paris.',
  expectations: {
    expectedFacts: ['Paris is the capital of France'],
    expectedResponse: 'Paris is the capital of France.',
    guidelines: ['Answer in one sentence'],
  },
});
const bad = makeTraceView({
  traceId: 'bad',
  inputs: question,
  outputs: 'The capital of France is Berlin (WRONG, UNSAFE, IRRELEVANT).',
  expectations: {
    expectedFacts: ['Paris is the capital of France'],
    expectedResponse: 'Paris.',
    guidelines: ['Answer in one sentence'],
  },
});
const rag = makeTraceView({
  traceId: 'rag',
  inputs: question,
  outputs: 'Paris.',
  expectations: { expectedFacts: ['Paris is the capital of France'] },
  retrievals: [
    { spanName: 'vector_search', documents: ['Paris is the capital and largest city of France.'] },
    {
      spanName: 'keyword_search',
      documents: ['Football scores of the week (IRRELEVANT, UNGROUNDED, INSUFFICIENT).'],
    },
    { spanName: 'rerank_input', documents: ['France borders Spain.', 'Paris hosts the Louvre.'] },
  ],
});

describe('built-in judges produce both verdicts', () => {
  it.each([
    [{ type: 'builtin', judge: 'safety' }],
    [{ type: 'builtin', judge: 'relevance_to_query' }],
    [{ type: 'builtin', judge: 'correctness' }],
    [{ type: 'builtin', judge: 'guidelines', guidelines: ['Be factual', 'Be brief'] }],
    [{ type: 'guidelines', guidelines: ['Be factual'] }],
    [{ type: 'builtin', judge: 'expectations_guidelines' }],
    [{ type: 'builtin', judge: 'equivalence' }],
  ])('%j', async (def) => {
    expect(await values(def, good)).toEqual(['yes']);
    expect(await values(def, bad)).toEqual(['no']);
  });

  it('a marker in the expectations alone turns correctness to "no"', async () => {
    const v = makeTraceView({
      inputs: 'q',
      outputs: 'Paris.',
      expectations: { expectedFacts: ['It is Lyon, the Paris answer is WRONG'] },
    });
    expect(await values({ type: 'builtin', judge: 'correctness' }, v)).toEqual(['no']);
  });

  it.each([['retrieval_groundedness'], ['retrieval_relevance'], ['retrieval_sufficiency']])(
    '%s: one assessment per retriever span, with its span id',
    async (name) => {
      const out = await judge({ type: 'builtin', judge: name }, rag);
      expect(out.map((a) => [a.spanId, a.value, a.metadata['scorecar.retrieval.span_name']])).toEqual([
        [rag.retrievals[0]!.spanId, 'yes', 'vector_search'],
        [rag.retrievals[1]!.spanId, 'no', 'keyword_search'],
        [rag.retrievals[2]!.spanId, 'yes', 'rerank_input'],
      ]);
      expect(new Set(out.map((a) => a.assessmentId)).size).toBe(3);
      expect(
        out.every((a) => a.source.type === 'LLM_JUDGE' && a.source.id === model && a.rationale !== undefined),
      ).toBe(true);
      expect(server.stats().requests).toBe(3);
    },
  );

  it('records token usage from the response', async () => {
    const [a] = await judge({ type: 'builtin', judge: 'safety' }, good);
    expect(Number(a!.metadata['scorecar.usage.input_tokens'])).toBeGreaterThan(10);
    expect(Number(a!.metadata['scorecar.usage.output_tokens'])).toBeGreaterThan(0);
    expect(a!.metadata['scorecar.attempts']).toBe('1');
  });
});

describe('prompt judge', () => {
  const template =
    'Classify the tone of this reply.\nReply: {{response}}\nCategories: [[formal]] [[casual]] [[rude]]';
  const reply = (text: string) => makeTraceView({ traceId: text, inputs: 'q', outputs: text });

  it('picks each category', async () => {
    const def = { type: 'prompt', promptTemplate: template };
    expect(await values(def, reply('Dear Sir, a formal reply.'))).toEqual(['formal']);
    expect(await values(def, reply('hey, just a casual note'))).toEqual(['casual']);
    expect(await values(def, reply('you are rude and I am too'))).toEqual(['rude']);
  });

  it('maps labels to numbers and keeps the label in metadata', async () => {
    const [a] = await judge(
      { type: 'prompt', promptTemplate: template, numericValues: { formal: 2, casual: 1, rude: 0 } },
      reply('so casual'),
    );
    expect(a!.value).toBe(1);
    expect(a!.metadata['scorecar.label']).toBe('casual');
  });
});

describe('instructions judge', () => {
  it('yes_no, bool, number and string value types', async () => {
    const ask = 'Does {{ outputs }} correctly answer {{ inputs }}?';
    expect(await values({ type: 'judge', instructions: ask }, good)).toEqual(['yes']);
    expect(await values({ type: 'judge', instructions: ask }, bad)).toEqual(['no']);
    expect(await values({ type: 'judge', instructions: ask, feedbackValueType: 'bool' }, good)).toEqual([
      true,
    ]);
    expect(await values({ type: 'judge', instructions: ask, feedbackValueType: 'bool' }, bad)).toEqual([
      false,
    ]);
    const scored = makeTraceView({ inputs: 'q', outputs: 'answer SCORE=4' });
    expect(
      await values(
        { type: 'judge', instructions: 'Rate {{ outputs }} from 1 to 5', feedbackValueType: 'number' },
        scored,
      ),
    ).toEqual([4]);
    expect(
      await values(
        { type: 'judge', instructions: 'Summarise {{ outputs }}', feedbackValueType: 'string' },
        bad,
      ),
    ).toEqual(['no']);
  });

  it('{{ expectations }} and {{ trace }} reach the model', async () => {
    expect(
      await values({ type: 'judge', instructions: 'Compare {{ outputs }} with {{ expectations }}' }, good),
    ).toEqual(['yes']);
    const agent = (toolOutput: string) =>
      makeTraceView({
        traceId: toolOutput,
        inputs: 'book a flight',
        outputs: 'Booked.',
        spans: [
          {
            name: 'search_flights',
            type: 'TOOL',
            attributes: { 'mlflow.spanOutputs': JSON.stringify(toolOutput) },
          },
        ],
      });
    const def = { type: 'judge', instructions: 'Did the agent use its tools well? {{ trace }}' };
    expect(await values(def, agent('3 flights found'))).toEqual(['yes']);
    expect(await values(def, agent('called with the WRONG date'))).toEqual(['no']);
  });
});

describe('providers against the model server', () => {
  it('Anthropic messages API', async () => {
    const anthropic = `anthropic:/scorecar-judge@${server.url}`;
    const [yes] = await judge({ type: 'builtin', judge: 'safety', model: anthropic }, good);
    const [no] = await judge({ type: 'builtin', judge: 'safety', model: anthropic }, bad);
    expect([yes!.value, no!.value]).toEqual(['yes', 'no']);
    expect(yes!.source.id).toBe(anthropic);
    expect(server.stats().byPath).toEqual({ '/v1/messages': 2 });
  });

  it('configured base URL and key (no @ in the URI), and a wrong key', async () => {
    const locked = await startModelServer({ apiKey: 'sekrit' });
    const ok = createScorerRunner({
      env: {},
      retry,
      providers: { openai: { baseUrl: `${locked.url}/v1`, apiKey: 'sekrit' } },
    });
    const wrong = createScorerRunner({
      env: { OPENAI_BASE_URL: `${locked.url}/v1`, OPENAI_API_KEY: 'nope' },
      retry,
    });
    try {
      const [a] = await judge(
        { type: 'builtin', judge: 'safety', model: 'openai:/scorecar-judge' },
        good,
        ok,
      );
      expect(a!.value).toBe('yes');
      expect(locked.stats().last).toMatchObject({ responseFormat: 'json_object', authorized: true });
      const [b] = await judge(
        { type: 'builtin', judge: 'safety', model: 'openai:/scorecar-judge' },
        good,
        wrong,
      );
      expect(b!.error?.code).toBe('UNAUTHENTICATED');
    } finally {
      await ok.close();
      await wrong.close();
      await locked.close();
    }
  });
});

describe('faults', () => {
  const safety = { type: 'builtin', judge: 'safety' };

  it('429 with Retry-After is retried and recovers', async () => {
    server.setFault({ kind: '429', retryAfterSeconds: 1, count: 1 });
    const [a] = await judge(safety, good);
    expect(a!.value).toBe('yes');
    expect(a!.metadata['scorecar.attempts']).toBe('2');
    expect(server.stats()).toMatchObject({ requests: 2, faulted: 1, ok: 1 });
  });

  it('500s are retried and recover', async () => {
    server.setFault({ kind: '500', count: 2 });
    const [a] = await judge(safety, bad);
    expect(a!.value).toBe('no');
    expect(a!.metadata['scorecar.attempts']).toBe('3');
  });

  it('a slow answer times out and the retry recovers', async () => {
    const quick = createScorerRunner({ defaultModel: model, env: {}, retry, timeoutMs: 1000 });
    try {
      server.setFault({ kind: 'slow', delayMs: 10_000, count: 1 });
      const [a] = await judge(safety, good, quick);
      expect(a!.value).toBe('yes');
      expect(a!.metadata['scorecar.attempts']).toBe('2');
      expect(server.stats().byFault).toEqual({ slow: 1 });
    } finally {
      await quick.close();
    }
  });

  it('401 is not retried and gives UNAUTHENTICATED', async () => {
    server.setFault({ kind: '401' });
    const [a] = await judge(safety, good);
    expect(a!.value).toBeNull();
    expect(a!.error?.code).toBe('UNAUTHENTICATED');
    expect(server.stats().requests).toBe(1);
  });

  it('malformed and wrong-schema answers give error assessments', async () => {
    server.setFault({ kind: 'malformed', count: 1 });
    const [m] = await judge(safety, good);
    expect(m!.error?.code).toBe('JUDGE_PARSE_ERROR');
    expect(Number(m!.metadata['scorecar.usage.output_tokens'])).toBeGreaterThan(0);
    server.setFault({ kind: 'wrong_schema', count: 1 });
    const [w] = await judge(safety, good);
    expect(w!.error?.code).toBe('JUDGE_INVALID_RESPONSE');
    expect(server.stats().requests).toBe(2);
  });

  it('a fault that outlasts the retry budget ends as an error assessment', async () => {
    const impatient = createScorerRunner({
      defaultModel: model,
      env: {},
      retry: { ...retry, maxElapsedMs: 200 },
    });
    try {
      server.setFault({ kind: '500' });
      const out = await judge({ type: 'builtin', judge: 'retrieval_relevance' }, rag, impatient);
      expect(out.map((a) => a.error?.code)).toEqual([
        'PROVIDER_UNAVAILABLE',
        'PROVIDER_UNAVAILABLE',
        'PROVIDER_UNAVAILABLE',
      ]);
      expect(out.map((a) => a.spanId)).toEqual(rag.retrievals.map((r) => r.spanId));
      // retried while the budget lasted (how often depends on the machine's speed)
      expect(server.stats().requests).toBeGreaterThanOrEqual(3);
    } finally {
      await impatient.close();
    }
  });

  it('an unreachable server is retried, then reported', async () => {
    const gone = await startModelServer();
    const url = gone.url;
    await gone.close();
    const opts: ScoringOptions = {
      defaultModel: `openai:/m@${url}/v1`,
      env: {},
      retry: { ...retry, maxElapsedMs: 100 },
    };
    const r = createScorerRunner(opts);
    try {
      const [a] = await judge(safety, good, r);
      expect(a!.error?.code).toBe('PROVIDER_UNAVAILABLE');
      expect(a!.error?.message).toContain('connection failed');
    } finally {
      await r.close();
    }
  });
});
