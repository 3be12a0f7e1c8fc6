// The Kafka recipe end to end: an SDK app → a Collector running deploy/collector/app-to-kafka.yaml
// (the contrib kafka exporter, otlp_proto, partition_traces_by_id) → a real broker → scorecar
// started on deploy/collector/scorecar-kafka.yaml (receivers.kafka) → a Collector running
// scorecar-to-backend.yaml → a sink. Every span must arrive intact and once, with the code
// scorer's assessments. What the test changes: the topic and group (per test, on a shared
// broker), listen ports (0), the data directory and the downstream's address (environment
// overrides), and a scorer appended to the config file.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafkaClient } from '../../src/kafka/index.ts';
import { silentLogger } from '../../src/util/index.ts';
import { type CaptureServer, startHttpCapture } from '../support/capture.ts';
import { NODE } from '../support/child.ts';
import { type Collector, type DeployTools, deployTools, ROOT, startCollector, startedPorts } from '../support/deploy.ts';
import { expectAssessments, expectIntact, sendGenAiTraces, sinkContents } from '../support/genai-app.ts';
import { BROKER_START_MS, sharedBroker, uniqueTopic } from '../support/kafka.ts';
import { waitFor } from '../support/scorecar.ts';

const N = 20;

describe('the Kafka recipe: Collector kafka exporter → scorecar receivers.kafka', () => {
  let tools: DeployTools | undefined;
  let capture: CaptureServer;
  let back: Collector | undefined;
  let front: Collector | undefined;
  let sc: ChildProcess | undefined;
  let scExit: Promise<number | null>;
  let out = '';
  let dir: string;

  beforeAll(async () => {
    tools = await deployTools();
    if (!tools) return;
    const bootstrap = await sharedBroker();
    const topic = uniqueTopic('otlp_spans');
    const client = await createKafkaClient({ client: 'platformatic', brokers: [bootstrap], clientId: 'deploy-test', log: silentLogger });
    // The broker does not create topics on first use; a cluster's operator makes this one.
    const admin = client.admin();
    try {
      await admin.ensureTopics([{ topic, partitions: 3 }]);
    } finally {
      await admin.close();
    }
    dir = mkdtempSync(join(tmpdir(), 'scorecar-deploy-kafka-'));
    capture = await startHttpCapture();
    back = await startCollector(tools.otelcol, 'scorecar-to-backend.yaml', { BACKEND_ENDPOINT: capture.url });
    // The recipe's config as it is, with a scorer added (scorers have no env form).
    const config = join(dir, 'scorecar.yaml');
    writeFileSync(
      config,
      `${readFileSync(join(ROOT, 'deploy/collector/scorecar-kafka.yaml'), 'utf8')}
scorers:
  - { experiment: chat-app, name: response_length, definition: { type: code, source: "(ctx) => String(ctx.outputs ?? '').length" }, sampleRate: 1.0 }
`,
    );
    sc = spawn(NODE, [join(ROOT, 'bin/scorecar.js'), 'start', '--config', config], {
      cwd: dir,
      env: {
        PATH: process.env.PATH,
        KAFKA_BROKERS: bootstrap,
        SCORECAR_RECEIVERS__KAFKA__TOPIC: topic,
        SCORECAR_RECEIVERS__KAFKA__GROUPID: `${topic}-scorecar`,
        SCORECAR_RECEIVERS__OTLP__GRPC__ENDPOINT: '127.0.0.1:0',
        SCORECAR_RECEIVERS__OTLP__HTTP__ENDPOINT: '127.0.0.1:0',
        SCORECAR_ADMIN__ENDPOINT: '127.0.0.1:0',
        SCORECAR_STORAGE__DIR: dir,
        SCORECAR_EXPORTERS__OTLP__ENDPOINT: `grpc://127.0.0.1:${back.grpc}`,
        SCORECAR_ASSEMBLER__SETTLEMS: '300',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const proc = sc;
    proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    scExit = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
    await waitFor(() => {
      if (proc.exitCode !== null) throw new Error(`scorecar exited (${proc.exitCode}):\n${out}`);
      return startedPorts(out) !== undefined;
    }, 60_000, 'scorecar to start');
    front = await startCollector(tools.otelcol, 'app-to-kafka.yaml', { KAFKA_BROKERS: bootstrap, KAFKA_TOPIC: topic });
  }, 1_800_000 + BROKER_START_MS);

  afterAll(async () => {
    if (sc && sc.exitCode === null) sc.kill('SIGKILL');
    await front?.stop();
    await back?.stop();
    await capture?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('delivers every span intact, once, with its assessment', async () => {
    if (!tools) return;
    const sent = await sendGenAiTraces(`http://127.0.0.1:${front!.http}/v1/traces`, 'chat-app', N);
    // Logs and spans reach the sink on separate pipelines of the back Collector: wait for both.
    await waitFor(() => {
      const { spans, logs } = sinkContents(capture);
      return spans.length >= 4 * N && logs.length >= N;
    }, 90_000, 'the spans, evaluation spans and assessment logs at the sink').catch((e: Error) => {
      throw new Error(`${e.message}: ${sinkContents(capture).spans.length} spans, ${sinkContents(capture).logs.length} logs at the sink\n--- front Collector:\n${front!.output().slice(-3000)}\n--- scorecar:\n${out.slice(-3000)}`);
    });
    const got = sinkContents(capture);
    expectIntact(sent, got.spans, 'chat-app');
    expectAssessments(sent, got);
    sc!.kill('SIGTERM');
    expect(await scExit).toBe(0);
  }, 120_000);
});
