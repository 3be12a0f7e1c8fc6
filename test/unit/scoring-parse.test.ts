import { describe, expect, it } from 'vitest';
import { parseModelUri, renderTemplate, templateChoices, templateVariables } from '../../src/definitions/index.ts';
import { coerceResult, normaliseYesNo, parseJudgeAnswer } from '../../src/scoring/index.ts';
import { ScorecarError } from '../../src/util/index.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return e instanceof ScorecarError ? e.code : `not a ScorecarError: ${String(e)}`;
  }
  return 'no error';
}

describe('parseJudgeAnswer', () => {
  it('reads bare JSON', () => {
    expect(parseJudgeAnswer('{"rationale": "fine", "result": "yes"}')).toEqual({
      result: 'yes',
      rationale: 'fine',
    });
  });

  it('reads JSON inside a code fence with prose around it', () => {
    const text =
      'Sure! Here is my verdict:\n```json\n{"result": "no", "rationale": "it is off topic"}\n```\nHope that helps.';
    expect(parseJudgeAnswer(text)).toEqual({ result: 'no', rationale: 'it is off topic' });
  });

  it('reads JSON embedded in text without a fence, with braces inside strings', () => {
    const text = 'My answer: {"rationale": "the {braces} in here } are fine", "result": true} -- end';
    expect(parseJudgeAnswer(text)).toEqual({ result: true, rationale: 'the {braces} in here } are fine' });
  });

  it('skips a <think> block and an unrelated object before the answer', () => {
    const text =
      '<think>maybe {"result": "yes"}? no...</think> Considering {"a": 1} then {"result": "no", "rationale": "r"}';
    expect(parseJudgeAnswer(text)).toEqual({ result: 'no', rationale: 'r' });
  });

  it('accepts keys in another case and non-string rationales', () => {
    expect(parseJudgeAnswer('{"Result": "Yes", "Rationale": ["a", "b"]}')).toEqual({
      result: 'Yes',
      rationale: '["a","b"]',
    });
  });

  it('refuses single-quoted pseudo JSON with a parse error', () => {
    expect(codeOf(() => parseJudgeAnswer("{'result': 'yes', 'rationale': 'ok'}"))).toBe('JUDGE_PARSE_ERROR');
  });

  it('refuses plain prose and truncated JSON with a parse error', () => {
    expect(codeOf(() => parseJudgeAnswer('The answer is yes.'))).toBe('JUDGE_PARSE_ERROR');
    expect(codeOf(() => parseJudgeAnswer('{"rationale": "cut", "result": "ye'))).toBe('JUDGE_PARSE_ERROR');
  });

  it('refuses JSON without a result field as an invalid response', () => {
    expect(codeOf(() => parseJudgeAnswer('{"verdict": "yes", "explanation": "x"}'))).toBe(
      'JUDGE_INVALID_RESPONSE',
    );
  });
});

describe('normaliseYesNo', () => {
  it.each([
    ['yes', 'yes'],
    ['Yes.', 'yes'],
    [' TRUE ', 'yes'],
    ['pass', 'yes'],
    ['1', 'yes'],
    ['y', 'yes'],
    [true, 'yes'],
    [1, 'yes'],
    ['no', 'no'],
    ['False', 'no'],
    ['FAIL', 'no'],
    ['0', 'no'],
    ['n', 'no'],
    [false, 'no'],
    [0, 'no'],
  ])('%j → %s', (input, expected) => {
    expect(normaliseYesNo(input)).toBe(expected);
  });

  it.each([['maybe'], [0.5], [null], [{ a: 1 }], ['']])('%j → undefined', (input) => {
    expect(normaliseYesNo(input)).toBeUndefined();
  });
});

describe('coerceResult', () => {
  it('yes/no, bool, number and string kinds', () => {
    expect(coerceResult({ kind: 'yes_no' }, 'PASS')).toEqual({ value: 'yes' });
    expect(coerceResult({ kind: 'bool' }, 'no')).toEqual({ value: false });
    expect(coerceResult({ kind: 'number' }, ' 4.5 ')).toEqual({ value: 4.5 });
    expect(coerceResult({ kind: 'number' }, 3)).toEqual({ value: 3 });
    expect(coerceResult({ kind: 'string' }, 42)).toEqual({ value: '42' });
  });

  it('matches a choice case-insensitively, also when echoed in brackets', () => {
    const spec = { kind: 'choice' as const, choices: ['Formal', 'very casual'] };
    expect(coerceResult(spec, 'formal')).toEqual({ value: 'Formal', label: 'Formal' });
    expect(coerceResult(spec, '[[very casual]]')).toEqual({ value: 'very casual', label: 'very casual' });
  });

  it('refuses values that do not fit the kind', () => {
    expect(codeOf(() => coerceResult({ kind: 'yes_no' }, 'perhaps'))).toBe('JUDGE_INVALID_RESPONSE');
    expect(codeOf(() => coerceResult({ kind: 'number' }, 'five'))).toBe('JUDGE_INVALID_RESPONSE');
    expect(codeOf(() => coerceResult({ kind: 'choice', choices: ['a', 'b'] }, 'c'))).toBe(
      'JUDGE_INVALID_RESPONSE',
    );
    expect(codeOf(() => coerceResult({ kind: 'string' }, { x: 1 }))).toBe('JUDGE_INVALID_RESPONSE');
  });
});

describe('templates', () => {
  it('finds [[choices]] in order, once each, trimmed', () => {
    expect(templateChoices('Pick [[ good ]], [[bad]] or [[very bad]]; again [[bad]]. Not [[a-b]].')).toEqual([
      'good',
      'bad',
      'very bad',
    ]);
  });

  it('finds variables with or without spaces', () => {
    expect(templateVariables('{{request}} and {{ response }} and {{  trace}}')).toEqual([
      'request',
      'response',
      'trace',
    ]);
  });

  it('renders in one pass: substituted text is not expanded again', () => {
    const out = renderTemplate('Q: {{request}} A: {{ response }} keep {{other}}', {
      request: 'say {{response}}',
      response: 'ok',
    });
    expect(out).toBe('Q: say {{response}} A: ok keep {{other}}');
  });
});

describe('parseModelUri', () => {
  it('reads the three providers', () => {
    expect(parseModelUri('openai:/gpt-4.1-mini')).toEqual({
      ok: true,
      value: { uri: 'openai:/gpt-4.1-mini', provider: 'openai', model: 'gpt-4.1-mini' },
    });
    expect(parseModelUri('anthropic:/claude-sonnet-4-5')).toMatchObject({
      ok: true,
      value: { provider: 'anthropic', model: 'claude-sonnet-4-5' },
    });
    expect(parseModelUri('databricks:/my-endpoint')).toMatchObject({
      ok: true,
      value: { provider: 'databricks', model: 'my-endpoint' },
    });
  });

  it('reads an OpenAI-compatible base URL after the last @http', () => {
    expect(parseModelUri('openai:/llama3.1:8b@http://127.0.0.1:11434/v1/')).toMatchObject({
      ok: true,
      value: { provider: 'openai', model: 'llama3.1:8b', baseUrl: 'http://127.0.0.1:11434/v1' },
    });
    expect(parseModelUri('openai:/org@model@https://gw.example/v1')).toMatchObject({
      ok: true,
      value: { model: 'org@model', baseUrl: 'https://gw.example/v1' },
    });
  });

  it.each([
    ['', 'empty'],
    ['gpt-4', 'malformed'],
    ['openai://gpt-4', 'malformed'],
    ['cohere:/command', 'unknown model provider'],
    ['openai:/', 'malformed'],
    ['openai:/@http://host/v1', 'needs a model name'],
    ['openai:/m@http://user:pw@host/v1', 'credentials'],
    ['openai:/m@http://', 'invalid base URL'],
    ['databricks:/a/b', 'must not contain'],
  ])('refuses %j', (uri, message) => {
    const r = parseModelUri(uri);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toContain(message);
  });
});
