// Filter strings over trace views built from the recorded fixtures (test/fixtures/README.md):
// every app ran the same three turns in session-42 for user-7 — turn 1 "What is the capital of
// France?" (plain completion), turn 2 "How tall is the Eiffel Tower?" (streamed), turn 3 a
// question the model server refuses, so the trace ends in ERROR.
import { describe, expect, it } from 'vitest';
import type { TraceView } from '../../src/genai/types.ts';
import { compileFilter, FilterSyntaxError } from '../../src/select/index.ts';
import { ALL_FIXTURES, fixtureViewsByTurn } from '../support/fixtures.ts';

const VIEWS: ReadonlyMap<string, TraceView[]> = new Map(
  ALL_FIXTURES.map((f) => [`${f.convention}/${f.name}`, fixtureViewsByTurn(f.convention, f.name)]),
);

// Expected matches per fixture as one character per turn ('T' match, '.' no match). '*' is the
// default for fixtures not named; without '*' they are expected not to match at all ('...').
// The recorded openllmetry app has no error turn: its third trace is a stray OK retrieve.task
// trace (the Traceloop SDK did not export the failed workflow), so it differs on turn 3.
type Expect = Record<string, string>;
const OLLM = 'openllmetry/openai-rag';
const VALID: readonly [string, Expect][] = [
  ['', { '*': 'TTT' }],
  ["trace.status = 'OK'", { '*': 'TT.', [OLLM]: 'TTT' }],
  ["trace.status = 'ERROR'", { '*': '..T', [OLLM]: '...' }],
  ["trace.status != 'ERROR' AND span.type = 'RETRIEVER'", { '*': 'TT.', [OLLM]: 'TTT' }],
  ["trace.name = 'rag-query'", { '*': 'TTT', [OLLM]: '...' }],
  ["trace.name IN ('rag-query', 'rag_query.workflow')", { '*': 'TTT', [OLLM]: 'TT.' }],
  ["trace.text ILIKE '%eiffel%'", { '*': '.T.' }],
  ["trace.text ILIKE '%world cup%'", { '*': '..T', [OLLM]: '...' }],
  ["trace.text LIKE '%Paris%'", { '*': 'TT.' }],
  ["span.content ILIKE '%refuses%'", { '*': '..T', [OLLM]: '...' }],
  ['trace.execution_time_ms >= 0 AND trace.timestamp_ms > 1600000000000', { '*': 'TTT' }],
  ['trace.timestamp_ms > 4102444800000', {}],
  ["metadata.`mlflow.trace.session` = 'session-42'", { '*': 'TTT' }],
  [
    "metadata.`mlflow.trace.user` = 'user-7' AND metadata.`mlflow.trace.session` LIKE 'session-%'",
    { '*': 'TTT' },
  ],
  ["metadata.`mlflow.trace.user` != 'user-7'", {}],
  [
    "request_metadata.`user.id` = 'user-7'",
    {
      'genai-semconv/openai-js': 'TTT',
      'genai-semconv/openai-python': 'TTT',
      'langfuse/openai-rag': 'TTT',
      'mlflow/python-rag': 'TTT',
      'openinference/openai-rag': 'TTT',
    },
  ],
  ["span.type = 'RETRIEVER'", { '*': 'TTT' }],
  ["span.type IN ('LLM', 'CHAT_MODEL')", { '*': 'TTT', 'openinference/openai-rag': 'TT.', [OLLM]: 'TT.' }],
  ["span.type = 'EMBEDDING'", { 'vercel-ai/openai-rag': 'TTT' }],
  ["span.status = 'ERROR'", { '*': '..T', [OLLM]: '...' }],
  [
    "span.name = 'retrieve'",
    { 'langfuse/openai-rag': 'TTT', 'mlflow/python-rag': 'TTT', 'openinference/openai-rag': 'TTT' },
  ],
  [
    "span.name LIKE 'chat %'",
    { 'genai-semconv/openai-js': 'TTT', 'genai-semconv/openai-python': 'TTT', [OLLM]: 'TT.' },
  ],
  ["span.name LIKE 'ai.streamText%'", { 'vercel-ai/openai-rag': '.T.' }],
  [
    "span.attributes.`gen_ai.request.model` = 'gpt-4o-mini'",
    {
      'genai-semconv/openai-js': 'TTT',
      'genai-semconv/openai-python': 'TTT',
      [OLLM]: 'TT.',
      'vercel-ai/openai-rag': 'TTT',
    },
  ],
  [
    'span.attributes.`gen_ai.usage.input_tokens` > 0',
    {
      'genai-semconv/openai-js': 'TT.',
      'genai-semconv/openai-python': 'TT.',
      [OLLM]: 'TT.',
      'vercel-ai/openai-rag': 'TT.',
    },
  ],
  [
    "span.attributes.`gen_ai.response.finish_reasons` LIKE '%stop%'",
    {
      'genai-semconv/openai-js': 'TT.',
      'genai-semconv/openai-python': 'T..',
      [OLLM]: 'TT.',
      'vercel-ai/openai-rag': 'TT.',
    },
  ],
  [
    "span.attributes.`gen_ai.input.messages` ILIKE '%eiffel%'",
    { 'genai-semconv/openai-python': '.T.', [OLLM]: '.T.' },
  ],
  // MLflow encodes every attribute value as JSON ("\"RETRIEVER\""); the decoded value matches.
  ["span.attributes.`mlflow.spanType` = 'RETRIEVER'", { 'mlflow/python-rag': 'TTT' }],
  [
    "span.attributes.mlflow.spanType = 'CHAT_MODEL' AND span.status = 'ERROR'",
    { 'mlflow/python-rag': '..T' },
  ],
  ["span.attributes.`mlflow.chat.tokenUsage` LIKE '%input_tokens%'", { 'mlflow/python-rag': 'TT.' }],
  ['span.attributes.`mlflow.spanInputs` LIKE \'%"stream": true%\'', { 'mlflow/python-rag': '.T.' }],
  [
    "span.attributes.`session.id` = 'session-42'",
    { 'langfuse/openai-rag': 'TTT', 'mlflow/python-rag': 'TTT', 'openinference/openai-rag': 'TTT' },
  ],
  ["tag.rag = 'true' AND tags.fixtures = 'true'", { 'langfuse/openai-rag': 'TTT' }],
  ['tag.rag IS NULL', { '*': 'TTT', 'langfuse/openai-rag': '...' }],
  ["metadata.channel = 'fixtures'", { 'langfuse/openai-rag': 'TTT' }],
  ["metadata.`service.name` LIKE 'rag-%'", { '*': 'TTT', 'mlflow/python-rag': '...' }],
  ['metadata.`service.name` IS NULL', { 'mlflow/python-rag': 'TTT' }],
  [
    "metadata.`deployment.environment.name` = 'fixtures'",
    {
      'genai-semconv/openai-js': 'TTT',
      'genai-semconv/openai-python': 'TTT',
      'openinference/openai-rag': 'TTT',
      'vercel-ai/openai-rag': 'TTT',
    },
  ],
  ["span.attributes.`openinference.span.kind` = 'LLM'", { 'openinference/openai-rag': 'TT.' }],
  // OpenInference records token counts only for the non-streamed completion.
  ['span.attributes.`llm.token_count.prompt` >= 1', { 'openinference/openai-rag': 'T..' }],
  ["span.attributes.`ai.telemetry.metadata.sessionId` = 'session-42'", { 'vercel-ai/openai-rag': 'TTT' }],
  ["span.attributes.`traceloop.span.kind` = 'workflow'", { [OLLM]: 'TT.' }],
  [
    "trace.status = 'OK' AND span.type = 'RETRIEVER' AND span.type IN ('LLM','CHAT_MODEL') AND trace.text ILIKE '%france%'",
    { '*': 'T..' },
  ],
];

// [filter, error position, part of the message]: mistakes someone writing filters for these
// traces is likely to make.
const INVALID: readonly [string, number, string][] = [
  ['span.attributes.mlflow.spanType = RETRIEVER', 34, "quote string values: 'RETRIEVER'"],
  ["attributes.`gen_ai.request.model` = 'gpt-4o-mini'", 11, 'span.attributes.gen_ai.request.model'],
  ["trace.status = 'error'", 15, 'expected one of OK, ERROR, IN_PROGRESS'],
  ['tags.rag = true', 11, "unexpected token 'true'"],
  [
    "metadata.`mlflow.trace.session` = 'session-42' OR metadata.`mlflow.trace.user` = 'user-7'",
    47,
    'only AND is supported',
  ],
  ["span.type LIKE 'RETRIEV%' OR span.type = 'LLM'", 26, 'only AND is supported'],
  ["span.type = 'RETRIEVER' AND", 27, 'expected a condition after AND'],
  ["trace.execution_time_ms > '100'", 26, 'compare it with a numeric literal'],
  ["trace.timestamp_ms >= '2026-01-01'", 22, 'compare it with a numeric literal'],
  ["span.attributes.`gen_ai.usage.input_tokens` > 'ten'", 46, '> compares numbers'],
  ["feedback.relevance = 'yes'", 0, "'feedback' filters are not supported"],
  ['expectation.expected_response IS NOT NULL', 0, "'expectation' filters are not supported"],
  ["span.name == 'retrieve'", 10, "use '=' for equality"],
  ["span.type = 'RETRIEVER' AND (trace.status = 'OK')", 28, 'parentheses are only allowed around IN lists'],
  ["trace.name = 'rag-query", 13, 'unterminated string'],
  ["span.attributes.`session.id = 'session-42'", 16, 'unterminated backtick-quoted key'],
  ["session.id = 'session-42'", 0, "unknown key prefix 'session'"],
  ["metadata.mlflow.trace.session IN 'session-42'", 33, 'IN needs a parenthesised list'],
  ["span.kind = 'CLIENT'", 5, "unknown span field 'kind'"],
  ["trace.text = 'Paris'", 11, 'LIKE, ILIKE only'],
  ['span.attributes.`gen_ai.usage.input_tokens` BETWEEN 1 AND 10', 44, "unexpected token 'BETWEEN'"],
  ["span.status = 'error'", 14, 'expected one of UNSET, OK, ERROR'],
  [
    "span.attributes.`llm.token_count.prompt` > 10 AND NOT span.status = 'ERROR'",
    50,
    'NOT is only supported as NOT IN and IS NOT NULL',
  ],
  ["tag.rag = 'true' AND tag.fixtures != 'true' tag.x = 'y'", 44, 'expected AND or the end of the filter'],
];

function expected(exp: Expect, fixture: string): string {
  return exp[fixture] ?? exp['*'] ?? '...';
}

describe('compileFilter over trace views built from the recorded fixtures', () => {
  it('has the recorded fixtures, three turns each, and names only fixtures that exist', () => {
    expect(VIEWS.size).toBeGreaterThanOrEqual(7);
    for (const [name, views] of VIEWS) expect(views.length, name).toBe(3);
    for (const [, exp] of VALID)
      for (const key of Object.keys(exp)) if (key !== '*') expect(VIEWS.has(key), key).toBe(true);
    expect(VALID.length + INVALID.length).toBeGreaterThanOrEqual(60);
  });

  it.each(VALID)('%s', (text, exp) => {
    const f = compileFilter(text);
    const got = Object.fromEntries(
      [...VIEWS].map(([name, views]) => [name, views.map((v) => (f.matches(v) ? 'T' : '.')).join('')]),
    );
    const want = Object.fromEntries([...VIEWS.keys()].map((name) => [name, expected(exp, name)]));
    expect(got).toEqual(want);
  });

  it.each(INVALID)('%s -> error at %i', (text, position, fragment) => {
    let caught: unknown;
    try {
      compileFilter(text);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(FilterSyntaxError);
    const err = caught as FilterSyntaxError;
    expect(err.code).toBe('INVALID_FILTER');
    expect(err.position).toBe(position);
    expect(err.message).toContain(`at position ${position}:`);
    expect(err.message).toContain(fragment);
  });

  it('matches request_id in both the hex and the MLflow tr- form', () => {
    const views = VIEWS.get('mlflow/python-rag')!;
    for (const [i, v] of views.entries()) {
      // MLflow's own id for the trace, as its SDK recorded it on the spans.
      const mlflowId = v.metadata['mlflow.traceRequestId'];
      expect(mlflowId).toBe(`tr-${v.traceId}`);
      for (const text of [`trace.request_id = '${mlflowId}'`, `request_id IN ('${v.traceId}')`]) {
        const f = compileFilter(text);
        expect(views.map((w) => f.matches(w))).toEqual(views.map((_, j) => j === i));
      }
    }
  });
});
