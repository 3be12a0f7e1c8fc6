// `npm run demo:kafka`: scoring spread over Kafka on this machine. Starts a broker
// (scripts/kafka-broker.sh: Apache Kafka resolved from Maven Central into .cache/kafka, Java 17+
// and Maven needed), the local judge-model server, a scorecar sidecar in scoring.mode kafka
// (config/demo.yaml) and two `scorecar worker` processes; sends 200 GenAI traces over OTLP/HTTP
// and prints every assessment as a Kafka consumer reads it from the assessments topic (the
// public contract), with the worker that scored it. Stops everything at the end.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Scorecar } from '../src/app.ts';
import { loadConfig } from '../src/config/index.ts';
import { createKafkaClient } from '../src/kafka/index.ts';
import { createLogger } from '../src/util/log.ts';
import { makeTraces, sendTraces } from '../test/support/kafka-traces.ts';
import { startModelServer } from './model-server.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const N = 200;
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

async function main(): Promise<void> {
  const t0 = Date.now();
  const brokerDir = mkdtempSync(join(tmpdir(), 'scorecar-demo-kafka-'));
  console.log('starting a Kafka broker (the first run resolves it from Maven Central)…');
  const line = execFileSync('bash', [join(ROOT, 'scripts/kafka-broker.sh'), 'start', brokerDir], {
    encoding: 'utf8',
  });
  const bootstrap = /bootstrap=(\S+)/.exec(line)![1]!;
  const model = await startModelServer();
  const dataDir = mkdtempSync(join(tmpdir(), 'scorecar-demo-kafka-data-'));
  const env = {
    ...process.env,
    DEMO_MODEL_URL: model.url,
    DEMO_DATA_DIR: dataDir,
    SCORECAR_SCORING__MODE: 'kafka',
    SCORECAR_KAFKA__BROKERS: JSON.stringify([bootstrap]),
    SCORECAR_KAFKA__WORKER__METRICS_ENDPOINT: '127.0.0.1:0',
  };
  const config = loadConfig({ file: join(ROOT, 'config/demo.yaml'), env });
  const app = new Scorecar(config, { logger: createLogger({ level: 'warn' }) });
  const workers: ChildProcess[] = [];
  try {
    const ep = await app.start();
    console.log(bold('scorecar demo: scoring via Kafka'));
    console.log(
      `  broker ${bootstrap}  sidecar OTLP/HTTP http://127.0.0.1:${ep.http}  admin http://127.0.0.1:${ep.admin}`,
    );
    for (let i = 0; i < 2; i++) {
      const w = spawn(
        join(ROOT, 'node_modules/.bin/node'),
        [join(ROOT, 'bin/scorecar.js'), 'worker', '--config', join(ROOT, 'config/demo.yaml')],
        {
          env: { ...env, DEMO_DATA_DIR: mkdtempSync(join(tmpdir(), `scorecar-demo-worker-${i}-`)) },
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      );
      workers.push(w);
    }
    console.log(
      `  2 workers (pids ${workers.map((w) => w.pid).join(', ')}) in group ${config.kafka.worker.groupId}; jobs on ${config.kafka.topics.jobs.name}\n`,
    );
    const client = await createKafkaClient({
      client: config.kafka.client,
      brokers: [bootstrap],
      clientId: 'demo-reader',
      log: createLogger({ level: 'error' }),
    });
    const seen = new Set<string>();
    const reader = client.consumer({
      groupId: 'demo-reader',
      topics: [config.kafka.topics.assessments.name],
      maxBatch: 100,
      sessionTimeoutMs: 10_000,
    });
    const reading = reader.run(async (batch) => {
      for (const m of batch) {
        const a = JSON.parse(m.value!.toString()) as {
          assessmentId: string;
          traceId: string;
          scorer: { name: string };
          value: unknown;
          error?: { code: string };
        };
        if (seen.has(a.assessmentId)) continue;
        seen.add(a.assessmentId);
        if (seen.size <= 12 || seen.size % 50 === 0) {
          console.log(
            `  ${a.traceId.slice(0, 8)}  ${a.scorer.name.padEnd(22)} ${bold(a.error ? `error ${a.error.code}` : JSON.stringify(a.value))}  (partition ${m.partition})`,
          );
        }
      }
    });
    await sendTraces(`http://127.0.0.1:${ep.http}`, 'demo', makeTraces(N, `demo-${Date.now()}`));
    const expected = N * 2; // both demo scorers run at rate 1.0
    while (seen.size < expected && Date.now() - t0 < 180_000) await new Promise((r) => setTimeout(r, 200));
    await reader.close();
    await reading;
    console.log(
      `\n${seen.size} assessments of ${N} traces read from ${config.kafka.topics.assessments.name} in ${((Date.now() - t0) / 1000).toFixed(1)} s (broker start included)`,
    );
  } finally {
    for (const w of workers) w.kill('SIGTERM');
    await Promise.all(
      workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : w.on('exit', r)))),
    );
    await app.stop(5000);
    await model.close();
    execFileSync('bash', [join(ROOT, 'scripts/kafka-broker.sh'), 'clean', brokerDir], { stdio: 'inherit' });
  }
}

await main();
