// `scorecar worker`: a member of the Kafka jobs topic's consumer group (scoring.mode kafka). It
// reads the same config file as `scorecar start` (kafka.*, scoring.*, genai.viewLimits,
// experiments.*), scores the jobs sidecars publish and writes their assessments to the
// assessments topic. SIGTERM/SIGINT: finish (or give back) the batch in hand, leave the group,
// exit 0; a second signal exits at once.
import { ConfigError } from '../config/index.ts';
import { createKafkaClient, ScoringWorker } from '../kafka/index.ts';
import { PostgresDatabase } from '../postgres/index.ts';
import { PostgresBudgetLedger } from '../scoring/index.ts';
import { createLogger, errorFields, MetricsRegistry } from '../util/index.ts';
import { loadRunConfig, parseRunArgs } from './run-args.ts';

const HELP = `Usage: scorecar worker [--config FILE] [--shutdown-timeout MS]

  --config FILE            YAML config (default: $SCORECAR_CONFIG); needs kafka.brokers
  --shutdown-timeout MS    how long SIGTERM may take to finish the batch in hand (default 10000)

Serves /metrics, /healthz and /readyz on kafka.worker.metricsEndpoint (default 127.0.0.1:4321).
`;

export async function runWorker(argv: string[]): Promise<number> {
  const args = parseRunArgs('worker', argv, HELP);
  if (typeof args === 'number') return args;
  const { shutdownMs } = args;
  // A worker serves no receiver or admin port: their certificates need not be mounted here.
  const config = loadRunConfig({ file: args.configFile, checkTlsFiles: false }, (c) => {
    if (c.kafka.brokers.length === 0)
      throw new ConfigError([{ path: 'kafka.brokers', message: 'scorecar worker needs kafka.brokers' }], 'worker');
  });
  if (typeof config === 'number') return config;
  const log = createLogger(config.logging).child({ process: 'worker' });
  const metrics = new MetricsRegistry();
  metrics.gauge('process_resident_memory_bytes', 'Resident set size', [], () => process.memoryUsage.rss());
  const client = await createKafkaClient({
    client: config.kafka.client,
    brokers: config.kafka.brokers,
    clientId: `${config.kafka.clientId}-worker`,
    requestTimeoutMs: config.kafka.requestTimeoutMs,
    log: log.child({ component: 'kafka' }),
  });
  // storage.postgres: the workers count judge budgets with the sidecars, in the shared store.
  const pgc = config.storage.postgres;
  let db: PostgresDatabase | undefined;
  let budgetLedger: PostgresBudgetLedger | undefined;
  if (pgc.url) {
    try {
      db = await PostgresDatabase.open({ url: pgc.url, schema: pgc.schema, poolSize: pgc.poolSize, connectTimeoutMs: pgc.connectTimeoutMs, logger: log.child({ component: 'postgres' }), metrics });
      budgetLedger = await PostgresBudgetLedger.open(db, Math.max(60_000, config.scoring.timeoutMs * 4));
    } catch (e) {
      log.error('cannot open the shared store', { err: errorFields(e) });
      await db?.close();
      return 1;
    }
  }
  const worker = new ScoringWorker({ config, client, metrics, log, budgetLedger });
  try {
    if (config.kafka.worker.metricsEndpoint) await worker.listen(config.kafka.worker.metricsEndpoint);
    await worker.start();
  } catch (e) {
    log.error('cannot start the worker', { err: errorFields(e) });
    await worker.shutdown(Date.now() + 1000).catch(() => {});
    await db?.close();
    return 1;
  }
  await new Promise<void>((resolve) => {
    let signalled = false;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (signalled) {
        log.warn('second signal: exiting now', { signal: sig });
        process.exit(1);
      }
      signalled = true;
      log.info('shutting down', { signal: sig });
      worker.shutdown(Date.now() + shutdownMs).then(resolve, (e: unknown) => {
        log.error('error during shutdown', { err: errorFields(e) });
        resolve();
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await db?.close();
  log.info('scorecar worker stopped');
  // A client library may keep a socket or timer alive past the shutdown deadline: exit anyway.
  setTimeout(() => process.exit(0), 1000).unref();
  return 0;
}
