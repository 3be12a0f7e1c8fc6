// The OpenTelemetry Collector's Kafka format, checked against what the real Collector `kafka`
// exporter wrote (test/fixtures/collector-kafka.json, recorded by `npm run fixtures:collector-kafka`):
// its record batches are replayed byte for byte (still compressed with none, gzip, snappy, lz4
// and zstd by the exporter's own client) into one topic, which both client libraries read back
// as the recorded messages, and which a sidecar with receivers.kafka consumes, reassembles (each
// trace spans several messages and two batches) and scores. scorecar's span exporter writes the
// same messages (bytes, keys, partitions) as the Collector for the same input.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  COMPRESSIONS,
  createKafkaClient,
  type InMessage,
  type KafkaClient,
  type KafkaClientKind,
  saramaPartition,
  splitTraces,
} from '../../src/kafka/index.ts';
import { createLogger } from '../../src/util/index.ts';
import { type OtlpBatch, protobufToJson, scanTraceRequest } from '../../src/wire/index.ts';
import { type CaptureServer, startHttpCapture } from '../support/capture.ts';
import { sharedBroker, uniqueTopic } from '../support/kafka.ts';
import { storeRows } from '../support/kafka-assert.ts';
import { produceRawBatch } from '../support/kafka-raw.ts';
import { startScorecar, type TestScorecar, waitFor } from '../support/scorecar.ts';

interface Recorded {
  partitions: number;
  codecs: Record<
    string,
    {
      inputs: string[];
      batches: { partition: number; batch: string }[];
      messages: { partition: number; key: string; value: string }[];
    }
  >;
}
const FIXTURE = JSON.parse(
  readFileSync(new URL('../fixtures/collector-kafka.json', import.meta.url), 'utf8'),
) as Recorded;
const log = createLogger({ level: 'error' });
const msgId = (m: { partition: number; key: string | null; value: string }): string =>
  `${m.partition}/${m.key}/${m.value}`;
/**
 * A message compared by what it means: partition, key and the decoded TracesData. (The Collector's
 * Go marshaler writes a message's fields last to first; scorecar re-frames them in field order
 * around the span bytes it received, which stay byte for byte the same. Both are the same
 * protobuf message to any reader.)
 */
const meaning = (m: { partition: number; key: string | null; value: string }): string =>
  `${m.partition}/${m.key}/${JSON.stringify(protobufToJson('traces', Buffer.from(m.value, 'base64')))}`;
const ALL = Object.values(FIXTURE.codecs).flatMap((c) => c.messages);

function batchOf(input: Buffer): OtlpBatch {
  const scan = scanTraceRequest(input);
  return {
    signal: 'traces',
    transport: 'kafka',
    body: input,
    items: scan.spanCount,
    scan,
    scanned: input,
    experimentHeader: undefined,
  };
}

async function readAll(client: KafkaClient, topic: string, n: number): Promise<InMessage[]> {
  const got: InMessage[] = [];
  const c = client.consumer({
    groupId: uniqueTopic('reader'),
    topics: [topic],
    maxBatch: 1000,
    sessionTimeoutMs: 10_000,
  });
  const running = c.run(async (b) => void got.push(...b));
  try {
    await waitFor(() => got.length >= n, 60_000, `${n} messages on ${topic}`);
  } finally {
    await c.close();
    await running;
  }
  return got;
}

describe('the Collector kafka exporter format', () => {
  it('the fixture holds every codec, as real compressed batches, 12 messages each', () => {
    expect(Object.keys(FIXTURE.codecs).sort()).toEqual([...COMPRESSIONS].sort());
    for (const [codec, c] of Object.entries(FIXTURE.codecs)) {
      // The codec bits of each batch's attributes: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
      for (const b of c.batches)
        expect(Buffer.from(b.batch, 'base64').readInt16BE(21) & 7).toBe(COMPRESSIONS.indexOf(codec as never));
      expect(c.messages).toHaveLength(12);
    }
  });

  it('scorecar splits, keys and partitions spans exactly as the Collector exporter does', () => {
    for (const c of Object.values(FIXTURE.codecs)) {
      const ours = c.inputs.flatMap((b64) =>
        splitTraces(batchOf(Buffer.from(b64, 'base64'))).map((m) => ({
          partition: saramaPartition(Buffer.from(m.key), FIXTURE.partitions),
          key: m.key,
          value: m.value.toString('base64'),
        })),
      );
      expect(ours.map(meaning).sort()).toEqual(c.messages.map(meaning).sort());
    }
  });

  describe('over a broker', () => {
    let bootstrap: string;
    let client: KafkaClient;
    const mixed = uniqueTopic('otlp_spans');

    beforeAll(async () => {
      bootstrap = await sharedBroker();
      client = await createKafkaClient({
        client: 'platformatic',
        brokers: [bootstrap],
        clientId: 'test',
        log,
      });
      const admin = client.admin();
      await admin.ensureTopics([{ topic: mixed, partitions: FIXTURE.partitions }]);
      await admin.close();
      for (const c of Object.values(FIXTURE.codecs)) {
        for (const b of c.batches)
          await produceRawBatch(bootstrap, mixed, b.partition, Buffer.from(b.batch, 'base64'));
      }
    }, 240_000);

    for (const kind of ['platformatic', 'kafkajs'] as KafkaClientKind[]) {
      it(`${kind} reads every codec's batches as the recorded messages`, async () => {
        const reader = await createKafkaClient({ client: kind, brokers: [bootstrap], clientId: 'test', log });
        const got = await readAll(reader, mixed, ALL.length);
        expect(
          got
            .map((m) =>
              msgId({ partition: m.partition, key: m.key!.toString(), value: m.value!.toString('base64') }),
            )
            .sort(),
        ).toEqual(ALL.map(msgId).sort());
        for (const m of got) expect(m.headers).toEqual({});
      }, 120_000);
    }

    describe('a sidecar reading it (receivers.kafka) and writing its spans again (exporters.kafka.spans)', () => {
      let sc: TestScorecar;
      let capture: CaptureServer;
      const out = uniqueTopic('otlp_spans_out');

      beforeAll(async () => {
        capture = await startHttpCapture();
        sc =
          await startScorecar(`kafka: {brokers: ["${bootstrap}"], topics: {jobs: {partitions: ${FIXTURE.partitions}}}}
receivers: {kafka: {enabled: true, topic: "${mixed}", groupId: "${uniqueTopic('rx')}"}}
exporters:
  otlp: {endpoint: "${capture.url}"}
  kafka: {spans: {enabled: true, topic: "${out}"}}
assembler: {settleMs: 100}
scorers:
  - experiment: collector
    name: answer_length
    definition: {type: code, source: "(ctx) => String(ctx.outputs ?? '').length"}
    sampleRate: 1.0
`);
      }, 120_000);

      afterAll(async () => {
        await sc?.stop();
        await capture?.close();
      });

      it('reassembles and scores every trace, forwards every span, and writes the same messages', async () => {
        const traces = Object.keys(FIXTURE.codecs).length * 6;
        await waitFor(
          () => storeRows(sc.app.config.storage.dir).ids.length >= traces,
          60_000,
          `${traces} assessments`,
        );
        await sc.app.whenIdle();
        const rows = storeRows(sc.app.config.storage.dir);
        expect(rows.ids).toHaveLength(traces);
        expect(new Set(rows.pairs.map((p) => p.split('/')[0]))).toHaveProperty('size', traces);
        // Downstream: every span received, plus one evaluation span per assessment.
        await waitFor(() => new Set(capture.spanIds()).size >= traces * 3, 30_000, 'every span downstream');
        expect(new Set(capture.spanIds()).size).toBe(traces * 3);
        expect(await sc.metric('scorecar_kafka_span_messages_total', { outcome: 'ok' })).toBe(ALL.length);
        expect(await sc.metric('scorecar_receiver_accepted_items_total', { transport: 'kafka' })).toBe(
          traces * 2,
        );
        // What scorecar wrote is what the Collector wrote (its topic has the same partition count).
        const written = await readAll(client, out, ALL.length);
        expect(
          written
            .map((m) =>
              meaning({ partition: m.partition, key: m.key!.toString(), value: m.value!.toString('base64') }),
            )
            .sort(),
        ).toEqual(ALL.map(meaning).sort());
      }, 120_000);
    });
  });
});
