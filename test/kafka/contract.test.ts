// The assessments topic as a public contract, written by an inline-mode sidecar
// (exporters.kafka.assessments): key = trace id, value = the assessment JSON with the REST API's
// fields, header scorecar.schema.version = 1; exactly the assessments the store holds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ModelServer, startModelServer } from '../../scripts/model-server.ts';
import { createKafkaClient, type InMessage, type KafkaClient } from '../../src/kafka/index.ts';
import { createLogger } from '../../src/util/index.ts';
import { sharedBroker, uniqueTopic } from '../support/kafka.ts';
import { kafkaYaml, SCORERS, storeRows } from '../support/kafka-assert.ts';
import { expectedPairs, makeTraces, sendTraces } from '../support/kafka-traces.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

const N = 200;

describe('assessments topic from inline mode', () => {
  let model: ModelServer;
  let sc: TestScorecar;
  let client: KafkaClient;
  const names = {
    jobs: uniqueTopic('jobs'),
    assessments: uniqueTopic('assessments'),
    workers: uniqueTopic('w'),
    emitter: uniqueTopic('e'),
  };

  beforeAll(async () => {
    const bootstrap = await sharedBroker();
    model = await startModelServer();
    client = await createKafkaClient({
      client: 'platformatic',
      brokers: [bootstrap],
      clientId: 'test',
      log: createLogger({ level: 'error' }),
    });
    sc = await startScorecar(
      `${kafkaYaml({ bootstrap, ...names, model: model.url })}exporters: {kafka: {assessments: true}}\nassembler: {settleMs: 100}\n${SCORERS}`,
    );
  }, 240_000);

  afterAll(async () => {
    await sc?.stop();
    await model?.close();
  });

  it('writes each emitted assessment once, as the documented JSON with its schema version header', async () => {
    const traces = makeTraces(N, 'contract');
    const expected = expectedPairs(traces, 'answer_length', 'is_english', 0.3);
    await sendTraces(sc.httpUrl, 'kafka-e2e', traces);
    await waitFor(
      () => storeRows(sc.app.config.storage.dir).ids.length >= expected.size,
      120_000,
      'stored assessments',
    );
    await sc.app.whenIdle();
    const got: InMessage[] = [];
    const c = client.consumer({
      groupId: uniqueTopic('reader'),
      topics: [names.assessments],
      maxBatch: 1000,
      sessionTimeoutMs: 10_000,
    });
    const running = c.run(async (batch) => void got.push(...batch));
    try {
      await waitFor(() => got.length >= expected.size, 60_000, 'assessments on the topic');
    } finally {
      await c.close();
      await running;
    }
    expect(got).toHaveLength(expected.size);
    const rows = storeRows(sc.app.config.storage.dir);
    const ids = new Set<string>();
    for (const m of got) {
      expect(m.headers['scorecar.schema.version']).toBe('1');
      expect(m.headers['content-type']).toBe('application/json');
      const a = JSON.parse(m.value!.toString()) as Record<string, unknown>;
      expect(Object.keys(a)).toEqual(
        expect.arrayContaining([
          'assessmentId',
          'name',
          'traceId',
          'spanId',
          'experimentId',
          'scorer',
          'source',
          'value',
          'metadata',
          'sampleRate',
          'createdAt',
        ]),
      );
      expect(m.key!.toString()).toBe(a.traceId);
      expect(a.experimentId).toBe('kafka-e2e');
      ids.add(String(a.assessmentId));
    }
    expect(ids).toEqual(new Set(rows.ids));
    expect(await sc.metric('scorecar_kafka_written_total', { stream: 'assessments' })).toBe(expected.size);
  }, 240_000);
});
