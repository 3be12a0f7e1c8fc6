// The client module against a real broker, with both libraries: a group of two members reads
// every message at least once and commits all of it (zero lag at the end); every codec written
// by one library is read by the other (kafkajs has no snappy/lz4/zstd of its own: ours are
// registered without native addons).
import { beforeAll, describe, expect, it } from 'vitest';
import {
  COMPRESSIONS,
  createKafkaClient,
  type InMessage,
  type KafkaClient,
  type KafkaClientKind,
} from '../../src/kafka/index.ts';
import { createLogger } from '../../src/util/index.ts';
import { sharedBroker, uniqueTopic } from '../support/kafka.ts';
import { waitFor } from '../support/scorecar.ts';

const log = createLogger({ level: (process.env.SCORECAR_TEST_LOG as 'debug') ?? 'error' });
const KINDS: KafkaClientKind[] = ['platformatic', 'kafkajs'];

describe('kafka client module', () => {
  let bootstrap: string;
  const clients = new Map<KafkaClientKind, KafkaClient>();

  beforeAll(async () => {
    bootstrap = await sharedBroker();
    for (const k of KINDS)
      clients.set(
        k,
        await createKafkaClient({ client: k, brokers: [bootstrap], clientId: `test-${k}`, log }),
      );
  }, 180_000);

  for (const kind of KINDS) {
    it(`${kind}: two group members read every message and commit all of it`, async () => {
      const c = clients.get(kind)!;
      const topic = uniqueTopic(`client-${kind}`);
      const admin = c.admin();
      await admin.ensureTopics([{ topic, partitions: 4 }]);
      await admin.ensureTopics([{ topic, partitions: 4 }]); // idempotent
      expect(await admin.partitions(topic)).toBe(4);
      const producer = c.producer({ compression: 'lz4' });
      const N = 2000;
      for (let i = 0; i < N; i += 250) {
        await producer.send(
          topic,
          Array.from({ length: 250 }, (_, j) => ({
            key: `trace-${(i + j) % 97}`,
            value: Buffer.from(String(i + j)),
            headers: { n: String(i + j) },
          })),
        );
      }
      const seen = new Map<number, number>();
      const members = [0, 1].map(() =>
        c.consumer({ groupId: `${topic}-g`, topics: [topic], maxBatch: 100, sessionTimeoutMs: 10_000 }),
      );
      const handle = async (batch: readonly InMessage[]): Promise<void> => {
        for (const m of batch) {
          const n = Number(m.value!.toString());
          expect(m.headers.n).toBe(String(n));
          expect(m.topic).toBe(topic);
          seen.set(n, (seen.get(n) ?? 0) + 1);
        }
      };
      const runs = members.map((m) => m.run(handle));
      try {
        await waitFor(() => seen.size === N, 90_000, 'every message');
        await waitFor(async () => (await admin.lag(`${topic}-g`, topic)) === 0, 60_000, 'zero lag');
      } finally {
        await Promise.all(members.map((m) => m.close()));
        await Promise.all(runs);
        await producer.close();
        await admin.close();
      }
      expect([...seen.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i));
    }, 180_000);
  }

  it('every codec written by one library is read by the other', async () => {
    for (const [writer, reader] of [
      ['platformatic', 'kafkajs'],
      ['kafkajs', 'platformatic'],
    ] as const) {
      const topic = uniqueTopic(`codecs-${writer}`);
      const w = clients.get(writer)!;
      const admin = w.admin();
      await admin.ensureTopics([{ topic, partitions: 1 }]);
      for (const codec of COMPRESSIONS) {
        const p = w.producer({ compression: codec });
        // Compressible values, so every codec really compresses.
        await p.send(
          topic,
          Array.from({ length: 20 }, (_, i) => ({
            key: codec,
            value: Buffer.from(`${codec}:${i}:${'x'.repeat(500)}`),
          })),
        );
        await p.close();
      }
      const got: string[] = [];
      const consumer = clients
        .get(reader)!
        .consumer({ groupId: `${topic}-g`, topics: [topic], maxBatch: 500, sessionTimeoutMs: 10_000 });
      const running = consumer.run(async (batch) => {
        for (const m of batch) got.push(m.value!.toString().split(':').slice(0, 2).join(':'));
      });
      try {
        await waitFor(
          () => got.length >= COMPRESSIONS.length * 20,
          60_000,
          `${reader} reading ${writer}'s codecs`,
        );
      } finally {
        await consumer.close();
        await running;
        await admin.close();
      }
      expect(new Set(got).size).toBe(COMPRESSIONS.length * 20);
    }
  }, 180_000);
});
