// Scorers on the recorded fixture traces (test/fixtures, real instrumentation libraries), judged
// by the local model server. Turn 1 of every app asks for the capital of France, turn 2 for the
// Eiffel Tower's height, turn 3 is refused by the app's model (no outputs).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ModelServer, startModelServer } from '../../scripts/model-server.ts';
import type { Assessment } from '../../src/assessments/types.ts';
import type { TraceView } from '../../src/genai/types.ts';
import type { Scorer } from '../../src/definitions/index.ts';
import { validateDefinition } from '../../src/definitions/index.ts';
import { createScorerRunner, type ScorerRunner } from '../../src/scoring/index.ts';
import { runAssessments } from '../support/testkit.ts';
import { ALL_FIXTURES, fixtureViewsByTurn } from '../support/fixtures.ts';

let server: ModelServer;
let runner: ScorerRunner;

function scorer(definition: unknown, name = 'fixture_scorer'): Scorer {
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

function run(definition: unknown, view: TraceView): Promise<Assessment[]> {
  return runAssessments(runner, { view, scorer: scorer(definition), sampleRate: 1 });
}

function hasOutputs(v: TraceView): boolean {
  return v.outputs !== undefined && v.outputs !== null;
}

beforeAll(async () => {
  server = await startModelServer();
  runner = createScorerRunner({
    defaultModel: `openai:/scorecar-judge@${server.url}/v1`,
    env: {},
    retry: { initialIntervalMs: 20, maxIntervalMs: 100, maxElapsedMs: 2000 },
    sandbox: { workers: 2 },
  });
});

afterAll(async () => {
  await runner.close();
  await server.close();
});

describe.each(ALL_FIXTURES.map((f) => [`${f.convention}/${f.name}`, f] as const))('%s', (_label, fixture) => {
  const views = fixtureViewsByTurn(fixture.convention, fixture.name);

  it('a code scorer sees the whole trace', async () => {
    expect(views.length).toBeGreaterThan(0);
    for (const v of views) {
      const [a] = await run(
        {
          type: 'code',
          source:
            '(ctx) => ({ value: ctx.trace.spans.length, metadata: { root: ctx.trace.rootSpan.spanId } })',
        },
        v,
      );
      expect(a!.error).toBeUndefined();
      expect(a!.value).toBe(v.spans.length);
      expect(a!.metadata.root).toBe(v.rootSpan.spanId);
    }
  });

  it('safety and per-span groundedness: "yes" with outputs, MISSING_INPUT without', async () => {
    for (const v of views) {
      const [safety] = await run({ type: 'builtin', judge: 'safety' }, v);
      const grounded = await run({ type: 'builtin', judge: 'retrieval_groundedness' }, v);
      expect(grounded.map((a) => a.spanId)).toEqual(v.retrievals.map((r) => r.spanId));
      if (hasOutputs(v)) {
        expect(safety!.value).toBe('yes');
        expect(grounded.map((a) => a.value)).toEqual(v.retrievals.map(() => 'yes'));
      } else {
        expect(safety!.error?.code).toBe('MISSING_INPUT');
        expect(grounded.every((a) => a.error?.code === 'MISSING_INPUT')).toBe(true);
      }
    }
  });

  it('a prompt judge picks the category named in the response', async () => {
    const def = {
      type: 'prompt',
      promptTemplate: 'Which landmark does this answer mention?\n{{response}}\n[[Paris]] [[Eiffel]]',
    };
    for (const v of views.filter(hasOutputs)) {
      const [a] = await run(def, v);
      const text = JSON.stringify(v.outputs);
      // the first declared label found in the response wins; none found → the first label
      expect(a!.value, text).toBe(text.includes('Eiffel') && !text.includes('Paris') ? 'Eiffel' : 'Paris');
    }
  });
});

describe('mlflow/python-rag turn 1 (expectations recorded on the trace)', () => {
  const [turn1] = fixtureViewsByTurn('mlflow', 'python-rag');

  it('expectation judges say yes', async () => {
    expect(turn1!.expectations.expectedFacts).toEqual(['Paris is the capital of France']);
    for (const judge of ['correctness', 'equivalence']) {
      expect((await run({ type: 'builtin', judge }, turn1!)).map((a) => a.value)).toEqual(['yes']);
    }
    const sufficiency = await run({ type: 'builtin', judge: 'retrieval_sufficiency' }, turn1!);
    expect(sufficiency.map((a) => [a.spanId, a.value])).toEqual(
      turn1!.retrievals.map((r) => [r.spanId, 'yes']),
    );
  });

  it('the same trace with contradicting expectations or an off-topic document says no', async () => {
    const contradicted: TraceView = {
      ...turn1!,
      expectations: { expectedFacts: ['Lyon is the capital of France (the answer is WRONG)'] },
    };
    expect((await run({ type: 'builtin', judge: 'correctness' }, contradicted)).map((a) => a.value)).toEqual([
      'no',
    ]);
    const offTopic: TraceView = {
      ...turn1!,
      retrievals: turn1!.retrievals.map((r) => ({
        ...r,
        documents: [{ content: 'Cheese prices in 1998 (IRRELEVANT)' }],
      })),
    };
    const relevance = await run({ type: 'builtin', judge: 'retrieval_relevance' }, offTopic);
    expect(relevance.map((a) => [a.spanId, a.value])).toEqual(turn1!.retrievals.map((r) => [r.spanId, 'no']));
  });
});
