// The scoring engine: a bounded queue of (trace view, scorer version) jobs, split into lanes —
// one per judge model and one per code scorer — each with its own concurrency, so a slow or
// rate-limited judge never holds up code scorers or other models, and a runaway code scorer's
// backlog never keeps other code scorers' jobs from the sandbox pool (which shares its workers
// fairly between scorers). Checks the experiment's daily
// judge budget before a judge runs, records per-scorer runtime health (authentication failure,
// budget pause), and hands every assessment to the emitter. A full queue drops and counts;
// nothing waits without bound.
import type { EmitItem, ScoredAssessment } from '../../assessments/index.ts';
import type { Component, Consumer } from '../../component/index.ts';
import { type Aggregation, isCodeScorer } from '../../definitions/index.ts';
import type { JobAdmission, SelectedJob } from '../../select/index.ts';
import { errorFields, type Logger, type MetricsRegistry, ScorecarError } from '../../util/index.ts';
import type { BudgetTicket, JudgeBudgets } from './budget.ts';
import type { ScorerRunner } from './runner.ts';

export interface ScorerHealth {
  /** ok: last job ran; error: the judge refused our credentials; paused: budget spent. */
  state: 'ok' | 'error' | 'paused';
  code?: string;
  message?: string;
  since: string;
}

export interface EngineOptions {
  runner: ScorerRunner;
  /** Where each job's assessments go (the emitter). */
  next: Consumer<readonly EmitItem[]>;
  budgets: JudgeBudgets;
  metrics: MetricsRegistry;
  log: Logger;
  /** Jobs waiting across all lanes (scoring.queueSize). */
  queueSize: number;
  /** Memory of waiting and running jobs' trace views (scoring.queueMaxBytes). */
  queueMaxBytes: number;
  /** Concurrency of a judge model's lane. */
  judgeConcurrency: (modelUri: string) => number;
  /**
   * Concurrency of each code scorer's lane. The sandbox pool, not this lane, decides which
   * scorer's call runs next, so every scorer with work must have calls waiting in the pool.
   */
  codeConcurrency: number;
  now?: () => number;
}

interface Lane {
  key: string;
  /** The metrics' lane label: 'code' for every code scorer's lane. */
  label: string;
  queue: SelectedJob[];
  head: number;
  running: number;
  concurrency: number;
}

const CODE_LANE = 'code';

/**
 * As a stage: consume(job) queues a job or refuses it (QUEUE_FULL, SHUTTING_DOWN; counted here
 * in scorecar_scoring_jobs_dropped_total); the selection stage asks hasRoom first.
 */
export class ScoringEngine implements Consumer<SelectedJob>, JobAdmission, Component {
  private readonly o: EngineOptions;
  private readonly lanes = new Map<string, Lane>();
  private queued = 0;
  private running = 0;
  private bytes = 0;
  private readonly health = new Map<string, ScorerHealth>();
  private readonly abort = new AbortController();
  private idle: Array<() => void> = [];
  private closed = false;
  private stopping: Promise<void> | undefined;
  private readonly now: () => number;
  private readonly m;

  constructor(o: EngineOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
    const m = o.metrics;
    this.m = {
      submitted: m.counter('scorecar_scoring_jobs_total', 'Scoring jobs accepted into the queue', [
        'experiment',
        'scorer',
      ]),
      dropped: m.counter('scorecar_scoring_jobs_dropped_total', 'Scoring jobs not run, by reason', [
        'experiment',
        'scorer',
        'reason',
      ]),
      duration: m.histogram(
        'scorecar_scoring_job_seconds',
        'Time to run one scoring job (all its model calls or its sandbox run)',
        [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
        ['experiment', 'scorer', 'type'],
      ),
      wait: m.histogram(
        'scorecar_scoring_queue_wait_seconds',
        'Time a job waited in the queue',
        [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
        ['lane'],
      ),
      tokens: m.counter('scorecar_judge_tokens_total', 'Judge tokens by experiment, model and direction', [
        'experiment',
        'model',
        'direction',
      ]),
      cost: m.counter('scorecar_judge_cost_total', 'Judge cost (price table units) by experiment and model', [
        'experiment',
        'model',
      ]),
      budgetPaused: m.gauge(
        'scorecar_judge_budget_exhausted',
        "1 while an experiment's daily judge budget is spent",
        ['experiment'],
      ),
    };
    m.gauge('scorecar_scoring_queue_jobs', 'Scoring jobs waiting, by lane', ['lane'], () => {
      const waiting = new Map<string, number>();
      for (const l of this.lanes.values())
        waiting.set(l.label, (waiting.get(l.label) ?? 0) + l.queue.length - l.head);
      return [...waiting].map(([lane, n]) => [{ lane }, n]);
    });
    m.gauge('scorecar_scoring_jobs_running', 'Scoring jobs running', [], () => this.running);
    m.gauge('scorecar_scoring_queue_bytes', 'Estimated memory of queued and running jobs (their trace views)', [], () => this.bytes);
    m.gauge(
      'scorecar_scorer_health',
      'Per-scorer runtime state: 0 ok, 1 error (e.g. authentication), 2 paused (budget)',
      ['experiment', 'scorer'],
      () =>
        [...this.health.entries()].map(([k, h]) => {
          const [experiment, scorer] = k.split('\u0000') as [string, string];
          return [{ experiment, scorer }, h.state === 'ok' ? 0 : h.state === 'error' ? 1 : 2];
        }),
    );
  }

  /** Estimated memory of queued and running jobs. */
  get queuedBytes(): number {
    return this.bytes;
  }

  /** Queued + running jobs. */
  get depth(): number {
    return this.queued + this.running;
  }

  scorerHealth(experimentId: string, name: string): ScorerHealth | undefined {
    return this.health.get(`${experimentId}\u0000${name}`);
  }

  private laneFor(job: SelectedJob): Lane {
    const model =
      isCodeScorer(job.scorer.definition) ? undefined : this.o.runner.modelFor(job.scorer.definition);
    // One lane per code scorer: one scorer's backlog must not hold back the others' jobs.
    const key =
      model === undefined
        ? `${CODE_LANE}\u0000${job.scorer.experimentId}\u0000${job.scorer.name}`
        : `judge:${model}`;
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = {
        key,
        label: model === undefined ? CODE_LANE : key,
        queue: [],
        head: 0,
        running: 0,
        concurrency: model === undefined ? this.o.codeConcurrency : this.o.judgeConcurrency(model),
      };
      this.lanes.set(key, lane);
    }
    return lane;
  }

  /** Whether `jobs` more jobs holding `bytes` would fit in the queue now. */
  hasRoom(jobs: number, bytes: number): boolean {
    return !this.closed && this.queued + jobs <= this.o.queueSize && this.bytes + bytes <= this.o.queueMaxBytes;
  }

  /** Counts a job refused before it was built (see TraceSelector admission). */
  refuse(experimentId: string, scorer: string, reason: 'queue_full' | 'shutdown'): void {
    this.m.dropped.inc({ experiment: experimentId, scorer, reason });
  }

  start(): void {}

  /** Queues a job; refuses (counted) when the queue is full or the engine is closing. */
  consume(job: SelectedJob): void {
    const labels = { experiment: job.scorer.experimentId, scorer: job.scorer.name };
    if (this.closed) {
      this.m.dropped.inc({ ...labels, reason: 'shutdown' });
      throw new ScorecarError('SHUTTING_DOWN', 'the scoring engine is shutting down');
    }
    if (this.queued >= this.o.queueSize || this.bytes + job.approxBytes > this.o.queueMaxBytes) {
      this.m.dropped.inc({ ...labels, reason: 'queue_full' });
      throw new ScorecarError('QUEUE_FULL', 'the scoring queue is full');
    }
    const lane = this.laneFor(job);
    lane.queue.push(job);
    this.queued++;
    this.bytes += job.approxBytes;
    this.m.submitted.inc(labels);
    (job as SelectedJob & { enqueuedMs?: number }).enqueuedMs = this.now();
    this.pump(lane);
  }

  private pump(lane: Lane): void {
    while (lane.running < lane.concurrency && lane.head < lane.queue.length) {
      const job = lane.queue[lane.head]!;
      lane.queue[lane.head] = undefined as unknown as SelectedJob;
      lane.head++;
      if (lane.head > 1024 && lane.head * 2 > lane.queue.length) {
        lane.queue = lane.queue.slice(lane.head);
        lane.head = 0;
      }
      this.queued--;
      lane.running++;
      this.running++;
      void this.run(lane, job).finally(() => {
        lane.running--;
        this.running--;
        this.bytes -= job.approxBytes;
        this.pump(lane);
        // Code lanes come and go with their scorer's work (scorers may be many and short-lived).
        if (
          lane.label === CODE_LANE &&
          lane.running === 0 &&
          lane.head >= lane.queue.length &&
          this.lanes.get(lane.key) === lane
        )
          this.lanes.delete(lane.key);
        if (this.depth === 0) {
          const w = this.idle;
          this.idle = [];
          for (const f of w) f();
        }
      });
    }
  }

  private setHealth(exp: string, name: string, h: Omit<ScorerHealth, 'since'>): void {
    const key = `${exp}\u0000${name}`;
    const prev = this.health.get(key);
    if (prev && prev.state === h.state && prev.code === h.code) return;
    this.health.set(key, { ...h, since: new Date(this.now()).toISOString() });
    if (h.state !== 'ok')
      this.o.log.warn('scorer health changed', {
        experiment: exp,
        scorer: name,
        state: h.state,
        code: h.code,
        message: h.message,
      });
    else if (prev) this.o.log.info('scorer healthy again', { experiment: exp, scorer: name });
  }

  private async run(lane: Lane, job: SelectedJob): Promise<void> {
    const { scorer } = job;
    const exp = scorer.experimentId;
    const labels = { experiment: exp, scorer: scorer.name };
    const enqueued = (job as SelectedJob & { enqueuedMs?: number }).enqueuedMs ?? this.now();
    this.m.wait.observe((this.now() - enqueued) / 1000, { lane: lane.label });
    const isJudge = lane.label !== CODE_LANE;
    let ticket: BudgetTicket | undefined;
    if (isJudge) {
      // A shared budget (PostgreSQL) reserves the call in the database before it is made.
      const pending = this.o.budgets.admit(exp);
      // Awaited only when it is a promise: without a shared budget, judges start in this turn.
      const admission = pending instanceof Promise ? await pending : pending;
      this.m.budgetPaused.set(admission.ok ? 0 : 1, { experiment: exp });
      if (!admission.ok) {
        this.m.dropped.inc({ ...labels, reason: admission.code === 'BUDGET_EXHAUSTED' ? 'budget_exhausted' : 'budget_unavailable' });
        this.setHealth(exp, scorer.name, { state: 'paused', code: admission.code, message: admission.reason });
        return;
      }
      ticket = admission.ticket;
    }
    const started = this.now();
    let scored: ScoredAssessment[];
    try {
      scored = await this.o.runner.run(
        { view: job.view, scorer, sampleRate: job.sampleRate, completion: job.completion },
        this.abort.signal,
      );
    } catch (e) {
      // The reservation is released with nothing used (the call did not complete).
      this.o.budgets.settle(ticket, 0, 0);
      // Only an abort (shutdown) or a closed runner gets here; anything else is a bug we count.
      this.m.dropped.inc({ ...labels, reason: this.abort.signal.aborted ? 'shutdown' : 'internal' });
      if (!this.abort.signal.aborted) this.o.log.error('scoring job failed unexpectedly', { ...labels, err: errorFields(e) });
      return;
    }
    const latencyMs = this.now() - started;
    this.m.duration.observe(latencyMs / 1000, { ...labels, type: isJudge ? 'judge' : 'code' });
    // Stored with the assessments: judge latency over time in the quality views.
    for (const s of scored) s.latencyMs = latencyMs;
    let tokens = 0;
    let cost = 0;
    let authError: { code: string; message: string } | undefined;
    for (const { assessment: a, usage } of scored) {
      const i = usage?.inputTokens ?? 0;
      const o = usage?.outputTokens ?? 0;
      const c = usage?.cost ?? 0;
      tokens += i + o;
      cost += c;
      if (isJudge) {
        if (i) this.m.tokens.inc({ experiment: exp, model: a.source.id, direction: 'input' }, i);
        if (o) this.m.tokens.inc({ experiment: exp, model: a.source.id, direction: 'output' }, o);
        if (c) this.m.cost.inc({ experiment: exp, model: a.source.id }, c);
      }
      if (a.error?.code === 'UNAUTHENTICATED' || a.error?.code === 'PROVIDER_NOT_CONFIGURED')
        authError = a.error;
    }
    if (isJudge) this.o.budgets.settle(ticket, tokens, cost);
    if (authError)
      this.setHealth(exp, scorer.name, { state: 'error', code: authError.code, message: authError.message });
    else this.setHealth(exp, scorer.name, { state: 'ok' });
    const aggregations: readonly Aggregation[] | undefined =
      isCodeScorer(scorer.definition) ? scorer.definition.aggregations : undefined;
    try {
      this.o.next.consume(scored.map((x) => ({ ...x, startedMs: started, aggregations })));
    } catch (e) {
      this.o.log.error('the emitter failed on a job', { ...labels, err: errorFields(e) });
    }
  }

  /** Resolves when every queued and running job is done. */
  whenIdle(): Promise<void> {
    if (this.depth === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  /**
   * Stops taking jobs and lets queued ones finish within the first part (60%) of the time left
   * before the deadline (the rest is the exporter's, which carries what scoring produced); then
   * aborts what still runs and counts what never ran (reason shutdown).
   */
  shutdown(deadlineMs: number): Promise<void> {
    this.stopping ??= (async () => {
      const pending = this.depth;
      if (pending > 0) this.o.log.info('finishing scoring jobs', { jobs: pending });
      await this.drain(this.now() + Math.max(0, (deadlineMs - this.now()) * 0.6));
    })();
    return this.stopping;
  }

  private async drain(deadlineMs: number): Promise<void> {
    this.closed = true;
    const timer = setTimeout(() => this.abort.abort(), Math.max(0, deadlineMs - this.now()));
    await Promise.race([
      this.whenIdle(),
      new Promise<void>((r) => this.abort.signal.addEventListener('abort', () => r(), { once: true })),
    ]);
    clearTimeout(timer);
    if (this.depth > 0) {
      this.abort.abort();
      for (const lane of this.lanes.values()) {
        for (let i = lane.head; i < lane.queue.length; i++) {
          const j = lane.queue[i]!;
          this.m.dropped.inc({
            experiment: j.scorer.experimentId,
            scorer: j.scorer.name,
            reason: 'shutdown',
          });
        }
        this.queued -= lane.queue.length - lane.head;
        lane.queue = [];
        lane.head = 0;
      }
    }
  }
}
