// `scorecar worker`: a member of the jobs topic's consumer group that scores what the sidecars
// published and writes the assessments to the assessments topic.
//
// One batch at a time: decode the jobs (an unreadable one is counted and skipped: INVALID_JOB),
// rebuild each trace's GenAI view from its OTLP bytes, run them on the same scoring engine as
// inline mode (lanes, judge and sandbox concurrency, retries, budgets), wait until every job of
// the batch has its assessments, write them all and wait for the brokers' acknowledgement, and
// only then let the client commit the batch's offsets. A worker killed anywhere in that sequence
// leaves its jobs uncommitted: another member scores them again and writes assessments with the
// same deterministic ids, which the emitting sidecar recognises (its store has them) and emits
// once. So the topic is at least once, downstream and the store exactly once in effect.
//
// Judge budgets (scoring.budgets): with storage.postgres, every judge call is reserved in the
// budget the sidecars and the other workers share (budgetLedger); without it, each worker counts
// the usage of the jobs it ran since it started.
import { createServer, type Server } from 'node:http';
import type { EmitItem } from '../assessments/index.ts';
import type { Component } from '../component/index.ts';
import type { Config } from '../config/index.ts';
import { parseModelUri } from '../definitions/index.ts';
import { type BudgetLedger, createScorerRunner, JudgeBudgets, type ScorerRunner, ScoringEngine } from '../scoring/index.ts';
import type { SelectedJob } from '../select/index.ts';
import {
  errorFields,
  jitteredInterval,
  type Logger,
  type MetricsRegistry,
  PROMETHEUS_CONTENT_TYPE,
  ScorecarError,
} from '../util/index.ts';
import { assessmentMessage } from './assessments.ts';
import {
  type GroupConsumer,
  type InMessage,
  type KafkaClient,
  type KafkaProducer,
  type OutMessage,
  pause,
  settledBy,
} from './client.ts';
import { decodeJob, selectedJob } from './job.ts';
import { TopicSetup } from './topics.ts';

export interface WorkerOptions {
  config: Config;
  client: KafkaClient;
  metrics: MetricsRegistry;
  log: Logger;
  /** Environment for judge credentials and endpoints (default process.env). */
  env?: Record<string, string | undefined>;
  /**
   * Judge budgets shared with the sidecars and the other workers (PostgreSQL, storage.postgres):
   * without it, each worker counts its own usage.
   */
  budgetLedger?: BudgetLedger | undefined;
}

export class ScoringWorker implements Component {
  private readonly o: WorkerOptions;
  private readonly runner: ScorerRunner;
  private readonly engine: ScoringEngine;
  private producer: KafkaProducer | undefined;
  private consumer: GroupConsumer | undefined;
  private server: Server | undefined;
  private topics: TopicSetup | undefined;
  /** Assessments of the batch in hand, as the engine hands them on. */
  private out: EmitItem[] = [];
  private readonly abort = new AbortController();
  private ready = false;
  private readonly m;

  constructor(o: WorkerOptions) {
    this.o = o;
    const { config, metrics, log } = o;
    const sc = config.scoring;
    const scoringLog = log.child({ component: 'scoring' });
    this.runner = createScorerRunner({
      defaultModel: sc.defaultModel,
      timeoutMs: sc.timeoutMs,
      retry: sc.retry,
      concurrency: sc.concurrency,
      providers: sc.providers,
      prices: sc.prices,
      sandbox: sc.sandbox,
      logger: scoringLog,
      ...(o.env ? { env: o.env } : {}),
    });
    const batch = config.kafka.worker.batchSize;
    this.engine = new ScoringEngine({
      runner: this.runner,
      next: { consume: (items) => void this.out.push(...items) },
      budgets: new JudgeBudgets(sc.budgets, undefined, Date.now, {
        ledger: o.budgetLedger,
        onError: (e) => scoringLog.warn('judge budget usage not recorded', { err: e }),
      }),
      metrics,
      log: scoringLog,
      // The batch bounds what the engine holds: a job it refused for room would be committed
      // without assessments, so it never refuses one of a batch.
      queueSize: Math.max(sc.queueSize, batch),
      queueMaxBytes: Number.MAX_SAFE_INTEGER,
      codeConcurrency: sc.sandbox.workers * 4,
      judgeConcurrency: (uri) => {
        const parsed = parseModelUri(uri);
        return (parsed.ok ? sc.providers[parsed.value.provider]?.concurrency : undefined) ?? sc.concurrency;
      },
    });
    this.m = {
      jobs: metrics.counter('scorecar_worker_jobs_total', 'Scoring jobs read from the jobs topic and run', [
        'experiment',
        'scorer',
      ]),
      duplicates: metrics.counter(
        'scorecar_worker_duplicate_jobs_total',
        'Jobs read twice within one batch (run once)',
      ),
      invalid: metrics.counter(
        'scorecar_kafka_invalid_messages_total',
        'Kafka messages skipped because they could not be read (INVALID_JOB), by topic',
        ['topic'],
      ),
      batches: metrics.counter('scorecar_worker_batches_total', 'Batches of jobs scored and committed'),
      written: metrics.counter(
        'scorecar_kafka_written_total',
        'Messages written to Kafka (acknowledged by the brokers), by stream',
        ['stream'],
      ),
      retries: metrics.counter(
        'scorecar_kafka_write_retries_total',
        'Kafka writes retried after a failure, by stream',
        ['stream'],
      ),
      latency: metrics.histogram(
        'scorecar_kafka_job_latency_seconds',
        'From the sidecar selecting a trace to its assessments acknowledged on the assessments topic',
        [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      ),
    };
  }

  async start(): Promise<void> {
    const { config, client, log } = this.o;
    const k = config.kafka;
    // In the background: a broker away at start only delays the first batch.
    this.topics = new TopicSetup({
      client,
      create: k.createTopics
        ? [
            { topic: k.topics.jobs.name, partitions: k.topics.jobs.partitions },
            { topic: k.topics.assessments.name, partitions: k.topics.assessments.partitions },
          ]
        : [],
      log,
    });
    this.topics.start();
    this.producer = client.producer({ compression: config.exporters.kafka.compression });
    this.consumer = client.consumer({
      groupId: k.worker.groupId,
      topics: [k.topics.jobs.name],
      maxBatch: k.worker.batchSize,
      sessionTimeoutMs: k.worker.sessionTimeoutMs,
    });
    void this.consumer.run((batch) => this.handle(batch));
    this.ready = true;
    log.info('scorecar worker started', {
      client: client.kind,
      brokers: k.brokers.join(','),
      group: k.worker.groupId,
      jobs: k.topics.jobs.name,
      assessments: k.topics.assessments.name,
      metrics: this.server ? `:${this.port()}` : 'off',
    });
  }

  /** Serves /metrics, /healthz and /readyz (kafka.worker.metricsEndpoint). Returns the port. */
  async listen(endpoint: string): Promise<number> {
    const at = endpoint.lastIndexOf(':');
    const host = endpoint.slice(0, at).replace(/^\[|\]$/g, '') || '0.0.0.0';
    const port = Number(endpoint.slice(at + 1));
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/metrics') {
        res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE });
        res.end(this.o.metrics.render());
      } else if (path === '/healthz' || path === '/readyz') {
        const ok = path === '/healthz' ? !this.abort.signal.aborted : this.ready;
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ ok, scoringJobs: this.engine.depth, restarts: this.consumer?.restarts ?? 0 }),
        );
      } else {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: `no ${path} here` } }));
      }
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    return this.port();
  }

  port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  private async handle(batch: readonly InMessage[]): Promise<void> {
    const { config, log } = this.o;
    const view = {
      resolution: config.experiments.resolution,
      defaultExperiment: config.experiments.default,
      limits: config.genai.viewLimits,
    };
    const jobs: SelectedJob[] = [];
    const selectedAt: number[] = [];
    const seen = new Set<string>();
    for (const m of batch) {
      try {
        if (!m.value) throw new ScorecarError('INVALID_JOB', 'a job message without a value');
        const j = decodeJob(m.value);
        const key = `${j.traceId}\u0000${j.experimentId}\u0000${j.scorer.name}\u0000${j.scorer.version}`;
        if (seen.has(key)) {
          this.m.duplicates.inc();
          continue;
        }
        seen.add(key);
        jobs.push(selectedJob(j, view));
        selectedAt.push(j.selectedUnixMs);
      } catch (e) {
        this.m.invalid.inc({ topic: m.topic });
        log.warn('skipping a job that cannot be run', {
          topic: m.topic,
          partition: m.partition,
          offset: String(m.offset),
          err: errorFields(e),
        });
      }
    }
    this.out = [];
    for (const j of jobs) {
      this.m.jobs.inc({ experiment: j.scorer.experimentId, scorer: j.scorer.name });
      this.engine.consume(j);
    }
    await this.engine.whenIdle();
    // Stopped while scoring: the engine aborted jobs that then have no assessments. Nothing of
    // this batch is committed; it is scored again after the restart or by another member.
    if (this.abort.signal.aborted)
      throw new ScorecarError('SHUTTING_DOWN', 'the worker stopped during the batch');
    const out: OutMessage[] = this.out.map((it) => assessmentMessage(it));
    this.out = [];
    await this.write(out);
    const now = Date.now();
    for (const t of selectedAt) if (t > 0) this.m.latency.observe(Math.max(0, now - t) / 1000);
    this.m.batches.inc();
  }

  /** Writes the batch's assessments, retrying until the brokers acknowledge them (or shutdown). */
  private async write(out: OutMessage[]): Promise<void> {
    const k = this.o.config.kafka;
    const labels = { stream: 'assessments' };
    for (let attempt = 0; ; attempt++) {
      try {
        // Written in slices, so one request stays well under the brokers' message size limit.
        for (let i = 0; i < out.length; i += 500)
          await this.producer!.send(k.topics.assessments.name, out.slice(i, i + 500));
        this.m.written.inc(labels, out.length);
        return;
      } catch (e) {
        if (this.abort.signal.aborted) throw e;
        this.m.retries.inc(labels);
        if (attempt === 0)
          this.o.log.warn('cannot write assessments to Kafka; retrying before committing the jobs', {
            code: 'KAFKA_UNAVAILABLE',
            err: errorFields(e),
          });
        await pause(jitteredInterval(k.jobs.retry, Math.min(attempt, 30)), this.abort.signal);
        if (this.abort.signal.aborted) throw e;
      }
    }
  }

  /** Resolves when no job is being scored. */
  whenIdle(): Promise<void> {
    return this.engine.whenIdle();
  }

  /**
   * Stops taking batches and lets the one in hand finish (scored, written, committed) within
   * most of the time left; then aborts it (not committed: it is read again) and leaves the group.
   */
  async shutdown(deadlineMs: number): Promise<void> {
    this.ready = false;
    // Most of the time left goes to the batch in hand (scored, written, committed).
    const soft = Date.now() + Math.max(0, (deadlineMs - Date.now()) * 0.8);
    const closing = this.consumer?.close(deadlineMs) ?? Promise.resolve();
    if (!(await settledBy(closing, soft))) {
      // Past it: abort the batch (its jobs have no assessments, so it is not committed).
      this.abort.abort();
      await this.engine.shutdown(Date.now());
    }
    await settledBy(closing, deadlineMs);
    this.abort.abort();
    await this.engine.shutdown(Date.now());
    await this.topics?.shutdown();
    await settledBy(this.producer?.close() ?? Promise.resolve(), Math.max(deadlineMs, Date.now() + 1000));
    await this.runner.close();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
