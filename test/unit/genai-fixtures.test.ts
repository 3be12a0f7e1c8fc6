// The trace view of every recorded fixture must say what the recorded app did (kb.json): three
// turns in session-42 for user-7, the retrieved documents, the answers, the token counts the
// model server reported, and the failed third turn.
import { describe, expect, it } from 'vitest';
import { resolveExperiment } from '../../src/genai/experiment.ts';
import type { TokenUsage, TraceView } from '../../src/genai/types.ts';
import { countTokens, KB, systemMessage } from '../../scripts/record-fixtures/kb.ts';
import {
  ALL_FIXTURES,
  DEFAULT_VIEW_OPTIONS,
  fixtureProtobuf,
  fixtureTraces,
  fixtureViews,
  fixtureViewsByTurn,
  loadFixture,
  loadFixtureLogs,
} from '../support/fixtures.ts';

const DOCS = new Map(KB.documents.map((d) => [d.id, d]));
const turnDocs = (t: number) => KB.turns[t]!.docs.map((id) => DOCS.get(id)!);

/** Usage the fixture model server reported for turn t (words in the prompt and the answer). */
function serverUsage(t: number): TokenUsage {
  const turn = KB.turns[t]!;
  const input = countTokens(systemMessage(turnDocs(t))) + countTokens(turn.question);
  const output = countTokens(turn.answer ?? '');
  return { inputTokens: input, outputTokens: output, totalTokens: input + output };
}

interface Expected {
  experiment: string;
  /** Conventions recognised, for every turn or per turn. */
  conventions: string[] | string[][];
  /** Span name -> span type, per turn. */
  types: Record<string, string>[];
  retrieverName: string;
  inputs: (t: number) => unknown;
  outputs: (t: number) => unknown;
  usage: TokenUsage[];
  status: ('OK' | 'ERROR')[];
  query?: (t: number) => unknown;
}

const q = (t: number) => KB.turns[t]!.question;
const a = (t: number) => KB.turns[t]!.answer ?? undefined;
const answered = (f: (t: number) => unknown) => (t: number) =>
  KB.turns[t]!.answer === null ? undefined : f(t);

const EXPECTED: Record<string, Expected> = {
  'openinference/openai-rag': {
    experiment: 'rag-openinference',
    conventions: ['openinference'],
    types: [
      { 'rag-query': 'CHAIN', retrieve: 'RETRIEVER', 'OpenAI Chat Completions': 'LLM' },
      { 'rag-query': 'CHAIN', retrieve: 'RETRIEVER', 'OpenAI Chat Completions': 'LLM' },
      // The instrumentation exported no LLM span for the refused call.
      { 'rag-query': 'CHAIN', retrieve: 'RETRIEVER' },
    ],
    retrieverName: 'retrieve',
    inputs: q,
    outputs: a,
    // The instrumentation records no usage for streamed completions.
    usage: [serverUsage(0), {}, {}],
    status: ['OK', 'OK', 'ERROR'],
    query: q,
  },
  'openllmetry/openai-rag': {
    experiment: 'rag-openllmetry',
    // Turn 3 lost its LLM span, the only one with GenAI semconv attributes.
    conventions: [['genai-semconv', 'openllmetry'], ['genai-semconv', 'openllmetry'], ['openllmetry']],
    types: [
      {
        'rag_query.workflow': 'CHAIN',
        'retrieve.task': 'CHAIN',
        'memory.query': 'RETRIEVER',
        'chat gpt-4o-mini': 'CHAT_MODEL',
      },
      {
        'rag_query.workflow': 'CHAIN',
        'retrieve.task': 'CHAIN',
        'memory.query': 'RETRIEVER',
        'chat gpt-4o-mini': 'CHAT_MODEL',
      },
      // The SDK never ended the workflow and LLM spans of the refused call: no root arrived.
      { 'retrieve.task': 'CHAIN', 'memory.query': 'RETRIEVER' },
    ],
    retrieverName: 'memory.query',
    // Turn 3's top span is the retrieval task, called without arguments.
    inputs: (t) => ({ args: t === 2 ? [] : [q(t)], kwargs: {} }),
    outputs: (t) =>
      t === 2
        ? turnDocs(2).map((d) => ({ id: d.id, content: d.content, score: d.score, metadata: d.metadata }))
        : a(t),
    // For the streamed call the SDK counts tokens itself.
    usage: [serverUsage(0), { inputTokens: 28, outputTokens: 9, totalTokens: 37 }, {}],
    // The failure never reached a span that was exported.
    status: ['OK', 'OK', 'OK'],
  },
  'vercel-ai/openai-rag': {
    experiment: 'rag-vercel-ai',
    conventions: ['genai-semconv', 'vercel-ai'],
    types: [0, 1, 2].map((t) => {
      const op = KB.turns[t]!.stream ? 'ai.streamText' : 'ai.generateText';
      const inner = KB.turns[t]!.stream ? 'doStream' : 'doGenerate';
      return {
        'rag-query': 'UNKNOWN',
        'ai.embed': 'EMBEDDING',
        'ai.embed.doEmbed': 'EMBEDDING',
        'retrieval kb': 'RETRIEVER',
        [op]: 'LLM',
        [`${op}.${inner}`]: 'CHAT_MODEL',
      };
    }),
    retrieverName: 'retrieval kb',
    // The app's root span carries no I/O: the outermost LLM span (ai.generateText) speaks for it.
    inputs: (t) => ({ system: systemMessage(turnDocs(t)), prompt: q(t) }),
    outputs: a,
    // Outer and provider-call spans both report usage; it is counted once.
    usage: [serverUsage(0), serverUsage(1), {}],
    status: ['OK', 'OK', 'ERROR'],
    query: q,
  },
  'langfuse/openai-rag': {
    experiment: 'rag-langfuse',
    conventions: ['langfuse'],
    types: [0, 1, 2].map(() => ({ 'rag-query': 'UNKNOWN', retrieve: 'RETRIEVER', 'llm-call': 'LLM' })),
    retrieverName: 'retrieve',
    inputs: (t) => ({ question: q(t) }),
    outputs: answered((t) => ({ answer: a(t) })),
    usage: [serverUsage(0), serverUsage(1), {}],
    status: ['OK', 'OK', 'ERROR'],
    query: (t) => ({ query: q(t) }),
  },
  'genai-semconv/openai-js': {
    experiment: 'rag-genai-semconv',
    conventions: ['genai-semconv'],
    types: [0, 1, 2].map(() => ({
      'rag-query': 'UNKNOWN',
      'retrieval kb': 'RETRIEVER',
      'chat gpt-4o-mini': 'CHAT_MODEL',
    })),
    retrieverName: 'retrieval kb',
    // This instrumentation writes message content to log records only (see the .logs.json):
    // gen_ai.system.message / gen_ai.user.message / gen_ai.choice events with the content in the
    // body, joined to the chat span by its span id. The refused turn logged its prompt, no choice.
    inputs: (t) => [
      { role: 'system', content: systemMessage(turnDocs(t)) },
      { role: 'user', content: q(t) },
    ],
    outputs: answered((t) => [{ finish_reason: 'stop', index: 0, message: { content: a(t) } }]),
    usage: [serverUsage(0), serverUsage(1), {}],
    status: ['OK', 'OK', 'ERROR'],
    query: q,
  },
  'genai-semconv/openai-python': {
    experiment: 'rag-genai-semconv-python',
    conventions: ['genai-semconv'],
    types: [0, 1, 2].map(() => ({
      'rag-query': 'UNKNOWN',
      'retrieval kb': 'RETRIEVER',
      'chat gpt-4o-mini': 'CHAT_MODEL',
    })),
    retrieverName: 'retrieval kb',
    inputs: (t) => [
      { role: 'system', parts: [{ content: systemMessage(turnDocs(t)), type: 'text' }] },
      { role: 'user', parts: [{ content: q(t), type: 'text' }] },
    ],
    outputs: answered((t) => [
      { role: 'assistant', parts: [{ content: a(t), type: 'text' }], finish_reason: 'stop' },
    ]),
    usage: [serverUsage(0), serverUsage(1), {}],
    status: ['OK', 'OK', 'ERROR'],
    query: q,
  },
  'mlflow/python-rag': {
    // MLflow's resource has no service.name, and nothing names an experiment.
    experiment: 'default',
    conventions: ['mlflow'],
    types: [0, 1, 2].map(() => ({ 'rag-query': 'CHAIN', retrieve: 'RETRIEVER', Completions: 'CHAT_MODEL' })),
    retrieverName: 'retrieve',
    inputs: (t) => ({ question: q(t), stream: KB.turns[t]!.stream }),
    outputs: a,
    usage: [serverUsage(0), serverUsage(1), {}],
    status: ['OK', 'OK', 'ERROR'],
    query: (t) => ({ question: q(t) }),
  },
};

function typesByName(v: TraceView): Record<string, string> {
  const out: Record<string, string> = {};
  v.spans.forEach((s, i) => {
    out[s.name] = v.spanTypes[i]!;
  });
  return out;
}

describe('recorded fixtures', () => {
  it('covers every recording app, each fixture decodes', () => {
    expect(ALL_FIXTURES.map((f) => `${f.convention}/${f.name}`).sort()).toEqual(Object.keys(EXPECTED).sort());
    for (const f of ALL_FIXTURES) {
      expect(Array.isArray(loadFixture(f.convention, f.name).resourceSpans)).toBe(true);
      expect(fixtureProtobuf(f.convention, f.name).length).toBeGreaterThan(100);
    }
  });

  for (const [id, exp] of Object.entries(EXPECTED)) {
    const [convention, name] = id.split('/') as [string, string];
    describe(id, () => {
      const views = fixtureViewsByTurn(convention, name);

      it('has one trace per turn, with status, session, user and experiment', () => {
        expect(views).toHaveLength(KB.turns.length);
        expect(views.map((v) => v.status)).toEqual(exp.status);
        views.forEach((v, t) => {
          const conv = exp.conventions;
          expect(v.conventions).toEqual(Array.isArray(conv[0]) ? conv[t] : conv);
          expect(v.sessionId).toBe(KB.session);
          expect(v.userId).toBe(KB.user);
          expect(v.experimentId).toBe(exp.experiment);
          expect(v.spanTypes).toHaveLength(v.spans.length);
          expect(v.executionTimeMs).toBeGreaterThan(0);
          expect(v.metadata['mlflow.trace.session']).toBe(KB.session);
        });
      });

      it('types every span', () => {
        expect(views.map(typesByName)).toEqual(exp.types);
      });

      it('reads the inputs and outputs of each turn', () => {
        views.forEach((v, t) => {
          expect(v.inputs).toEqual(exp.inputs(t));
          expect(v.outputs).toEqual(exp.outputs(t));
        });
      });

      it('sums token usage', () => {
        expect(views.map((v) => v.tokenUsage)).toEqual(exp.usage);
      });

      it('lists the retrieved documents with the retriever span', () => {
        views.forEach((v, t) => {
          expect(v.retrievals).toHaveLength(1);
          const r = v.retrievals[0]!;
          const span = v.spans.find((s) => s.name === exp.retrieverName)!;
          expect(r.spanId).toBe(span.spanId);
          expect(r.spanName).toBe(exp.retrieverName);
          expect(v.spanTypes[v.spans.indexOf(span)]).toBe('RETRIEVER');
          expect(r.documents.map((d) => d.content)).toEqual(turnDocs(t).map((d) => d.content));
          expect(r.documents.map((d) => d.id)).toEqual(turnDocs(t).map((d) => d.id));
          expect(r.documents.map((d) => d.score)).toEqual(turnDocs(t).map((d) => d.score));
          if (exp.query) expect(r.query).toEqual(exp.query(t));
        });
      });
    });
  }

  it('MLflow: expectations, JSON-encoded attributes decoded, retriever metadata kept', () => {
    const [first, second] = fixtureViewsByTurn('mlflow', 'python-rag');
    expect(first!.expectations).toEqual({
      expectedResponse: 'Paris is the capital of France.',
      expectedFacts: ['Paris is the capital of France'],
    });
    expect(second!.expectations).toEqual({});
    expect(first!.metadata['mlflow.spanType']).toBe('CHAIN');
    expect(first!.metadata['session.id']).toBe(KB.session);
    expect(first!.retrievals[0]!.documents[0]!.metadata).toEqual({ doc_uri: 'wiki/paris', score: 0.92 });
  });

  it('Langfuse: tags and trace metadata', () => {
    const [v] = fixtureViewsByTurn('langfuse', 'openai-rag');
    expect(v!.tags).toEqual({ rag: 'true', fixtures: 'true' });
    expect(v!.metadata.channel).toBe('fixtures');
    expect(v!.metadata['service.name']).toBe('rag-langfuse');
  });

  it('OpenLLMetry: a trace whose root never arrived is still viewed from its top span', () => {
    const v = fixtureViewsByTurn('openllmetry', 'openai-rag')[2]!;
    expect(v.rootSpan.name).toBe('retrieve.task');
    expect(v.rootSpan.parentSpanId).not.toBe('');
    expect(v.spans.some((s) => s.spanId === v.rootSpan.parentSpanId)).toBe(false);
    const first = Math.min(...v.spans.map((s) => s.startTimeMs));
    const last = Math.max(...v.spans.map((s) => s.endTimeMs));
    expect(v.executionTimeMs).toBeCloseTo(last - first, 3);
  });

  it('GenAI semconv (JS): the message content sits in the recorded log events', () => {
    const logs = JSON.stringify(loadFixtureLogs('genai-semconv', 'openai-js'));
    for (const t of KB.turns) expect(logs).toContain(JSON.stringify(t.question));
    expect(logs).toContain('gen_ai.user.message');
    expect(logs).toContain('gen_ai.choice');
    expect(loadFixtureLogs('mlflow', 'python-rag')).toBeNull();
  });

  it('resolveExperiment agrees with the view and honours the header and span rules', () => {
    for (const f of ALL_FIXTURES) {
      const views = fixtureViews(f.convention, f.name);
      fixtureTraces(f.convention, f.name).forEach((t, i) => {
        expect(resolveExperiment(t, DEFAULT_VIEW_OPTIONS.resolution, 'default')).toBe(views[i]!.experimentId);
      });
    }
    const [mlflowTrace] = fixtureTraces('mlflow', 'python-rag', { experimentHeader: 'exp-from-header' });
    expect(resolveExperiment(mlflowTrace!, DEFAULT_VIEW_OPTIONS.resolution, 'default')).toBe(
      'exp-from-header',
    );
    // MLflow JSON-encodes span attributes; span rules read them decoded.
    expect(resolveExperiment(mlflowTrace!, ['span:mlflow.spanFunctionName'], 'default')).toBe('answer');
    const [oi] = fixtureTraces('openinference', 'openai-rag', { experimentHeader: 'exp-h' });
    expect(resolveExperiment(oi!, DEFAULT_VIEW_OPTIONS.resolution, 'd')).toBe('exp-h');
    expect(resolveExperiment(oi!, ['resource:service.name', 'header:x-mlflow-experiment-id'], 'd')).toBe(
      'rag-openinference',
    );
    expect(resolveExperiment(oi!, ['resource:deployment.environment.name'], 'd')).toBe('fixtures');
    expect(resolveExperiment(oi!, ['span:openinference.span.kind'], 'd')).toBe('CHAIN');
    expect(resolveExperiment(oi!, ['header:x-other', 'resource:nope', 'span:nope'], 'd')).toBe('d');
  });
});
