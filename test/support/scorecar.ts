// Starts a scorecar in this process on ephemeral loopback ports, for wire tests.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Scorecar, type ScorecarOptions } from '../../src/app.ts';
import type { CompleteTrace } from '../../src/assembly/index.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/util/log.ts';
import { scrape, sumMetric } from './metrics.ts';

export interface TestScorecar {
  app: Scorecar;
  httpUrl: string;
  grpcUrl: string;
  adminUrl: string;
  /** Every completed trace, when started with captureTraces (then every trace is buffered). */
  traces: CompleteTrace[];
  stop(): Promise<void>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

/** `yaml` is merged over loopback ports; `overrides` edits the parsed document last. */
export async function startScorecar(
  yaml = '',
  opts: ScorecarOptions & {
    overrides?: (doc: Record<string, unknown>) => void;
    captureTraces?: boolean;
  } = {},
): Promise<TestScorecar> {
  const config = loadConfig({
    text: yaml,
    env: {},
    overrides: (doc) => {
      const d = doc as Record<string, Record<string, unknown>>;
      d.receivers ??= {};
      d.receivers.otlp ??= {};
      const rx = d.receivers.otlp as Record<string, Record<string, unknown>>;
      rx.grpc = { endpoint: '127.0.0.1:0', ...(rx.grpc ?? {}) };
      rx.http = { endpoint: '127.0.0.1:0', ...(rx.http ?? {}) };
      d.admin = { endpoint: '127.0.0.1:0', ...(d.admin ?? {}) };
      d.storage = { dir: mkdtempSync(join(tmpdir(), 'scorecar-test-')), ...(d.storage ?? {}) };
      opts.overrides?.(doc as Record<string, unknown>);
    },
  });
  const traces: CompleteTrace[] = [];
  // Capturing every completed trace makes the pipeline buffer every trace (an extra consumer may
  // read any); without it, only traces a scorer may select are buffered, as in production.
  const onTrace =
    opts.captureTraces || opts.onTrace
      ? (t: CompleteTrace) => {
          if (opts.captureTraces) traces.push(t);
          opts.onTrace?.(t);
        }
      : undefined;
  const app = new Scorecar(config, {
    ...opts,
    logger: opts.logger ?? createLogger({ level: (process.env.SCORECAR_TEST_LOG as 'debug') ?? 'error' }),
    onTrace,
  });
  const ep = await app.start();
  const adminTls = config.admin.tls !== undefined;
  const adminUrl = `${adminTls ? 'https' : 'http'}://127.0.0.1:${ep.admin}`;
  return {
    app,
    httpUrl: `${config.receivers.otlp.http.tls ? 'https' : 'http'}://127.0.0.1:${ep.http}`,
    grpcUrl: `127.0.0.1:${ep.grpc}`,
    adminUrl,
    traces,
    stop: () => app.stop(5_000),
    // An https admin port is signed by the test's own CA: read the registry in-process instead.
    metric: async (name, labels = {}) => (adminTls ? sumMetric(app.metrics.render(), name, labels) : scrape(adminUrl, name, labels)),
  };
}

export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
