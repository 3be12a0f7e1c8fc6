// The scorecar pipeline: every stage of the data path, wired in data-flow order, each handed the
// Consumer of the stage after it (as the OpenTelemetry Collector's graph hands each component
// its next consumer). The contract between stages is src/component: consume(item), refusal = a
// thrown ScorecarError with a stable code; the lifecycle is start() / shutdown(deadline).
//
//  OTLP/gRPC :4317 ─┐                           ┌──────────────────────────► downstream OTLP
//  OTLP/HTTP :4318 ─┤                           │       spans, logs, metrics  (collector, Jaeger,
//                   ▼                           │       as received;          Tempo, MLflow …)
//   ┌─────────────────────────┐   OtlpBatch  ┌──┴────────────┐                     ▲
//   │ receive                 │ ───────────► │ forward       │ export queue,       │ assessments:
//   │ validate, partial       │   (fan-out,  │ (exporters/)  │ retries             │ log event +
//   │ success, memory budget  │    in order) └───────────────┘                     │ evaluation
//   │ (receivers/)            │ ───────────► ┌───────────────┐                     │ span
//   └─────────────────────────┘              │ assemble      │ buffer by trace id  │
//                                            │ (assembly/)   │ (only traces the    │
//                                            └──────┬────────┘  selection wants)   │
//                                    CompleteTrace  ▼                              │
//                                            ┌───────────────┐                     │
//                                            │ select        │ hash + rate, admission,
//                                            │ (select/)     │ GenAI views (limits) on
//                                            └──────┬────────┘ view workers, filters
//                                      SelectedJob  ▼                              │
//                                            ┌───────────────┐                     │
//                                            │ score         │ lanes, budgets,     │
//                                            │ (scoring/)    │ judges, sandbox     │
//                                            └──────┬────────┘                     │
//                                    EmitItem[]     ▼                              │
//                                            ┌───────────────┐ store, metrics,     │
//                                            │ emit          │ listeners ──────────┘
//                                            │ (assessments/)│
//                                            └──────┬────────┘
//   CompleteTrace (archived experiments) ──┐        │ Assessment (listener)
//                                          ▼        ▼
//                                            ┌───────────────┐ per-experiment Delta tables
//                                            │ archive       │ traces + assessments, written
//                                            │ (archive/)    │ on a worker thread
//                                            └───────────────┘
//
// scoring.mode kafka: the selection stage's next stage is the Kafka jobs publisher (one job per
// (trace, scorer version) on kafka.topics.jobs, the trace's OTLP bytes included); `scorecar
// worker` processes score them and write assessments to kafka.topics.assessments, and the
// emitter's input is the assessment feed reading that topic (src/kafka). With
// exporters.kafka.assessments, inline mode writes every assessment it emits to that topic too.
//
// Stages are built from the last one back, so each is handed a next that exists. They start in
// the same order, sinks first (a stage only starts taking items once the stage it feeds runs),
// and shut down in the reverse order, receivers first: stop accepting -> complete (or drop,
// assembler.onShutdown) buffered traces -> build the views still waiting -> finish scoring jobs
// (60% of the time left) -> flush assessments -> commit the archive's buffered rows -> drain the
// export queue until the deadline -> close the stores. The memory budget counts every stage that
// holds data: requests in flight, the export queue, buffered traces, traces waiting for their
// view, queued scoring jobs and archive rows waiting for their commit.
//
// The archive reads completed traces beside the selection stage (a fanout: both see every trace)
// and the emitter's assessments through a listener; the assembler buffers a trace when the
// selection stage OR the archive wants it.
import { readFileSync } from 'node:fs';
import { Archiver, BackfillManager, backfillEmitter, PostgresBackfillStore } from './archive/index.ts';
import { AssessmentEmitter, type AssessmentListener, type AssessmentStore, type EmitItem, PostgresAssessmentStore, SqliteAssessmentStore } from './assessments/index.ts';
import { Assembler, type CompleteTrace, type TraceInterest } from './assembly/index.ts';
import { type Component, type Consumer, fanout, Lifecycle } from './component/index.ts';
import type { Config } from './config/index.ts';
import { parseModelUri } from './definitions/index.ts';
import { experimentOfResource, resolveExperiment } from './genai/index.ts';
import { OtlpForwarder } from './exporters/index.ts';
import {
  AssessmentFeed,
  assessmentMessage,
  BufferedPublisher,
  CollectorSpanExporter,
  CollectorSpanReceiver,
  createKafkaClient,
  JobPublisher,
  type KafkaClient,
  TopicSetup,
  type TopicSpec,
} from './kafka/index.ts';
import { MemoryBudget, OtlpGrpcReceiver, OtlpHttpReceiver, OtlpIngest } from './receivers/index.ts';
import { PostgresDatabase } from './postgres/index.ts';
import { openSqliteRegistry, PostgresRegistryStore, Registry } from './registry/index.ts';
import {
  createScorerRunner,
  JudgeBudgets,
  PostgresBudgetLedger,
  type ScorerRunner,
  ScoringEngine,
  validateScorerDefinition,
} from './scoring/index.ts';
import { type JobAdmission, type SelectedJob, TraceSelector } from './select/index.ts';
import { createLogger, type Logger, MetricsRegistry } from './util/index.ts';
import type { OtlpBatch } from './wire/index.ts';

export const VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface PipelineOptions {
  logger?: Logger;
  metrics?: MetricsRegistry;
  /**
   * Extra consumers of every completed trace (tests, embedders), after the selection stage.
   * With one, every trace is buffered (they may read any trace).
   */
  onTrace?: ((trace: CompleteTrace) => void) | undefined;
  /** Observes every (trace, scorer) job the selection stage hands to scoring (tests, embedders). */
  onSelect?: ((job: SelectedJob) => void) | undefined;
  /** Observes every assessment as it is emitted (tests, embedders). */
  onAssessment?: AssessmentListener | undefined;
  /** Environment for judge credentials and endpoints (default process.env). */
  env?: Record<string, string | undefined> | undefined;
  /** Runs the archive's writer on the main thread instead of a worker thread (tests). */
  archiveInline?: boolean | undefined;
  /**
   * Destinations of whole traces beside the selection stage (the MLflow exporter): each gets
   * the completed traces of the experiments it wants, and is shut down after the emitter (its
   * last assessments go out) and before the OTLP forwarder.
   */
  traceSinks?: readonly TraceSink[] | undefined;
}

/** A destination of completed traces, by experiment (see PipelineOptions.traceSinks). */
export interface TraceSink extends Component {
  /** Whether traces of this experiment go to the sink (asked before a trace is buffered, too). */
  wantsExperiment(experimentId: string): boolean;
  consumeTrace(trace: CompleteTrace, experimentId: string): void;
}

/** Whether a config needs a Kafka client at all. */
function usesKafka(config: Config): boolean {
  return (
    config.scoring.mode === 'kafka' ||
    config.exporters.kafka.assessments ||
    config.exporters.kafka.spans.enabled ||
    config.receivers.kafka.enabled
  );
}

/** The Kafka client of a config that uses Kafka (connections are made as they are needed). */
function kafkaClientFor(config: Config, log: Logger): Promise<KafkaClient> {
  const k = config.kafka;
  return createKafkaClient({
    client: k.client,
    brokers: k.brokers,
    clientId: k.clientId,
    requestTimeoutMs: k.requestTimeoutMs,
    log: log.child({ component: 'kafka' }),
  });
}

/** The topics this process writes, for kafka.createTopics. */
function topicsToCreate(config: Config): TopicSpec[] {
  const k = config.kafka;
  if (!k.createTopics) return [];
  const out: TopicSpec[] = [];
  if (config.scoring.mode === 'kafka' || config.exporters.kafka.assessments) {
    out.push({ topic: k.topics.jobs.name, partitions: k.topics.jobs.partitions });
    out.push({ topic: k.topics.assessments.name, partitions: k.topics.assessments.partitions });
  }
  if (config.exporters.kafka.spans.enabled)
    out.push({ topic: config.exporters.kafka.spans.topic, partitions: k.topics.jobs.partitions });
  return out;
}

/** Something that is a Component with a close() only: wraps stores and the runner. */
function closing(close: () => void | Promise<void>): Component {
  let done: Promise<void> | undefined;
  return {
    start: () => {},
    shutdown: () => {
      done ??= Promise.resolve().then(close);
      return done;
    },
  };
}

/** The receivers as one component: every one stops accepting before any is closed. */
function receiverGroup(receivers: readonly (OtlpHttpReceiver | OtlpGrpcReceiver)[]): Component {
  return {
    start: async () => {
      for (const r of receivers) await r.start();
    },
    shutdown: async (deadline) => {
      for (const r of receivers) r.beginDrain();
      await Promise.all(receivers.map((r) => r.shutdown(deadline)));
    },
  };
}

export class Pipeline implements Component {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  readonly budget: MemoryBudget;
  readonly registry: Registry;
  readonly store: AssessmentStore;
  /** storage.postgres.url: the database every store of this process shares with the other replicas. */
  readonly shared: SharedStores | undefined;
  readonly runner: ScorerRunner;
  readonly emitter: AssessmentEmitter;
  readonly engine: ScoringEngine;
  /** Runs backfills' scoring jobs: its own queue, the live engine's budgets and model clients. */
  readonly backfillEngine: ScoringEngine;
  readonly backfills: BackfillManager;
  readonly selector: TraceSelector;
  readonly archiver: Archiver;
  readonly assembler: Assembler;
  readonly forwarder: OtlpForwarder;
  readonly ingest: OtlpIngest;
  readonly httpReceiver: OtlpHttpReceiver | undefined;
  readonly grpcReceiver: OtlpGrpcReceiver | undefined;
  /** scoring.mode kafka: where selected jobs go. */
  readonly jobs: JobPublisher | undefined;
  /** scoring.mode kafka: the emitter's input (the assessments topic). */
  readonly feed: AssessmentFeed | undefined;
  /** exporters.kafka.assessments (inline mode): assessments written to the assessments topic. */
  readonly assessmentsOut: BufferedPublisher | undefined;
  /** exporters.kafka.spans: received spans written in the Collector's Kafka format. */
  readonly spansOut: CollectorSpanExporter | undefined;
  /** receivers.kafka: spans read from a Collector's Kafka topic. */
  readonly kafkaReceiver: CollectorSpanReceiver | undefined;
  /** Creates the topics this process writes, in the background (kafka.createTopics). */
  readonly topicSetup: TopicSetup | undefined;
  private readonly lifecycle: Lifecycle;

  /** Opens the registry (reconciling the config's scorers into it), then builds every stage. */
  static async create(config: Config, opts: PipelineOptions = {}): Promise<Pipeline> {
    const log = opts.logger ?? createLogger(config.logging);
    const metrics = opts.metrics ?? new MetricsRegistry();
    const shared = config.storage.postgres.url ? await openShared(config, log, metrics) : undefined;
    let registry: Registry;
    try {
      registry = shared
        ? await Registry.open({
            store: shared.registry,
            logger: log.child({ component: 'registry' }),
            metrics,
            validateDefinition: validateScorerDefinition,
          })
        : await openSqliteRegistry({
            dir: config.storage.dir,
            logger: log.child({ component: 'registry' }),
            metrics,
            validateDefinition: validateScorerDefinition,
          });
    } catch (e) {
      await shared?.db.close();
      throw e;
    }
    try {
      const results = await registry.reconcile(config.scorers);
      for (const r of results) {
        log.info('scorer from config', {
          experiment: r.experimentId,
          scorer: r.name,
          version: r.version,
          definition: r.definition,
          sampling: r.sampling,
        });
      }
      const kafka = usesKafka(config) ? await kafkaClientFor(config, log) : undefined;
      return new Pipeline(config, registry, { ...opts, logger: log, metrics, kafka, shared });
    } catch (e) {
      await registry.close();
      await shared?.db.close();
      throw e;
    }
  }

  private constructor(
    config: Config,
    registry: Registry,
    opts: PipelineOptions & { logger: Logger; metrics: MetricsRegistry; kafka: KafkaClient | undefined; shared: SharedStores | undefined },
  ) {
    this.config = config;
    this.registry = registry;
    this.log = opts.logger;
    this.metrics = opts.metrics;
    const { log, metrics } = this;
    const sc = config.scoring;

    // emit <- score <- select <- assemble <- (forward, receive): built from the end back.
    this.shared = opts.shared;
    this.store = opts.shared?.assessments ?? new SqliteAssessmentStore({ dir: config.storage.dir });
    this.forwarder = new OtlpForwarder(config.exporters.otlp, metrics, log.child({ component: 'exporter' }), undefined, {
      storageDir: config.storage.dir,
    });
    this.emitter = new AssessmentEmitter({
      store: this.store,
      otlp: this.forwarder,
      metrics,
      log: log.child({ component: 'emitter' }),
      version: VERSION,
    });
    if (opts.onAssessment) this.emitter.onAssessment(opts.onAssessment);
    const k = config.kafka;
    const kafka = opts.kafka;
    if (kafka && sc.mode === 'kafka') {
      this.feed = new AssessmentFeed({
        client: kafka,
        topic: k.topics.assessments.name,
        groupId: k.emitter.groupId,
        batchSize: k.emitter.batchSize,
        sessionTimeoutMs: k.emitter.sessionTimeoutMs,
        emitter: this.emitter,
        metrics,
        log: log.child({ component: 'kafka-feed' }),
      });
    } else if (kafka && config.exporters.kafka.assessments) {
      const out = new BufferedPublisher({
        producer: kafka.producer({ compression: config.exporters.kafka.compression }),
        topic: k.topics.assessments.name,
        stream: 'assessments',
        maxBytes: config.exporters.kafka.bufferBytes,
        batchBytes: k.jobs.batchBytes,
        retry: k.jobs.retry,
        metrics,
        log: log.child({ component: 'kafka-assessments' }),
      });
      this.assessmentsOut = out;
      // First emissions only (the emitter drops what its store already holds).
      this.emitter.onAssessment((a) => void out.offer(assessmentMessage({ assessment: a }), undefined));
    }
    this.archiver = new Archiver({
      config: config.archive,
      storageDir: config.storage.dir,
      resolution: config.experiments.resolution,
      defaultExperiment: config.experiments.default,
      engineInfo: `scorecar ${VERSION}`,
      metrics,
      log: log.child({ component: 'archive' }),
      inline: opts.archiveInline === true,
      // Traces being assembled may all come to the archive: its receive-side refusal counts them.
      upstreamBytes: () => this.assembler?.bytes ?? 0,
    });
    this.emitter.onAssessment(this.archiver.onAssessment);
    const scoringLog = log.child({ component: 'scoring' });
    this.runner = createScorerRunner({
      defaultModel: sc.defaultModel,
      timeoutMs: sc.timeoutMs,
      retry: sc.retry,
      concurrency: sc.concurrency,
      providers: sc.providers,
      prices: sc.prices,
      sandbox: sc.sandbox,
      python: sc.python,
      logger: scoringLog,
      ...(opts.env ? { env: opts.env } : {}),
    });
    const emit: Consumer<readonly EmitItem[]> = this.emitter;
    // One set of daily judge budgets for live scoring and backfills.
    // Shared store: usage and reservations in PostgreSQL, one budget for every replica.
    const budgets = new JudgeBudgets(sc.budgets, this.store, Date.now, {
      ledger: opts.shared?.ledger,
      onError: (e) => scoringLog.warn('judge budget usage not recorded', { err: e }),
    });
    const judgeConcurrency = (uri: string): number => {
      const parsed = parseModelUri(uri);
      return (parsed.ok ? sc.providers[parsed.value.provider]?.concurrency : undefined) ?? sc.concurrency;
    };
    this.engine = new ScoringEngine({
      runner: this.runner,
      next: emit,
      budgets,
      metrics,
      log: scoringLog,
      queueSize: sc.queueSize,
      queueMaxBytes: sc.queueMaxBytes,
      // More jobs in flight than workers, so a worker finds its next job queued in the pool the
      // moment it answers instead of waiting for the engine: sandbox round trips overlap.
      codeConcurrency: sc.sandbox.workers * 4,
      judgeConcurrency,
    });
    this.backfillEngine = new ScoringEngine({
      runner: this.runner,
      next: backfillEmitter(emit, () => this.backfills),
      budgets,
      metrics,
      log: scoringLog.child({ backfill: true }),
      // The manager keeps at most maxJobsInFlight queued; the slack absorbs a job's retries.
      queueSize: config.backfill.maxJobsInFlight * 2,
      queueMaxBytes: sc.queueMaxBytes,
      codeConcurrency: sc.sandbox.workers * 4,
      judgeConcurrency,
    });
    this.backfills = new BackfillManager({
      config: config.backfill,
      storageDir: config.storage.dir,
      salt: config.sampling.salt,
      resolution: config.experiments.resolution,
      defaultExperiment: config.experiments.default,
      archivalOf: (exp) => this.archiver.get(exp),
      scorerOf: async (exp, name) => {
        const s = await registry.get(exp, name);
        return { version: s.version, definition: s.definition, sampleRate: s.sampleRate, filterString: s.filterString };
      },
      assessedBy: (exp, scorer, version, ids) => this.store.tracesAssessedBy(scorer, version, exp, ids),
      flushAssessments: () => this.emitter.flush(),
      store: opts.shared?.backfills,
      engine: this.backfillEngine,
      metrics,
      log: log.child({ component: 'backfill' }),
    });
    if (kafka && sc.mode === 'kafka') {
      this.jobs = new JobPublisher({
        producer: kafka.producer({ compression: k.jobs.compression }),
        topic: k.topics.jobs.name,
        bufferBytes: k.jobs.bufferBytes,
        batchBytes: k.jobs.batchBytes,
        retry: k.jobs.retry,
        metrics,
        log: log.child({ component: 'kafka-jobs' }),
      });
    }
    const scoring: Consumer<SelectedJob> & JobAdmission = this.jobs ?? this.engine;
    const onSelect = opts.onSelect;
    const score: Consumer<SelectedJob> = onSelect
      ? {
          consume: (job) => {
            onSelect(job);
            scoring.consume(job);
          },
        }
      : scoring;
    this.selector = new TraceSelector({
      registry,
      next: score,
      admission: scoring,
      // A job for Kafka carries its trace's bytes.
      keepTrace: this.jobs !== undefined,
      resolution: config.experiments.resolution,
      defaultExperiment: config.experiments.default,
      salt: config.sampling.salt,
      queueMaxBytes: sc.queueMaxBytes,
      viewLimits: config.genai.viewLimits,
      viewWorkers: config.genai.viewWorkers,
      viewInlineMaxBytes: config.genai.viewInlineMaxBytes,
      metrics,
      log: log.child({ component: 'sampler' }),
    });
    const onTrace = opts.onTrace;
    const archiver = this.archiver;
    const sinks = opts.traceSinks ?? [];
    const { resolution, default: defaultExperiment } = config.experiments;
    const toSinks: Consumer<CompleteTrace> = {
      consume: (t) => {
        const exp = resolveExperiment(t, resolution, defaultExperiment, config.genai.viewLimits);
        for (const s of sinks) if (s.wantsExperiment(exp)) s.consumeTrace(t, exp);
      },
    };
    const consumers: Consumer<CompleteTrace>[] = [this.selector, archiver];
    if (sinks.length > 0) consumers.push(toSinks);
    if (onTrace) consumers.push({ consume: onTrace });
    const select: Consumer<CompleteTrace> = fanout(...consumers);
    // An extra consumer may read any trace: then every trace is buffered. Otherwise a trace is
    // buffered when a scorer could sample it, its experiment is archived, or a sink wants it (an
    // experiment that needs the root span to be known counts as wanted).
    const selector = this.selector;
    const sinkWants = (res: Parameters<TraceInterest['wants']>[2]): boolean => {
      if (sinks.length === 0) return false;
      const exp = experimentOfResource(res, resolution, defaultExperiment);
      return exp === undefined || sinks.some((s) => s.wantsExperiment(exp));
    };
    const interest: TraceInterest = onTrace
      ? { wants: () => true }
      : { wants: (id, off, res) => selector.wants(id, off, res) || archiver.wants(id, off, res) || sinkWants(res) };
    this.assembler = new Assembler(config.assembler, select, {
      interest,
      metrics,
      log: log.child({ component: 'assembler' }),
    });
    const spansCfg = config.exporters.kafka.spans;
    // Learned in the background (TopicSetup); until then the client picks partitions.
    let spanPartitions = 0;
    if (kafka && spansCfg.enabled) {
      this.spansOut = new CollectorSpanExporter({
        publisher: new BufferedPublisher({
          producer: kafka.producer({ compression: spansCfg.compression }),
          topic: spansCfg.topic,
          stream: 'spans',
          maxBytes: spansCfg.bufferBytes,
          batchBytes: k.jobs.batchBytes,
          retry: k.jobs.retry,
          metrics,
          log: log.child({ component: 'kafka-spans' }),
          atWrite: CollectorSpanExporter.placement(() => spanPartitions),
        }),
        metrics,
      });
    }
    // Received requests are forwarded first (a full export queue refuses the request before
    // anything is buffered), then assembled (and written to Kafka, exporters.kafka.spans).
    const received: Consumer<OtlpBatch> = this.spansOut
      ? fanout<OtlpBatch>(this.forwarder, this.assembler, this.spansOut)
      : fanout<OtlpBatch>(this.forwarder, this.assembler);
    this.ingest = new OtlpIngest({ next: received, precheck: [this.forwarder, this.archiver], metrics, log });

    this.budget = new MemoryBudget(config.limits.memoryBytes);
    this.budget.addHolder(() => this.forwarder.queuedBytes());
    this.budget.addHolder(() => this.assembler.bytes);
    this.budget.addHolder(() => this.selector.bytes);
    // Queued scoring jobs hold decoded trace views: they count against the same budget.
    this.budget.addHolder(() => this.engine.queuedBytes);
    this.budget.addHolder(() => this.backfillEngine.queuedBytes);
    // Archive rows waiting for their commit (on the writer thread, estimated).
    this.budget.addHolder(() => this.archiver.bytes);
    // Encoded jobs and assessments waiting for the Kafka brokers.
    if (this.jobs) this.budget.addHolder(() => this.jobs!.bufferedBytes);
    if (this.assessmentsOut) this.budget.addHolder(() => this.assessmentsOut!.bufferedBytes);
    metrics.gauge('scorecar_memory_budget_used_bytes', 'Bytes counted against limits.memoryBytes', [], () => this.budget.used());
    metrics.gauge('scorecar_memory_budget_limit_bytes', 'limits.memoryBytes', [], () => this.budget.limit);

    const rx = config.receivers.otlp;
    const retryAfterSeconds = config.limits.retryAfterSeconds;
    if (rx.http.endpoint) {
      this.httpReceiver = new OtlpHttpReceiver(
        { ...rx.http, endpoint: rx.http.endpoint, retryAfterSeconds },
        this.ingest,
        this.budget,
        metrics,
        log.child({ component: 'otlp-http' }),
      );
    }
    if (rx.grpc.endpoint) {
      this.grpcReceiver = new OtlpGrpcReceiver(
        { ...rx.grpc, endpoint: rx.grpc.endpoint, retryAfterSeconds },
        this.ingest,
        this.budget,
        metrics,
        log.child({ component: 'otlp-grpc' }),
      );
    }
    const receivers = [this.grpcReceiver, this.httpReceiver].filter((r) => r !== undefined);
    if (kafka && config.receivers.kafka.enabled) {
      const rk = config.receivers.kafka;
      this.kafkaReceiver = new CollectorSpanReceiver({
        client: kafka,
        topic: rk.topic,
        groupId: rk.groupId,
        batchSize: rk.batchSize,
        sessionTimeoutMs: rk.sessionTimeoutMs,
        ingest: { traces: (body, ctx) => this.ingest.traces(body, ctx) },
        fits: (bytes) => this.budget.fits(bytes),
        metrics,
        log: log.child({ component: 'kafka-receiver' }),
      });
    }

    if (kafka) {
      this.topicSetup = new TopicSetup({
        client: kafka,
        create: topicsToCreate(config),
        countPartitionsOf: spansCfg.enabled
          ? { topic: spansCfg.topic, onCount: (n) => (spanPartitions = n) }
          : undefined,
        log: log.child({ component: 'kafka' }),
      });
    }

    // Start order, sinks first; shutdown runs it backwards (receivers first, stores last).
    this.lifecycle = new Lifecycle([
      // Closed last: every store of this process uses it.
      ...(opts.shared ? [closing(() => opts.shared!.db.close())] : []),
      closing(() => this.registry.close()),
      closing(() => this.store.close()),
      closing(() => this.runner.close()),
      ...(this.topicSetup ? [this.topicSetup] : []),
      this.forwarder,
      ...(this.assessmentsOut ? [this.assessmentsOut] : []),
      // After the emitter in shutdown: its last assessments reach the sinks and the archive before they drain.
      ...sinks,
      this.archiver,
      this.emitter,
      // Reads assessments into the emitter: starts after it, stops before it flushes.
      ...(this.feed ? [this.feed] : []),
      this.engine,
      ...(this.jobs ? [this.jobs] : []),
      // Shut down before the emitter: a backfill's last assessments are emitted.
      this.backfillEngine,
      this.selector,
      this.assembler,
      ...(this.spansOut ? [this.spansOut] : []),
      receiverGroup(receivers),
      ...(this.kafkaReceiver ? [this.kafkaReceiver] : []),
      // Last to start (it resumes the backfills a previous run left), first to stop.
      this.backfills,
    ]);
  }

  start(): Promise<void> {
    return this.lifecycle.start();
  }

  shutdown(deadlineMs: number): Promise<void> {
    return this.lifecycle.shutdown(deadlineMs);
  }

  /**
   * Resolves once nothing is in flight past the receivers: no trace buffered, none waiting for its
   * view, no scoring job queued or running, every assessment flushed and the export queue empty.
   * For tests and embedders that need "everything sent so far has been fully processed" without
   * sleeping; it waits through settle windows (traces complete on the assembler's own timer).
   */
  async whenIdle(): Promise<void> {
    for (;;) {
      await this.selector.whenIdle();
      await this.engine.whenIdle();
      await this.backfillEngine.whenIdle();
      await this.emitter.flush();
      if (
        this.assembler.traceCount === 0 &&
        this.selector.depth === 0 &&
        this.engine.depth === 0 &&
        (this.jobs?.depth ?? 0) === 0 &&
        (this.assessmentsOut?.depth ?? 0) === 0 &&
        this.backfillEngine.depth === 0 &&
        this.forwarder.queuedBytes() === 0
      )
        return;
      // The assembler completes on its timer and the exporter on its workers: look again shortly.
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Ports the receivers listen on (after start). */
  ports(): { grpc: number | undefined; http: number | undefined } {
    return { grpc: this.grpcReceiver?.address()?.port, http: this.httpReceiver?.address()?.port };
  }

  /**
   * Whether the stores can be reached (/readyz): always with SQLite; with PostgreSQL, as of the
   * last round trip (probed every 2 s when idle), unless storage.postgres.requiredForReadiness is off.
   */
  storeReady(): boolean {
    if (!this.shared || !this.config.storage.postgres.requiredForReadiness) return true;
    return this.shared.db.connected();
  }

  /** What /healthz reports about the data path. */
  checks(): Record<string, unknown> {
    return {
      store: this.shared ? { ...this.shared.db.status(), pendingAssessments: this.emitter.unstoredCount } : { kind: 'sqlite', dir: this.config.storage.dir },
      exportQueueBytes: this.forwarder.queuedBytes(),
      bufferedTraces: this.assembler.traceCount,
      tracesWaitingForView: this.selector.depth,
      scoringJobs: this.engine.depth,
      ...(this.jobs ? { kafkaJobsBuffered: this.jobs.depth } : {}),
      ...(this.assessmentsOut ? { kafkaAssessmentsBuffered: this.assessmentsOut.depth } : {}),
      archiveBufferBytes: this.archiver.bytes,
      memoryBudgetUsedBytes: this.budget.used(),
    };
  }
}

/** The PostgreSQL-backed stores of storage.postgres (one database, one pool, per process). */
export interface SharedStores {
  db: PostgresDatabase;
  registry: PostgresRegistryStore;
  assessments: PostgresAssessmentStore;
  backfills: PostgresBackfillStore;
  ledger: PostgresBudgetLedger;
}

/** Connects and migrates (each store's migrations under the database's advisory lock). */
async function openShared(config: Config, log: Logger, metrics: MetricsRegistry): Promise<SharedStores> {
  const pgc = config.storage.postgres;
  const db = await PostgresDatabase.open({
    url: pgc.url,
    schema: pgc.schema,
    poolSize: pgc.poolSize,
    connectTimeoutMs: pgc.connectTimeoutMs,
    statementTimeoutMs: pgc.statementTimeoutMs,
    applicationName: `scorecar-${VERSION}`,
    logger: log.child({ component: 'postgres' }),
    metrics,
  });
  try {
    const stores: SharedStores = {
      db,
      registry: await PostgresRegistryStore.open(db),
      assessments: await PostgresAssessmentStore.open(db),
      backfills: await PostgresBackfillStore.open(db),
      // A reservation outlives any judge call with its retries.
      ledger: await PostgresBudgetLedger.open(db, Math.max(60_000, config.scoring.timeoutMs * 4)),
    };
    db.startProbe();
    log.info('shared store: PostgreSQL', db.status());
    return stores;
  } catch (e) {
    await db.close();
    throw e;
  }
}
