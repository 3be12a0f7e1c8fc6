// scoring.mode kafka over the wire: a sidecar publishes every selected (trace, scorer version)
// job to the jobs topic, two `scorecar worker` processes score them, the sidecar reads their
// assessments back and emits them as inline mode does. Exactly the deterministic set of
// assessments reaches downstream, the store and the topic; every job and every assessment
// message is committed (zero lag).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ModelServer, startModelServer } from '../../scripts/model-server.ts';
import { createKafkaClient, type KafkaClient } from '../../src/kafka/index.ts';
import { createLogger } from '../../src/util/index.ts';
import { type CaptureServer, startHttpCapture } from '../support/capture.ts';
import { sharedBroker, startWorker, uniqueTopic, type WorkerChild } from '../support/kafka.ts';
import { expectExactlyOnce, kafkaYaml, SCORERS, storeRows } from '../support/kafka-assert.ts';
import { expectedPairs, makeTraces, sendTraces } from '../support/kafka-traces.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

const N = 400;
const log = createLogger({ level: 'error' });

for (const clientKind of ['platformatic', 'kafkajs'] as const) {
  describe(`scoring.mode kafka (${clientKind})`, () => {
    let model: ModelServer;
    let capture: CaptureServer;
    let sc: TestScorecar;
    let client: KafkaClient;
    const workers: WorkerChild[] = [];
    const names = {
      jobs: uniqueTopic('jobs'),
      assessments: uniqueTopic('assessments'),
      workers: uniqueTopic('workers'),
      emitter: uniqueTopic('emitter'),
    };

    beforeAll(async () => {
      const bootstrap = await sharedBroker();
      model = await startModelServer();
      capture = await startHttpCapture();
      const yaml = kafkaYaml({ bootstrap, ...names, model: model.url, client: clientKind });
      client = await createKafkaClient({
        client: 'platformatic',
        brokers: [bootstrap],
        clientId: 'test',
        log,
      });
      sc = await startScorecar(
        `${yaml}exporters: {otlp: {endpoint: "${capture.url}"}}\nassembler: {settleMs: 100}\n${SCORERS}`,
        {
          overrides: (doc) => {
            (doc.scoring as Record<string, unknown>).mode = 'kafka';
          },
        },
      );
      for (let i = 0; i < 2; i++) workers.push(await startWorker(yaml));
    }, 240_000);

    afterAll(async () => {
      await Promise.all(workers.map((w) => w.terminate()));
      await sc?.stop();
      await capture?.close();
      await model?.close();
    });

    it('scores every selected job once: downstream, in the store and on the topic, all committed', async () => {
      const traces = makeTraces(N, `mode-${clientKind}`);
      const expected = expectedPairs(traces, 'answer_length', 'is_english', 0.3);
      await sendTraces(sc.httpUrl, 'kafka-e2e', traces);
      const dir = sc.app.config.storage.dir;
      try {
        await waitFor(
          () => storeRows(dir).ids.length >= expected.size,
          120_000,
          `${expected.size} stored assessments`,
        );
      } catch (e) {
        // Where it stopped: the sidecar's and the workers' Kafka counters, and both groups' lag.
        const a = client.admin();
        console.log(
          'lag jobs',
          await a.lag(names.workers, names.jobs),
          'lag assessments',
          await a.lag(names.emitter, names.assessments),
        );
        await a.close();
        for (const url of [sc.adminUrl, ...workers.map((w) => w.metricsUrl)]) {
          const text = await (await fetch(`${url}/metrics`)).text();
          console.log(
            url,
            text
              .split('\n')
              .filter((l) => /kafka|worker_|duplicate/.test(l) && !l.startsWith('#'))
              .join('\n'),
          );
        }
        throw e;
      }
      await expectExactlyOnce({ client, names, app: sc.app, dir, capture, expected, timeoutMs: 60_000 });
      expect(
        await sc.metric('scorecar_kafka_jobs_total', { experiment: 'kafka-e2e', scorer: 'answer_length' }),
      ).toBe(N);
      expect(await sc.metric('scorecar_kafka_jobs_dropped_total')).toBe(0);
      expect(model.stats().requests).toBeGreaterThanOrEqual(expected.size - N);
    }, 240_000);
  });
}
