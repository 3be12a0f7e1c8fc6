// The process: config -> components (the pipeline of src/pipeline.ts, the admin server) and the
// process concerns around them: the start-up line, readiness, signals and exit codes.
import {
  type AdminRoute,
  type AdminServer,
  archiveRoutes,
  backfillRoutes,
  createAdminServer,
  qualityRoutes,
  traceRoutes,
} from './api/index.ts';
import type { CompleteTrace } from './assembly/index.ts';
import type { Config } from './config/index.ts';
import { MlflowExporter, MlflowRest, MlflowStore, mlflowTracingRoutes } from './mlflow/index.ts';
import { Pipeline, type PipelineOptions } from './pipeline.ts';
import type { Registry } from './registry/index.ts';
import type { ScoringEngine } from './scoring/index.ts';
import { createUiSite } from './ui/index.ts';
import { createLogger, errorFields, type Logger, MetricsRegistry } from './util/index.ts';

export interface ScorecarOptions extends PipelineOptions {
  /** More admin API routes. */
  routes?: readonly AdminRoute[];
}

export interface Endpoints {
  grpc: number | undefined;
  http: number | undefined;
  admin: number;
}

/** Exit codes of `scorecar start` (sysexits.h where one fits). */
export const EXIT = { ok: 0, failed: 1, config: 78 } as const;

export class Scorecar {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  private readonly opts: ScorecarOptions;
  private pipelineRef: Pipeline | undefined;
  private admin: AdminServer | undefined;
  private mlflowStore: MlflowStore | undefined;
  /** The MLflow destination (exporters.mlflow), when a tracking URI is configured. */
  mlflowExporter: MlflowExporter | undefined;
  private ready = false;
  private stopping: Promise<void> | undefined;

  constructor(config: Config, opts: ScorecarOptions = {}) {
    this.config = config;
    this.opts = opts;
    this.log = opts.logger ?? createLogger(config.logging);
    this.metrics = opts.metrics ?? new MetricsRegistry();
    const m = this.metrics;
    m.gauge('process_resident_memory_bytes', 'Resident set size', [], () => process.memoryUsage.rss());
    m.gauge('nodejs_heap_used_bytes', 'V8 heap in use', [], () => process.memoryUsage().heapUsed);
    m.gauge('nodejs_array_buffers_bytes', 'Memory held by ArrayBuffers and Buffers', [], () => process.memoryUsage().arrayBuffers);
    m.gauge('scorecar_ready', '1 when every receiver is listening', [], () => (this.ready ? 1 : 0));
  }

  /** The pipeline (after start()). */
  get pipeline(): Pipeline {
    if (!this.pipelineRef) throw new Error('scorecar is not started');
    return this.pipelineRef;
  }

  /** The scorer registry (after start()). */
  get registry(): Registry {
    return this.pipeline.registry;
  }

  /** The scoring engine (after start()). */
  get engine(): ScoringEngine {
    return this.pipeline.engine;
  }

  /** Resolves once everything received so far is fully processed (see Pipeline.whenIdle). */
  async whenIdle(): Promise<void> {
    await this.pipeline.whenIdle();
    // What the pipeline emitted last may still be on its way to MLflow.
    await this.mlflowExporter?.whenIdle();
  }

  async start(): Promise<Endpoints> {
    const mlflowOut = this.config.exporters.mlflow;
    if (mlflowOut.trackingUri !== '') {
      this.mlflowExporter = new MlflowExporter({ config: mlflowOut, metrics: this.metrics, log: this.log.child({ component: 'mlflow-exporter' }) });
    }
    const exporter = this.mlflowExporter;
    // The UI's dry runs on recent traffic: the last N completed traces (admin.ui.recentTraces).
    const keep = this.config.admin.ui.recentTraces;
    const recent: CompleteTrace[] = [];
    const userOnTrace = this.opts.onTrace;
    const onTrace =
      keep > 0
        ? (t: CompleteTrace) => {
            recent.push(t);
            if (recent.length > keep) recent.shift();
            userOnTrace?.(t);
          }
        : userOnTrace;
    const pipeline = await Pipeline.create(this.config, {
      ...this.opts,
      onTrace,
      logger: this.log,
      metrics: this.metrics,
      traceSinks: [...(this.opts.traceSinks ?? []), ...(exporter ? [exporter] : [])],
    });
    if (exporter) pipeline.emitter.onAssessment(exporter.onAssessment);
    this.pipelineRef = pipeline;
    await pipeline.start();
    // MLflow's REST API for scorers beside /api/v1, over the same registry.
    const mlflow = this.config.mlflow;
    if (mlflow.enabled) {
      this.mlflowStore = new MlflowStore({ dir: this.config.storage.dir, defaultExperiment: this.config.experiments.default });
    }
    const mlflowStore = this.mlflowStore;
    this.admin = createAdminServer({
      endpoint: this.config.admin.endpoint,
      token: this.config.admin.token,
      tls: this.config.admin.tls,
      allowedHosts: this.config.admin.allowedHosts,
      metricsAuth: this.config.admin.metricsAuth,
      corsAllowedOrigins: this.config.admin.cors.allowedOrigins,
      ui: this.config.admin.ui.enabled ? createUiSite() : undefined,
      registry: pipeline.registry,
      metrics: this.metrics,
      logger: this.log.child({ component: 'admin' }),
      // Shared store: not ready while PostgreSQL cannot be reached (storage.postgres.requiredForReadiness).
      ready: () => this.ready && pipeline.storeReady(),
      health: () => ({
        ok: !this.stopping,
        checks: { receivers: this.ready ? 'listening' : 'not listening', ...pipeline.checks() },
      }),
      routes: [
        ...traceRoutes(pipeline.store, pipeline.archiver),
        ...archiveRoutes(pipeline.archiver),
        ...backfillRoutes(pipeline.backfills),
        ...qualityRoutes({
          store: pipeline.store,
          registry: pipeline.registry,
          runner: pipeline.runner,
          archive: pipeline.archiver,
          recentTraces: keep > 0 ? () => recent : undefined,
          view: {
            resolution: this.config.experiments.resolution,
            defaultExperiment: this.config.experiments.default,
            limits: this.config.genai.viewLimits,
          },
        }),
        ...(this.opts.routes ?? []),
      ],
      scorerHealth: (exp, name) => pipeline.engine.scorerHealth(exp, name),
      mounts: mlflowStore
        ? [
            new MlflowRest({
              registry: pipeline.registry,
              store: mlflowStore,
              mapping: { gatewayEndpoints: mlflow.gatewayEndpoints },
              defaultModel: this.config.scoring.defaultModel,
              logger: this.log.child({ component: 'mlflow' }),
              // Apps traced with MLflow's SDK may point their tracking URI here too.
              extraRoutes: mlflowTracingRoutes({
                store: mlflowStore,
                assessmentsOf: (id) => pipeline.store.byTrace(id),
                otlpHttp: () => {
                  const rx = pipeline.httpReceiver;
                  return rx?.address() ? (req, res) => rx.serve(req, res) : undefined;
                },
              }),
            }),
          ]
        : [],
    });
    const adminAddr = await this.admin.listen();
    this.ready = true;
    const ports = pipeline.ports();
    this.log.info('scorecar started', {
      grpc: ports.grpc !== undefined ? `:${ports.grpc}` : 'off',
      http: ports.http !== undefined ? `:${ports.http}` : 'off',
      admin: `${adminAddr.host}:${adminAddr.port}`,
      downstream: this.config.exporters.otlp.endpoint || 'none',
      storage: this.config.storage.dir,
    });
    return { grpc: ports.grpc, http: ports.http, admin: adminAddr.port };
  }

  /**
   * Graceful stop: refuse new requests, finish those in progress, complete buffered traces, score
   * them, then give the exporter until the deadline to drain (the pipeline's shutdown order).
   */
  stop(deadlineMs = 10_000): Promise<void> {
    this.stopping ??= (async () => {
      const deadline = Date.now() + deadlineMs;
      this.ready = false;
      try {
        await this.pipelineRef?.shutdown(deadline);
      } finally {
        // Last, so /metrics and /healthz answer while the pipeline drains.
        await this.admin?.close();
        this.mlflowStore?.close();
      }
      this.log.info('scorecar stopped');
    })();
    return this.stopping;
  }
}

/**
 * Runs scorecar until SIGTERM or SIGINT, then stops gracefully within `shutdownMs`; a second
 * signal exits at once. Resolves with the process exit code: 0 after a clean stop, 78 when the
 * configuration (its scorers) is refused at start, 1 when start fails otherwise.
 */
export async function runUntilSignalled(config: Config, shutdownMs: number): Promise<number> {
  const app = new Scorecar(config);
  try {
    await app.start();
  } catch (e) {
    await app.stop(1000).catch(() => {});
    // TLS files checked at load can still change before the servers read them: the same exit.
    const code = e instanceof Error ? (e as { code?: string }).code : undefined;
    if (code === 'CONFIG_INVALID' || code === 'TLS_INVALID') {
      process.stderr.write(`scorecar: ${(e as Error).message}\n`);
      return EXIT.config;
    }
    app.log.error('cannot start', { err: errorFields(e) });
    return EXIT.failed;
  }
  await new Promise<void>((resolve) => {
    let signalled = false;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (signalled) {
        app.log.warn('second signal: exiting now', { signal: sig });
        process.exit(EXIT.failed);
      }
      signalled = true;
      app.log.info('shutting down', { signal: sig });
      app.stop(shutdownMs).then(resolve, (e: unknown) => {
        app.log.error('error during shutdown', { err: errorFields(e) });
        resolve();
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  return EXIT.ok;
}
