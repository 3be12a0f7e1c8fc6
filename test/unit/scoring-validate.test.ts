import { describe, expect, it, vi } from 'vitest';
import { type DefinitionError, requiresModel, type ValidationResult } from '../../src/definitions/index.ts';
import { validateScorerDefinition } from '../../src/scoring/index.ts';

// The whole registration check: the schema of src/definitions, plus compiling code scorers.
const validateDefinition = (def: unknown): Promise<ValidationResult> => validateScorerDefinition(def);

async function errorsOf(def: unknown): Promise<DefinitionError[]> {
  const r = await validateDefinition(def);
  if (r.ok) throw new Error(`expected ${JSON.stringify(def)} to be refused`);
  return r.errors;
}

async function pathsOf(def: unknown): Promise<string[]> {
  return (await errorsOf(def)).map((e) => e.path);
}

describe('validateDefinition: accepted definitions', () => {
  it.each([
    [{ type: 'builtin', judge: 'safety' }],
    [{ type: 'builtin', judge: 'retrieval_groundedness', model: 'anthropic:/claude-haiku-4-5' }],
    [{ type: 'builtin', judge: 'guidelines', guidelines: ['Be polite'] }],
    [
      {
        type: 'guidelines',
        guidelines: ['No jargon', 'Answer in English'],
        model: 'openai:/m@http://127.0.0.1:8089/v1',
      },
    ],
    [{ type: 'prompt', promptTemplate: 'Is {{response}} to {{request}} [[formal]] or [[casual]]?' }],
    [
      {
        type: 'prompt',
        promptTemplate: '[[good]] / [[bad]]: {{ response }}',
        numericValues: { good: 1, bad: 0 },
      },
    ],
    [{ type: 'judge', instructions: 'Did {{ outputs }} answer {{ inputs }}?', feedbackValueType: 'bool' }],
    [{ type: 'judge', instructions: 'Judge the agent run: {{ trace }}' }],
    [{ type: 'code', source: "(ctx) => String(ctx.outputs ?? '').length" }],
    [{ type: 'code', source: 'function (ctx) { return ctx.inputs !== null; }' }],
    [{ type: 'code', source: 'async (ctx) => 1;', aggregations: ['mean', 'p90'] }],
    [{ type: 'code', source: 'function score(ctx) {\n  // trailing comment\n  return 1\n} // done' }],
  ])('%j', async (def) => {
    const r = await validateDefinition(def);
    expect(r.ok ? [] : r.errors).toEqual([]);
    expect(r.ok && r.definition).toMatchObject({ type: def.type });
  });

  it('normalises a single guideline string into a list and trims labels', async () => {
    expect(await validateDefinition({ type: 'guidelines', guidelines: '  Be brief ' })).toEqual({
      ok: true,
      definition: { type: 'guidelines', guidelines: ['Be brief'] },
    });
    expect(
      await validateDefinition({
        type: 'prompt',
        promptTemplate: '[[ a ]] [[b]] {{response}}',
        numericValues: { ' a ': 1, b: 2 },
      }),
    ).toMatchObject({
      ok: true,
      definition: { numericValues: { a: 1, b: 2 } },
    });
  });
});

describe('validateDefinition: refusals with precise paths', () => {
  it('not an object, no type, unknown type', async () => {
    expect(await pathsOf('safety')).toEqual(['definition']);
    expect(await pathsOf({})).toEqual(['definition.type']);
    expect((await errorsOf({ type: 'regex' }))[0]!.message).toContain('unknown type "regex"');
  });

  it('unknown builtin judge', async () => {
    const e = await errorsOf({ type: 'builtin', judge: 'toxicity' });
    expect(e).toEqual([
      { path: 'definition.judge', message: expect.stringContaining('unknown judge "toxicity"') },
    ]);
  });

  it('unknown fields, per type', async () => {
    expect(await pathsOf({ type: 'code', source: '(c) => 1', model: 'openai:/m' })).toEqual(['definition.model']);
    expect(await pathsOf({ type: 'judge', instructions: '{{ outputs }}', name: 'x' })).toEqual(['definition.name']);
  });

  it('missing, empty or ill-typed guidelines', async () => {
    expect(await pathsOf({ type: 'guidelines' })).toEqual(['definition.guidelines']);
    expect(await pathsOf({ type: 'guidelines', guidelines: [] })).toEqual(['definition.guidelines']);
    expect(await pathsOf({ type: 'guidelines', guidelines: ['ok', '', 3] })).toEqual([
      'definition.guidelines[1]',
      'definition.guidelines[2]',
    ]);
    expect(await pathsOf({ type: 'builtin', judge: 'guidelines' })).toEqual(['definition.guidelines']);
    expect(await pathsOf({ type: 'builtin', judge: 'safety', guidelines: ['x'] })).toEqual([
      'definition.guidelines',
    ]);
  });

  it('prompt template without choices, with unknown variables, bad numeric values', async () => {
    expect(await errorsOf({ type: 'prompt', promptTemplate: 'Rate {{response}}' })).toEqual([
      { path: 'definition.promptTemplate', message: expect.stringContaining('no choices') },
    ]);
    expect(await errorsOf({ type: 'prompt', promptTemplate: '[[a]] [[b]] {{answer}}' })).toEqual([
      { path: 'definition.promptTemplate', message: expect.stringContaining('unknown variable {{answer}}') },
    ]);
    expect(
      await pathsOf({ type: 'prompt', promptTemplate: '[[a]] [[b]] {{response}}', numericValues: { a: 1, c: 2 } }),
    ).toEqual(['definition.numericValues.c', 'definition.numericValues']);
    expect(
      await pathsOf({ type: 'prompt', promptTemplate: '[[a]] {{response}}', numericValues: { a: 'high' } }),
    ).toEqual(['definition.numericValues.a']);
    expect(await pathsOf({ type: 'prompt', promptTemplate: '' })).toEqual(['definition.promptTemplate']);
  });

  it('instructions without a known variable, or with an unknown one, and a bad value type', async () => {
    expect((await errorsOf({ type: 'judge', instructions: 'Is it good?' }))[0]).toEqual({
      path: 'definition.instructions',
      message: expect.stringContaining('at least one of {{ inputs }}'),
    });
    expect(await pathsOf({ type: 'judge', instructions: '{{ outputs }} vs {{ context }}' })).toEqual([
      'definition.instructions',
    ]);
    expect(await pathsOf({ type: 'judge', instructions: '{{ outputs }}', feedbackValueType: 'float' })).toEqual([
      'definition.feedbackValueType',
    ]);
  });

  it('bad model URIs', async () => {
    for (const model of ['gpt-4', 'mistral:/large', 'openai:/', 'openai:/m@http://u:p@h/v1', 42]) {
      expect(await pathsOf({ type: 'builtin', judge: 'safety', model })).toEqual(['definition.model']);
    }
  });

  it('code that does not compile or is not a function expression', async () => {
    expect(await errorsOf({ type: 'code', source: '(ctx) => {' })).toEqual([
      { path: 'definition.source', message: expect.stringContaining('does not compile') },
    ]);
    expect((await errorsOf({ type: 'code', source: '42' }))[0]!.message).toContain('evaluates to a number');
    expect((await errorsOf({ type: 'code', source: '(ctx) => 1, fetchSomething()' }))[0]!.message).toContain(
      'not a plain function expression',
    );
    expect((await errorsOf({ type: 'code', source: 'const f = (ctx) => 1' }))[0]!.message).toContain(
      'does not compile',
    );
    expect(await pathsOf({ type: 'code', source: '   ' })).toEqual(['definition.source']);
  });

  it('a comma expression that allocates is stopped by the memory cap', async () => {
    expect((await errorsOf({ type: 'code', source: '(ctx) => 1, new ArrayBuffer(2 ** 30)' }))[0]!.message).toContain(
      'out of memory',
    );
    expect((await validateDefinition({ type: 'code', source: '(ctx) => 1' })).ok).toBe(true);
  });

  it('a hostile comma expression runs out of CPU time: TIMEOUT (retryable), never a definition error', async () => {
    await expect(validateDefinition({ type: 'code', source: '(ctx) => 1, (() => { for (;;) {} })()' })).rejects.toMatchObject({
      code: 'TIMEOUT',
      retryable: true,
    });
  });

  it('the check budget is CPU time, not wall time: a valid source passes however late the clock runs', async () => {
    // A busy machine deschedules the check; wall time then jumps while no CPU is used. Every
    // clock read here jumps 10 s (the old 100 ms wall-clock deadline refused valid sources).
    let t = Date.now();
    const spy = vi.spyOn(Date, 'now').mockImplementation(() => (t += 10_000));
    const perf = vi.spyOn(performance, 'now').mockImplementation(() => (t += 10_000));
    try {
      expect(await validateDefinition({ type: 'code', source: "(ctx) => String(ctx.outputs ?? '').length" })).toMatchObject({ ok: true });
    } finally {
      spy.mockRestore();
      perf.mockRestore();
    }
  });

  it('unknown or repeated aggregations', async () => {
    expect(await pathsOf({ type: 'code', source: '(c) => 1', aggregations: ['mean', 'sum', 'mean'] })).toEqual([
      'definition.aggregations[1]',
      'definition.aggregations[2]',
    ]);
    expect(await pathsOf({ type: 'code', source: '(c) => 1', aggregations: 'mean' })).toEqual([
      'definition.aggregations',
    ]);
  });
});

describe('requiresModel', () => {
  it('is true for judges and false for code scorers', async () => {
    expect(requiresModel({ type: 'builtin', judge: 'safety' })).toBe(true);
    expect(requiresModel({ type: 'prompt', promptTemplate: '[[a]]' })).toBe(true);
    expect(requiresModel({ type: 'code', source: '(c) => 1' })).toBe(false);
  });
});
