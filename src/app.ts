// The composition root: builds every stage from a validated config, starts them in order and
// shuts them down in reverse (stop accepting -> complete buffered traces -> drain exports).
import { readFileSync } from 'node:fs';
import { type AdminRoute, type AdminServer, createAdminServer, traceRoutes } from './api/index.ts';
import { AssessmentEmitter, type AssessmentListener, SqliteAssessmentStore } from './assessments/index.ts';
import { Assembler, type CompleteTrace } from './assembly/index.ts';
import type { Config } from './config/index.ts';
import { MemoryBudget, OtlpForwarder, OtlpGrpcReceiver, OtlpHttpReceiver, OtlpIngest } from './otlp/index.ts';
import { openSqliteRegistry, type Registry } from './registry/index.ts';
import {
  createScorerRunner,
  JudgeBudgets,
  parseModelUri,
  type ScorerRunner,
  ScoringEngine,
  type SelectedJob,
  TraceSelector,
} from './scoring/index.ts';
import { createLogger, type Logger } from './util/log.ts';
import { MetricsRegistry } from './util/metrics.ts';

export interface ScorecarOptions {
  logger?: Logger;
  metrics?: MetricsRegistry;
  /** Extra consumers of completed traces (tests, embedders), called after the built-in stages. */
  onTrace?: (trace: CompleteTrace) => void;
  /** Observes every (trace, scorer) job the sampler selects (tests, embedders). */
  onSelect?: (job: SelectedJob) => void;
  /** More admin API routes. */
  routes?: readonly AdminRoute[];
  /** Observes every assessment as it is emitted (tests, embedders). */
  onAssessment?: AssessmentListener;
  /** Environment for judge credentials and endpoints (default process.env). */
  env?: Record<string, string | undefined>;
}

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface Endpoints {
  grpc: number | undefined;
  http: number | undefined;
  admin: number;
}

export class Scorecar {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  readonly budget: MemoryBudget;
  readonly forwarder: OtlpForwarder;
  readonly assembler: Assembler;
  readonly ingest: OtlpIngest;
  private readonly httpReceiver: OtlpHttpReceiver | undefined;
  private readonly grpcReceiver: OtlpGrpcReceiver | undefined;
  private admin: AdminServer | undefined;
  private registryRef: Registry | undefined;
  private selector: TraceSelector | undefined;
  private store: SqliteAssessmentStore | undefined;
  private runner: ScorerRunner | undefined;
  private emitter: AssessmentEmitter | undefined;
  private engineRef: ScoringEngine | undefined;
  private readonly opts: ScorecarOptions;
  private readonly consumers: Array<(t: CompleteTrace) => void> = [];
  private ready = false;
  private stopping: Promise<void> | undefined;

  constructor(config: Config, opts: ScorecarOptions = {}) {
    this.config = config;
    this.opts = opts;
    this.log = opts.logger ?? createLogger(config.logging);
    this.metrics = opts.metrics ?? new MetricsRegistry();
    if (opts.onTrace) this.consumers.push(opts.onTrace);
    const m = this.metrics;
    const exp = config.exporters.otlp;
    this.forwarder = new OtlpForwarder(exp, m, this.log.child({ component: 'exporter' }));
    this.assembler = new Assembler(config.assembler, (t) => this.onComplete(t));
    this.assembler.onConsumerError = (err, t) =>
      this.log.error('a trace consumer failed', { traceId: t.traceId, error: err instanceof Error ? err.message : String(err) });
    this.budget = new MemoryBudget(config.limits.memoryBytes);
    this.budget.addHolder(() => this.forwarder.queuedBytes());
    this.budget.addHolder(() => this.assembler.bytes);
    // Queued scoring jobs hold decoded trace views: they count against the same budget.
    this.budget.addHolder(() => this.engineRef?.queuedBytes ?? 0);
    this.ingest = new OtlpIngest({
      forwarder: this.forwarder,
      sink: (buf, scan, header) => this.assembler.ingest(buf, scan, header),
      metrics: m,
      log: this.log,
      refuseWhenQueueFull: exp.queue.whenFull === 'refuse',
    });
    const rx = config.receivers.otlp;
    const retryAfterSeconds = config.limits.retryAfterSeconds;
    if (rx.http.endpoint) {
      this.httpReceiver = new OtlpHttpReceiver(
        { endpoint: rx.http.endpoint, maxRequestBodyBytes: rx.http.maxRequestBodyBytes, retryAfterSeconds },
        this.ingest,
        this.budget,
        m,
        this.log.child({ component: 'otlp-http' }),
      );
    }
    if (rx.grpc.endpoint) {
      this.grpcReceiver = new OtlpGrpcReceiver(
        { endpoint: rx.grpc.endpoint, maxRecvMsgSizeBytes: rx.grpc.maxRecvMsgSizeBytes, retryAfterSeconds },
        this.ingest,
        this.budget,
        m,
        this.log.child({ component: 'otlp-grpc' }),
      );
    }
    this.registerMetrics();
  }

  /** Adds a consumer of completed traces. */
  onTrace(consumer: (t: CompleteTrace) => void): void {
    this.consumers.push(consumer);
  }

  /** The scorer registry (open after start()). */
  get registry(): Registry {
    if (!this.registryRef) throw new Error('scorecar is not started');
    return this.registryRef;
  }

  /** The scoring engine (after start()). */
  get engine(): ScoringEngine {
    if (!this.engineRef) throw new Error('scorecar is not started');
    return this.engineRef;
  }

  private onComplete(t: CompleteTrace): void {
    if (this.selector) {
      for (const job of this.selector.select(t)) {
        this.opts.onSelect?.(job);
        this.engineRef?.submit(job);
      }
    }
    for (const c of this.consumers) c(t);
  }

  private startScoring(): void {
    const sc = this.config.scoring;
    const log = this.log.child({ component: 'scoring' });
    this.store = new SqliteAssessmentStore({ dir: this.config.storage.dir });
    this.runner = createScorerRunner({
      defaultModel: sc.defaultModel,
      timeoutMs: sc.timeoutMs,
      retry: sc.retry,
      concurrency: sc.concurrency,
      providers: sc.providers,
      prices: sc.prices,
      sandbox: sc.sandbox,
      logger: log,
      ...(this.opts.env ? { env: this.opts.env } : {}),
    });
    this.emitter = new AssessmentEmitter({
      store: this.store,
      otlp: this.forwarder,
      metrics: this.metrics,
      log: log.child({ component: 'emitter' }),
      version: VERSION,
    });
    if (this.opts.onAssessment) this.emitter.onAssessment(this.opts.onAssessment);
    const emitter = this.emitter;
    this.engineRef = new ScoringEngine({
      runner: this.runner,
      emit: (items) => emitter.emit(items),
      budgets: new JudgeBudgets(sc.budgets, this.store),
      metrics: this.metrics,
      log,
      queueSize: sc.queueSize,
      queueMaxBytes: sc.queueMaxBytes,
      // More jobs in flight than workers, so a worker finds its next job queued in the pool the
      // moment it answers instead of waiting for the engine: sandbox round trips overlap.
      codeConcurrency: sc.sandbox.workers * 4,
      judgeConcurrency: (uri) => {
        const parsed = parseModelUri(uri);
        return (parsed.ok ? sc.providers[parsed.value.provider]?.concurrency : undefined) ?? sc.concurrency;
      },
    });
  }

  private registerMetrics(): void {
    const m = this.metrics;
    const a = this.assembler;
    m.counterFunc('scorecar_assembler_spans_total', 'Spans seen by the assembler, by outcome', ['outcome'], () => [
      [{ outcome: 'buffered' }, a.counters.spansBuffered],
      [{ outcome: 'duplicate' }, a.counters.spansDuplicate],
      [{ outcome: 'late' }, a.counters.spansLate],
      [{ outcome: 'evicted' }, a.counters.spansEvicted],
    ]);
    m.counterFunc('scorecar_assembler_traces_completed_total', 'Traces handed to scoring, by completion rule', ['reason'], () =>
      Object.entries(a.counters.tracesCompleted).map(([reason, v]) => [{ reason }, v]),
    );
    m.counterFunc('scorecar_assembler_traces_evicted_total', 'Traces dropped from the buffer because it was full', [], () => a.counters.tracesEvicted);
    m.gauge('scorecar_assembler_buffer_bytes', 'Bytes charged for buffered traces', [], () => a.bytes);
    m.gauge('scorecar_assembler_buffer_traces', 'Traces currently buffered', [], () => a.traceCount);
    m.gauge('scorecar_memory_budget_used_bytes', 'Bytes counted against limits.memoryBytes', [], () => this.budget.used());
    m.gauge('scorecar_memory_budget_limit_bytes', 'limits.memoryBytes', [], () => this.budget.limit);
    m.gauge('process_resident_memory_bytes', 'Resident set size', [], () => process.memoryUsage.rss());
    m.gauge('nodejs_heap_used_bytes', 'V8 heap in use', [], () => process.memoryUsage().heapUsed);
    m.gauge('nodejs_array_buffers_bytes', 'Memory held by ArrayBuffers and Buffers', [], () => process.memoryUsage().arrayBuffers);
    m.gauge('scorecar_ready', '1 when every receiver is listening', [], () => (this.ready ? 1 : 0));
  }

  async start(): Promise<Endpoints> {
    const registry = await openSqliteRegistry({
      dir: this.config.storage.dir,
      logger: this.log.child({ component: 'registry' }),
      metrics: this.metrics,
    });
    this.registryRef = registry;
    try {
      const results = await registry.reconcile(this.config.scorers);
      for (const r of results) this.log.info('scorer from config', { experiment: r.experimentId, scorer: r.name, version: r.version, definition: r.definition, sampling: r.sampling });
    } catch (e) {
      await registry.close();
      throw e;
    }
    this.startScoring();
    const engine = this.engineRef!;
    this.selector = new TraceSelector({
      registry,
      admission: engine,
      resolution: this.config.experiments.resolution,
      defaultExperiment: this.config.experiments.default,
      salt: this.config.sampling.salt,
      metrics: this.metrics,
      log: this.log.child({ component: 'sampler' }),
    });
    this.forwarder.start();
    this.assembler.start();
    const grpcAddr = this.grpcReceiver ? await this.grpcReceiver.listen() : undefined;
    const httpAddr = this.httpReceiver ? await this.httpReceiver.listen() : undefined;
    this.admin = createAdminServer({
      endpoint: this.config.admin.endpoint,
      token: this.config.admin.token,
      registry,
      metrics: this.metrics,
      logger: this.log.child({ component: 'admin' }),
      ready: () => this.ready,
      health: () => ({
        ok: !this.stopping,
        checks: {
          receivers: this.ready ? 'listening' : 'not listening',
          exportQueueBytes: this.forwarder.queuedBytes(),
          bufferedTraces: this.assembler.traceCount,
          memoryBudgetUsedBytes: this.budget.used(),
        },
      }),
      routes: [...traceRoutes(this.store!), ...(this.opts.routes ?? [])],
      scorerHealth: (exp, name) => this.engineRef?.scorerHealth(exp, name),
    });
    const adminAddr = await this.admin.listen();
    this.ready = true;
    this.log.info('scorecar started', {
      grpc: grpcAddr ? `:${grpcAddr.port}` : 'off',
      http: httpAddr ? `:${httpAddr.port}` : 'off',
      admin: `${adminAddr.host}:${adminAddr.port}`,
      downstream: this.config.exporters.otlp.endpoint || 'none',
      storage: this.config.storage.dir,
    });
    return { grpc: grpcAddr?.port, http: httpAddr?.port, admin: adminAddr.port };
  }

  /**
   * Graceful stop: refuse new requests, finish those in progress, complete every buffered trace,
   * then give the exporter until the deadline to drain.
   */
  stop(deadlineMs = 10_000): Promise<void> {
    this.stopping ??= (async () => {
      const deadline = Date.now() + deadlineMs;
      this.ready = false;
      this.httpReceiver?.beginDrain();
      this.grpcReceiver?.beginDrain();
      await Promise.all([this.httpReceiver?.close(), this.grpcReceiver?.close()]);
      this.assembler.stop();
      const n = this.assembler.flushAll('shutdown');
      if (n > 0) this.log.info('completed buffered traces at shutdown', { traces: n });
      // Scoring gets the first part of the deadline, the exporter the rest (it also carries
      // the assessments scoring just produced).
      if (this.engineRef) {
        const pending = this.engineRef.depth;
        if (pending > 0) this.log.info('finishing scoring jobs', { jobs: pending });
        await this.engineRef.drain(Date.now() + Math.max(0, (deadline - Date.now()) * 0.6));
      }
      this.emitter?.close();
      await this.forwarder.shutdown(deadline);
      await this.runner?.close();
      this.store?.close();
      await this.admin?.close();
      await this.registryRef?.close();
      this.log.info('scorecar stopped');
    })();
    return this.stopping;
  }
}
