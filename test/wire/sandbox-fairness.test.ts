// Fair scheduling of code scorers, in the real sandbox (QuickJS in worker threads): a runaway
// scorer flooding the pool delays another scorer's calls by at most one of its own calls, not by
// its whole backlog. Only orderings and counts are asserted — which results came before which —
// never durations: the order follows from the scheduler's rules whatever the machine's load.
import { afterEach, describe, expect, it } from 'vitest';
import type { EmitItem } from '../../src/assessments/index.ts';
import type { Scorer } from '../../src/definitions/index.ts';
import { validateDefinition } from '../../src/definitions/index.ts';
import { createScorerRunner, JudgeBudgets, type ScorerRunner, ScoringEngine } from '../../src/scoring/index.ts';
import { MetricsRegistry, silentLogger } from '../../src/util/index.ts';
import { makeTraceView } from '../support/testkit.ts';

const view = makeTraceView({ traceId: 'fair', inputs: { q: 'x' }, outputs: 'fast' });

const RUNAWAY = '(ctx) => { for (;;) {} }';
const FAST = '(ctx) => ctx.outputs.length';

function scorer(name: string, source: string): Scorer {
  const v = validateDefinition({ type: 'code', source });
  if (!v.ok) throw new Error(`invalid test scorer: ${JSON.stringify(v.errors)}`);
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

const runaway = scorer('runaway', RUNAWAY);
const fast = scorer('fast', FAST);
const FLOOD = 30;
const FAST_CALLS = 10;

/** Runaway results that came before the fast scorer's last one. */
function runawayBeforeLastFast(order: string[]): number {
  const last = order.lastIndexOf('fast');
  return order.slice(0, last).filter((n) => n === 'runaway').length;
}

let runner: ScorerRunner | undefined;
afterEach(async () => {
  await runner?.close();
  runner = undefined;
});

describe('a runaway code scorer does not hold up the others', () => {
  it.each([2, 1])(
    'with %i worker(s), a fast scorer submitted after a flood of runaway calls finishes before the flood',
    async (workers) => {
      runner = createScorerRunner({ env: {}, sandbox: { workers, timeoutMs: 50, memoryBytes: 16 * 1024 * 1024 } });
      const r = runner;
      const order: string[] = [];
      const submit = (s: Scorer) =>
        r.run({ view, scorer: s, sampleRate: 1 }).then((out) => {
          order.push(s.name);
          return out;
        });
      // Every call reaches the pool synchronously, in this order: the first `workers` runaway
      // calls hold every worker when the fast scorer's calls arrive behind the rest of the flood.
      const flood = Array.from({ length: FLOOD }, () => submit(runaway));
      const quick = Array.from({ length: FAST_CALLS }, () => submit(fast));
      const fastOut = await Promise.all(quick);
      expect(fastOut.map((o) => o.map((s) => [s.assessment.value, s.assessment.error?.code]))).toEqual(
        Array.from({ length: FAST_CALLS }, () => [[4, undefined]]),
      );
      // The fast scorer waited for the runaway calls already running (at most one per worker)
      // and none of the queued ones. A first-in-first-out queue would have run all 30 first.
      expect(runawayBeforeLastFast(order)).toBeLessThanOrEqual(workers);
      const floodOut = await Promise.all(flood);
      expect(new Set(floodOut.map((o) => o[0]!.assessment.error?.code))).toEqual(new Set(['TIMEOUT']));
      expect(order.filter((n) => n === 'runaway')).toHaveLength(FLOOD);
    },
  );

  it('through the scoring engine: each code scorer reaches the pool past the runaway backlog', async () => {
    runner = createScorerRunner({ env: {}, sandbox: { workers: 2, timeoutMs: 50, memoryBytes: 16 * 1024 * 1024 } });
    const order: string[] = [];
    const engine = new ScoringEngine({
      runner,
      next: { consume: (items: readonly EmitItem[]) => void order.push(...items.map((i) => i.assessment.name)) },
      budgets: new JudgeBudgets({}),
      metrics: new MetricsRegistry(),
      log: silentLogger,
      queueSize: 1000,
      queueMaxBytes: 1 << 30,
      judgeConcurrency: () => 1,
      codeConcurrency: 2 * 4, // as the pipeline sets it: workers * 4
    });
    const job = (s: Scorer) => ({ view, scorer: s, sampleRate: 1, completion: 'root' as const, approxBytes: 1 });
    for (let i = 0; i < FLOOD; i++) engine.consume(job(runaway));
    for (let i = 0; i < FAST_CALLS; i++) engine.consume(job(fast));
    await engine.whenIdle();
    expect(order).toHaveLength(FLOOD + FAST_CALLS);
    // One code lane for all scorers would have kept the fast jobs behind all 30 runaway jobs.
    expect(runawayBeforeLastFast(order)).toBeLessThanOrEqual(2);
  });
});
