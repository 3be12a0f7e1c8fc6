// Code scorers in the real sandbox: QuickJS in worker threads.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Assessment } from '../../src/assessments/types.ts';
import type { TraceView } from '../../src/genai/types.ts';
import type { Scorer } from '../../src/definitions/index.ts';
import { validateDefinition } from '../../src/definitions/index.ts';
import { createScorerRunner, SandboxPool, type SandboxOutcome, type ScorerRunner } from '../../src/scoring/index.ts';
import { HARD_DEADLINE_WALL_FACTOR } from '../../src/scoring/sandbox/pool.ts';
import { makeTraceView, runAssessments } from '../support/testkit.ts';

const view = makeTraceView({
  traceId: 'code',
  inputs: { question: 'What is 2 + 2?' },
  outputs: 'It is 4.',
  expectations: { expectedResponse: '4' },
  retrievals: [{ documents: ['arithmetic'] }],
  spans: [{ name: 'calc', type: 'TOOL', attributes: { blob: new Uint8Array([255, 0]) } }],
});

function scorer(source: string, name = 'code_scorer'): Scorer {
  const v = validateDefinition({ type: 'code', source });
  if (!v.ok) throw new Error(`invalid test scorer: ${JSON.stringify(v.errors)}`);
  return {
    experimentId: 'exp',
    name,
    version: 2,
    definition: v.definition,
    sampleRate: 1,
    filterString: null,
    status: 'active',
    createdAt: '2025-01-01T00:00:00Z',
    updatedAt: '2025-01-01T00:00:00Z',
  };
}

let runner: ScorerRunner;

async function score(source: string, v: TraceView = view): Promise<Assessment[]> {
  return runAssessments(runner, { view: v, scorer: scorer(source), sampleRate: 0.5 });
}

beforeAll(() => {
  runner = createScorerRunner({
    env: {},
    sandbox: { timeoutMs: 1000, memoryBytes: 16 * 1024 * 1024, workers: 2 },
  });
});

afterAll(async () => {
  await runner.close();
});

describe('return kinds', () => {
  it('a number, with the CODE source and the root span', async () => {
    const [a] = await score("(ctx) => String(ctx.outputs ?? '').length");
    expect(a).toMatchObject({
      name: 'code_scorer',
      value: 8,
      spanId: view.rootSpan.spanId,
      traceId: view.traceId,
      source: { type: 'CODE', id: 'code_scorer' },
      scorer: { name: 'code_scorer', version: 2 },
      sampleRate: 0.5,
      metadata: {},
    });
    expect(a!.error).toBeUndefined();
  });

  it('a boolean and a string (a BigInt becomes its decimal string), from function and async function sources', async () => {
    expect((await score('function (ctx) { return ctx.inputs.question.includes("2 + 2"); }'))[0]!.value).toBe(
      true,
    );
    expect((await score('(ctx) => 2n ** 70n'))[0]!.value).toBe('1180591620717411303424');
    expect(
      (
        await score(
          'async (ctx) => { const x = await Promise.resolve(ctx.expectations.expectedResponse); return "got " + x; }',
        )
      )[0]!.value,
    ).toBe('got 4');
  });

  it('a feedback object and a list of feedbacks', async () => {
    const [f] = await score(
      '(ctx) => ({ value: 0.75, rationale: "three of four", metadata: { checked: 4, ok: true } })',
    );
    expect(f).toMatchObject({
      name: 'code_scorer',
      value: 0.75,
      rationale: 'three of four',
      metadata: { checked: '4', ok: 'true' },
    });
    const list = await score(
      '(ctx) => [{ name: "len", value: ctx.outputs.length }, { name: "has_digit", value: /\\d/.test(ctx.outputs) }, "plain"]',
    );
    expect(list.map((a) => [a.name, a.value])).toEqual([
      ['len', 8],
      ['has_digit', true],
      ['code_scorer', 'plain'],
    ]);
    expect(new Set(list.map((a) => a.assessmentId)).size).toBe(3);
  });

  it('ctx.trace is the JSON-safe view', async () => {
    const [a] = await score(
      '(ctx) => [ctx.trace.spans.length, ctx.trace.retrievals[0].documents[0].content, ctx.trace.spans.find((s) => s.name === "calc").attributes.blob, typeof ctx.trace.rootSpan.startTimeUnixNano].join("|")',
    );
    expect(a!.value).toBe('3|arithmetic|/wA=|string');
  });

  it('has no host functions and no state shared between calls', async () => {
    const [a] = await score(
      '(ctx) => [typeof fetch, typeof require, typeof process, typeof setTimeout, typeof console, typeof WebAssembly].join(",")',
    );
    expect(a!.value).toBe('undefined,undefined,undefined,undefined,undefined,undefined');
    await score('(ctx) => { globalThis.leak = 42; return 1; }');
    expect((await score('(ctx) => typeof globalThis.leak'))[0]!.value).toBe('undefined');
  });
});

describe('failures become error assessments', () => {
  it.each([
    ['(ctx) => { throw new TypeError("bad input") }', 'CODE_SCORER_ERROR', 'TypeError: bad input'],
    ['(ctx) => { throw "plain string" }', 'CODE_SCORER_ERROR', 'plain string'],
    ['async (ctx) => { throw new Error("async boom") }', 'CODE_SCORER_ERROR', 'async boom'],
    ['(ctx) => new Promise(() => {})', 'CODE_SCORER_ERROR', 'never settles'],
    ['(ctx) => { const f = (n) => f(n + 1) + 1; return f(0); }', 'CODE_SCORER_ERROR', 'stack overflow'],
    ['(ctx) => ctx.missing.field', 'CODE_SCORER_ERROR', 'TypeError'],
    ['(ctx) => 0 / 0', 'CODE_SCORER_INVALID_RESULT', 'NaN'],
    ['(ctx) => undefined', 'CODE_SCORER_INVALID_RESULT', 'undefined'],
    ['(ctx) => ({ score: 1 })', 'CODE_SCORER_INVALID_RESULT', 'value'],
    ['(ctx) => [1, [2]]', 'CODE_SCORER_INVALID_RESULT', 'nested list'],
    ['(ctx) => { for (;;) {} }', 'TIMEOUT', 'CPU time limit of 1000 ms'],
  ])('%s → %s', async (source, code, message) => {
    const out = await score(source);
    expect(out).toHaveLength(1);
    expect(out[0]!.value).toBeNull();
    expect(out[0]!.error?.code).toBe(code);
    expect(out[0]!.error?.message).toContain(message);
  });

  it.each([
    ['(ctx) => { const a = []; for (;;) a.push({ i: a.length }) }'],
    // ArrayBuffer contents escape QuickJS's heap accounting; the wasm memory cap stops them
    ['(ctx) => { const a = []; for (;;) a.push(new ArrayBuffer(1 << 20)) }'],
    ['(ctx) => new Uint8Array(2 ** 30).length'],
  ])('%s → OUT_OF_MEMORY', async (source) => {
    // A generous CPU limit, so that the heap limit is always what stops these.
    const r = createScorerRunner({
      env: {},
      sandbox: { timeoutMs: 20_000, memoryBytes: 16 * 1024 * 1024, workers: 1 },
    });
    try {
      const out = await runAssessments(r, { view, scorer: scorer(source), sampleRate: 1 });
      expect(out.map((a) => [a.value, a.error?.code])).toEqual([[null, 'OUT_OF_MEMORY']]);
      expect(out[0]!.error?.message).toContain('memory limit of 16777216 bytes');
      expect((await runAssessments(r, { view, scorer: scorer('(ctx) => "next"'), sampleRate: 1 }))[0]!.value).toBe(
        'next',
      );
    } finally {
      await r.close();
    }
  });

  it('a runaway scorer leaves the event loop responsive and other scorers producing results', async () => {
    let ticks = 0;
    const timer = setInterval(() => {
      ticks++;
    }, 5);
    let runawayDone = false;
    let ticksWhileRunning = 0;
    try {
      const runaway = score('(ctx) => { for (;;) {} }').then((a) => {
        runawayDone = true;
        ticksWhileRunning = ticks;
        return a;
      });
      const others: Assessment[][] = [];
      let deliveredDuringRunaway = 0;
      for (let i = 0; i < 10; i++) {
        const out = await score(`(ctx) => ${i}`);
        others.push(out);
        if (!runawayDone) deliveredDuringRunaway++;
      }
      const [r] = await runaway;
      expect(r!.error?.code).toBe('TIMEOUT');
      expect(others.map((o) => o[0]!.value)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(deliveredDuringRunaway).toBeGreaterThan(0);
      expect(ticksWhileRunning).toBeGreaterThan(0);
    } finally {
      clearInterval(timer);
    }
  });
});

describe('closing', () => {
  it('a job running when the runner closes rejects with SHUTTING_DOWN and the workers go away', async () => {
    const r = createScorerRunner({ env: {}, sandbox: { timeoutMs: 30_000, workers: 1 } });
    const running = r.run({ view, scorer: scorer('(ctx) => { for (;;) {} }'), sampleRate: 1 }).then(
      () => 'resolved',
      (e: unknown) => e,
    );
    while (r.stats().sandbox.busy === 0) await new Promise((res) => setTimeout(res, 5));
    await r.close();
    expect(await running).toMatchObject({ code: 'SHUTTING_DOWN' });
    expect(r.stats().sandbox.workers).toBe(0);
  });
});

describe('SandboxPool hard deadline', () => {
  let pool: SandboxPool;
  beforeAll(() => {
    // An interrupt deadline far beyond the hard deadline stands in for native code that never
    // reaches an interrupt check.
    pool = new SandboxPool({
      timeoutMs: 60_000,
      hardDeadlineMs: 800,
      workers: 1,
      memoryBytes: 16 * 1024 * 1024,
    });
  });
  afterAll(async () => {
    await pool.close();
    expect(pool.stats().workers).toBe(0);
  });

  it('terminates a stuck worker, replaces it, and the next job runs', async () => {
    const job = (source: string) => ({ source, ctxJson: '{"outputs":"abc"}', traceJson: null });
    expect(await pool.run(job('(ctx) => ctx.outputs.length'))).toEqual({ ok: true, json: '{"v":3}' });
    const stuck = await pool.run(job('(ctx) => { for (;;) {} }'));
    expect(stuck).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(!stuck.ok && stuck.message).toContain('hard deadline');
    expect(pool.stats().replaced).toBe(1);
    expect(await pool.run(job('(ctx) => ctx.trace'))).toEqual({ ok: true, json: '{"v":null}' });
  });

  it('an aborted caller stops waiting without breaking the pool', async () => {
    const ctrl = new AbortController();
    const job = { source: '(ctx) => 1', ctxJson: '{}', traceJson: null };
    const first = pool.run({ ...job, source: '(ctx) => { let i = 0; while (i < 1e6) i++; return i; }' });
    const second = pool.run(job, ctrl.signal);
    ctrl.abort(new Error('caller gave up'));
    await expect(second).rejects.toThrow('caller gave up');
    expect(await first).toEqual({ ok: true, json: '{"v":1000000}' });
    expect(pool.stats()).toMatchObject({ busy: 0, queued: 0 });
  });
});

describe('SandboxPool memory', () => {
  it('recycles a worker whose memory a scorer grew, and keeps serving', async () => {
    const pool = new SandboxPool({ timeoutMs: 60_000, workers: 1, memoryBytes: 16 * 1024 * 1024 });
    const job = (source: string) => ({ source, ctxJson: '{}', traceJson: null });
    const oom = await pool.run(job('(ctx) => { const a = []; for (;;) a.push({ i: a.length }) }'));
    expect(oom).toMatchObject({ ok: false, code: 'OUT_OF_MEMORY' });
    expect(pool.stats().replaced).toBe(1);
    expect(await pool.run(job('(ctx) => "still here"'))).toEqual({ ok: true, json: '{"v":"still here"}' });
    await pool.close();
  });
});

describe('SandboxPool limits count CPU time, not wall time', () => {
  const job = (source: string) => ({ source, ctxJson: '{}', traceJson: null });

  it('a scorer well under its CPU limit is not interrupted, however much wall time passes', async () => {
    // Every reading of the worker's wall clock is a minute after the one before: as if the
    // thread were descheduled for a minute between any two interrupt checks.
    const pool = new SandboxPool({ timeoutMs: 300, workers: 1, memoryBytes: 16 * 1024 * 1024 }, { wallClockStepMs: 60_000 });
    try {
      // About 200 interrupt checks and some 10-50 ms of CPU time.
      const out = await pool.run(
        job('(ctx) => { const t0 = Date.now(); let s = 0; for (let i = 0; i < 1e6; i++) s += i % 7; return [s, Date.now() - t0]; }'),
      );
      expect(out.ok).toBe(true);
      const [sum, wallMs] = JSON.parse(out.ok ? out.json : '{"v":[]}').v as [number, number];
      expect(sum).toBe(2999997);
      // The scorer itself saw far more wall time pass than its limit.
      expect(wallMs).toBeGreaterThanOrEqual(60_000);
      // A busy loop still runs into the CPU limit.
      const loop = await pool.run(job('(ctx) => { for (;;) {} }'));
      expect(loop).toMatchObject({ ok: false, code: 'TIMEOUT' });
      expect(!loop.ok && loop.message).toContain('CPU time limit of 300 ms');
    } finally {
      await pool.close();
    }
  });

  it("the hard deadline's wall-clock check spares a call that has not used its CPU allowance", async () => {
    const pool = new SandboxPool({ timeoutMs: 20_000, hardDeadlineMs: 1_000, workers: 1, memoryBytes: 16 * 1024 * 1024 });
    try {
      expect(await pool.run(job('(ctx) => 1'))).toEqual({ ok: true, json: '{"v":1}' }); // worker ready
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      // Some 0.1 s of CPU time: still running when the check below looks at it, and far from
      // the CPU allowance even on a slow machine.
      const running = pool.run(job('(ctx) => { let s = 0; for (let i = 0; i < 3e6; i++) s += i % 3; return s; }'));
      // The hard deadline's timer fires, as it would after a second of wall time on a machine
      // too busy to give the worker that second: the worker has used far less CPU time than
      // hardDeadlineMs, so it is not terminated (a wall-clock deadline would have killed it).
      await vi.advanceTimersByTimeAsync(1_000);
      vi.useRealTimers();
      expect(await running).toEqual({ ok: true, json: '{"v":3000000}' });
      expect(pool.stats().replaced).toBe(0);
    } finally {
      vi.useRealTimers();
      await pool.close();
    }
  });

  it('a worker that does not answer within the wall-clock ceiling is terminated, whatever its CPU use', async () => {
    // A CPU allowance no busy loop reaches during this test: only the wall-clock ceiling
    // (HARD_DEADLINE_WALL_FACTOR × hardDeadlineMs) can stop it.
    const pool = new SandboxPool({ timeoutMs: 60_000, hardDeadlineMs: 5_000, workers: 1, memoryBytes: 16 * 1024 * 1024 });
    try {
      expect(await pool.run(job('(ctx) => 1'))).toEqual({ ok: true, json: '{"v":1}' }); // worker ready
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      let outcome: SandboxOutcome | undefined;
      void pool.run(job('(ctx) => { for (;;) {} }')).then((o) => {
        outcome = o;
      });
      let checks = 0;
      while (outcome === undefined) {
        // Each check arms the next once it has read the worker's CPU time (a real round trip):
        // yield to the event loop until it has.
        if (vi.getTimerCount() === 0) {
          await new Promise((r) => setImmediate(r));
          continue;
        }
        checks++;
        await vi.advanceTimersToNextTimerAsync();
      }
      vi.useRealTimers();
      expect(outcome).toMatchObject({ ok: false, code: 'TIMEOUT' });
      expect(!outcome.ok && outcome.message).toContain('within the hard deadline of 50000 ms of wall time');
      expect(checks).toBeGreaterThanOrEqual(HARD_DEADLINE_WALL_FACTOR);
      expect(pool.stats().replaced).toBe(1);
    } finally {
      vi.useRealTimers();
      await pool.close();
    }
  });
});
