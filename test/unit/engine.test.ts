// The score stage (scoring/engine) with a fake runner whose jobs finish when the test says so:
// lanes and their concurrency, refusals with codes, budgets, health, typed usage, drain.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EmitItem, ScoredAssessment } from '../../src/assessments/index.ts';
import type { ScorerDefinition } from '../../src/definitions/index.ts';
import { JudgeBudgets, type ScorerRunner, ScoringEngine, type ScoringJob } from '../../src/scoring/index.ts';
import type { SelectedJob } from '../../src/select/index.ts';
import { MetricsRegistry, ScorecarError, silentLogger, type Usage } from '../../src/util/index.ts';
import { Sink } from '../support/sink.ts';
import { makeTraceView } from '../support/testkit.ts';

const view = makeTraceView({ traceId: 'engine', inputs: 'q', outputs: 'a' });

interface Pending {
  job: ScoringJob;
  finish(out?: { usage?: Usage; error?: { code: string; message: string } }): void;
}

class FakeRunner implements ScorerRunner {
  readonly pending: Pending[] = [];
  run(job: ScoringJob, signal?: AbortSignal): Promise<ScoredAssessment[]> {
    return new Promise((resolve, reject) => {
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      this.pending.push({
        job,
        finish: (out = {}) =>
          resolve([
            {
              assessment: {
                assessmentId: `a-${job.scorer.name}`,
                name: job.scorer.name,
                traceId: job.view.traceId,
                spanId: job.view.rootSpan.spanId,
                experimentId: job.scorer.experimentId,
                scorer: { name: job.scorer.name, version: job.scorer.version },
                source: job.scorer.definition.type === 'code' ? { type: 'CODE', id: job.scorer.name } : { type: 'LLM_JUDGE', id: 'openai:/m' },
                value: out.error ? null : 1,
                ...(out.error ? { error: out.error } : {}),
                metadata: {},
                sampleRate: job.sampleRate,
                createdAt: '2026-01-01T00:00:00.000Z',
              },
              usage: out.usage,
            },
          ]),
      });
    });
  }
  modelFor(def: ScorerDefinition): string | undefined {
    return def.type === 'code' ? undefined : ((def as { model?: string }).model ?? 'openai:/default');
  }
  stats() {
    return { sandbox: { workers: 0, busy: 0, queued: 0, replaced: 0 }, models: {} };
  }
  async close(): Promise<void> {}
}

const CODE: ScorerDefinition = { type: 'code', source: '(ctx) => 1' };
const JUDGE: ScorerDefinition = { type: 'builtin', judge: 'safety', model: 'openai:/a' };

function job(name: string, definition: ScorerDefinition, experimentId = 'exp', approxBytes = 100): SelectedJob {
  return { view, scorer: { experimentId, name, version: 1, definition }, sampleRate: 1, completion: 'root', approxBytes };
}

function setup(opts: { queueSize?: number; queueMaxBytes?: number; budgets?: JudgeBudgets } = {}) {
  const runner = new FakeRunner();
  const out = new Sink<readonly EmitItem[]>();
  const metrics = new MetricsRegistry();
  const engine = new ScoringEngine({
    runner,
    next: out,
    budgets: opts.budgets ?? new JudgeBudgets({}),
    metrics,
    log: silentLogger,
    queueSize: opts.queueSize ?? 100,
    queueMaxBytes: opts.queueMaxBytes ?? 1_000_000,
    judgeConcurrency: () => 2,
    codeConcurrency: 1,
  });
  const metric = (name: string, labels: Record<string, string>) =>
    (metrics.get(name) as unknown as { get(l: Record<string, string>): number }).get(labels);
  return { runner, out, engine, metric };
}

const drainMicrotasks = () => new Promise((r) => setImmediate(r));

afterEach(() => {
  vi.useRealTimers();
});

describe('score stage', () => {
  it('runs each lane at its own concurrency: a busy code scorer never holds up a judge or another code scorer', async () => {
    const { runner, engine, out } = setup();
    engine.consume(job('c1', CODE));
    engine.consume(job('c1', CODE));
    engine.consume(job('c2', CODE));
    engine.consume(job('j1', JUDGE));
    engine.consume(job('j2', JUDGE));
    engine.consume(job('j3', JUDGE));
    // A lane per code scorer, 1 at a time each; the judge model's lane: 2 at a time.
    expect(runner.pending.map((p) => p.job.scorer.name)).toEqual(['c1', 'c2', 'j1', 'j2']);
    runner.pending.find((p) => p.job.scorer.name === 'j1')!.finish();
    await drainMicrotasks();
    expect(runner.pending.map((p) => p.job.scorer.name)).toContain('j3');
    expect(out.items.map((items) => items[0]!.assessment.name)).toEqual(['j1']);
    expect(engine.depth).toBe(5);
  });

  it('refuses with QUEUE_FULL past queueSize or queueMaxBytes, counted per scorer', () => {
    const { engine, metric } = setup({ queueSize: 1, queueMaxBytes: 250 });
    engine.consume(job('c', CODE)); // running, not queued
    engine.consume(job('c', CODE)); // queued (1 of 1)
    const refused = (() => {
      try {
        engine.consume(job('c3', CODE));
      } catch (e) {
        return e as ScorecarError;
      }
    })();
    expect(refused?.code).toBe('QUEUE_FULL');
    expect(engine.hasRoom(1, 0)).toBe(false);
    expect(metric('scorecar_scoring_jobs_dropped_total', { experiment: 'exp', scorer: 'c3', reason: 'queue_full' })).toBe(1);
  });

  it('pauses judges when the budget is spent (health paused, job counted), code scorers keep running', async () => {
    const budgets = new JudgeBudgets({ exp: { tokensPerDay: 100 } }, undefined, () => Date.parse('2026-03-01T12:00:00Z'));
    const { runner, engine, metric } = setup({ budgets });
    engine.consume(job('j1', JUDGE));
    runner.pending.shift()!.finish({ usage: { inputTokens: 80, outputTokens: 30, attempts: 1 } });
    await drainMicrotasks();
    expect(metric('scorecar_judge_tokens_total', { experiment: 'exp', model: 'openai:/m', direction: 'input' })).toBe(80);
    engine.consume(job('j2', JUDGE));
    await drainMicrotasks();
    expect(runner.pending).toEqual([]);
    expect(metric('scorecar_scoring_jobs_dropped_total', { experiment: 'exp', scorer: 'j2', reason: 'budget_exhausted' })).toBe(1);
    expect(engine.scorerHealth('exp', 'j2')).toMatchObject({ state: 'paused', code: 'BUDGET_EXHAUSTED' });
    engine.consume(job('c1', CODE));
    expect(runner.pending.map((p) => p.job.scorer.name)).toEqual(['c1']);
  });

  it('marks a scorer whose judge refuses our credentials as error, and ok again once it works', async () => {
    const { runner, engine } = setup();
    engine.consume(job('j', JUDGE));
    runner.pending.shift()!.finish({ error: { code: 'UNAUTHENTICATED', message: '401' } });
    await drainMicrotasks();
    expect(engine.scorerHealth('exp', 'j')).toMatchObject({ state: 'error', code: 'UNAUTHENTICATED' });
    engine.consume(job('j', JUDGE));
    runner.pending.shift()!.finish();
    await drainMicrotasks();
    expect(engine.scorerHealth('exp', 'j')?.state).toBe('ok');
  });

  it('passes the completion reason to the runner and typed usage on to the emitter', async () => {
    const { runner, engine, out } = setup();
    engine.consume({ ...job('j', JUDGE), completion: 'shutdown' });
    expect(runner.pending[0]!.job.completion).toBe('shutdown');
    runner.pending.shift()!.finish({ usage: { inputTokens: 3, outputTokens: 4, cost: 0.5, attempts: 2 } });
    await engine.whenIdle();
    expect(out.items[0]![0]!.usage).toEqual({ inputTokens: 3, outputTokens: 4, cost: 0.5, attempts: 2 });
  });

  it('shutdown lets running jobs finish within the deadline, then aborts and counts the rest; later jobs are refused', async () => {
    vi.useFakeTimers();
    const { runner, engine, metric } = setup();
    engine.consume(job('c1', CODE));
    engine.consume(job('c2', CODE));
    const stopping = engine.shutdown(Date.now() + 1000);
    expect(() => engine.consume(job('c3', CODE))).toThrow(ScorecarError);
    runner.pending.shift()!.finish();
    await vi.advanceTimersByTimeAsync(0);
    // c2 started after c1; it never finishes: aborted at 60% of the time left.
    await vi.advanceTimersByTimeAsync(600);
    await stopping;
    expect(metric('scorecar_scoring_jobs_dropped_total', { experiment: 'exp', scorer: 'c2', reason: 'shutdown' })).toBe(1);
    expect(metric('scorecar_scoring_jobs_dropped_total', { experiment: 'exp', scorer: 'c3', reason: 'shutdown' })).toBe(1);
    expect(engine.shutdown(Date.now())).toBe(stopping);
  });
});
