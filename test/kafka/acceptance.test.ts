// Issue 10's acceptance over the wire, on a broker of its own: one ingesting sidecar
// (scoring.mode kafka) and `scorecar worker` processes score 10,000 traces — a code scorer at
// 1.0 and a judge at 0.3 against the local model server — while (a) a worker is SIGKILLed in the
// middle of its work, (b) the broker is stopped and started again, (c) a third worker joins.
// Downstream, in the store and on the assessments topic there is then exactly the deterministic
// set of assessments: none lost, none emitted twice (the topic itself is at least once: a job
// scored again after the kill writes its assessments again, with the same ids), and every job
// and every assessment message is committed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ModelServer, startModelServer } from '../../scripts/model-server.ts';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { createLogger } from '../../src/util/index.ts';
import { type CaptureServer, startHttpCapture } from '../support/capture.ts';
import { scrape } from '../support/metrics.ts';
import { OwnBroker, startWorker, uniqueTopic, type WorkerChild } from '../support/kafka.ts';
import { expectExactlyOnce, kafkaYaml, SCORERS, storeRows } from '../support/kafka-assert.ts';
import { expectedPairs, makeTraces, sendTraces } from '../support/kafka-traces.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

const N = Number(process.env.SCORECAR_KAFKA_ACCEPTANCE_TRACES ?? 10_000);
const log = createLogger({ level: 'error' });

describe('kafka mode acceptance: worker killed, broker restarted, worker joining', () => {
  const broker = new OwnBroker();
  let model: ModelServer;
  let capture: CaptureServer;
  let sc: TestScorecar;
  let client: KafkaClient;
  let yaml: string;
  const workers: WorkerChild[] = [];
  const names = {
    jobs: uniqueTopic('jobs'),
    assessments: uniqueTopic('assessments'),
    workers: uniqueTopic('workers'),
    emitter: uniqueTopic('emitter'),
  };

  beforeAll(async () => {
    const bootstrap = await broker.start();
    model = await startModelServer();
    capture = await startHttpCapture();
    yaml = kafkaYaml({ bootstrap, ...names, model: model.url });
    client = await createKafkaClient({ client: 'platformatic', brokers: [bootstrap], clientId: 'test', log });
    sc = await startScorecar(
      `${yaml}exporters: {otlp: {endpoint: "${capture.url}"}}\nassembler: {settleMs: 100}\n${SCORERS}`,
      {
        overrides: (doc) => {
          (doc.scoring as Record<string, unknown>).mode = 'kafka';
        },
      },
    );
    for (let i = 0; i < 2; i++) workers.push(await startWorker(yaml));
  }, 300_000);

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill()));
    await sc?.stop();
    await capture?.close();
    await model?.close();
    await broker.clean();
  }, 120_000);

  it(`scores ${N} traces exactly once in effect through a kill, a broker restart and a join`, async () => {
    const traces = makeTraces(N, 'acceptance');
    const expected = expectedPairs(traces, 'answer_length', 'is_english', 0.3);
    const dir = sc.app.config.storage.dir;
    const stored = (): number => storeRows(dir).ids.length;
    const sending = sendTraces(sc.httpUrl, 'kafka-e2e', traces, 200);

    // (a) A worker killed while both are scoring: its uncommitted batch goes to the other.
    await waitFor(() => stored() >= expected.size * 0.15, 240_000, '15% of the assessments');
    await waitFor(
      async () => (await scrape(workers[0]!.metricsUrl, 'scorecar_scoring_jobs_running')) > 0,
      60_000,
      'worker 0 in the middle of a batch',
    );
    await workers[0]!.kill();

    // (b) The broker stopped and started again (same ports, same data) while traces keep coming:
    // the sidecar's jobs wait in its buffer, the workers and the feed reconnect.
    await waitFor(() => stored() >= expected.size * 0.35, 240_000, '35% of the assessments');
    await broker.stop();
    await broker.start();

    // (c) A third worker joins (a rebalance while work is in flight).
    await waitFor(() => stored() >= expected.size * 0.55, 240_000, '55% of the assessments');
    workers.push(await startWorker(yaml));

    await sending;
    await waitFor(() => stored() >= expected.size, 300_000, `${expected.size} stored assessments`);
    const onTopic = await expectExactlyOnce({ client, names, app: sc.app, dir, capture, expected, timeoutMs: 120_000 });
    // Every job was published once; none was dropped, even with the broker away for a while.
    expect(await sc.metric('scorecar_kafka_jobs_total')).toBe(expected.size);
    expect(await sc.metric('scorecar_kafka_jobs_dropped_total')).toBe(0);
    const dupTopic = onTopic.length - new Set(onTopic).size;
    const dupEmitter = await sc.metric('scorecar_assessments_duplicate_total');
    console.log(
      `acceptance: ${expected.size} assessments; topic carried ${dupTopic} repeats, the emitter dropped ${dupEmitter} as already stored`,
    );
  }, 900_000);
});
