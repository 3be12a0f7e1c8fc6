// The Kafka client over kafkajs (`kafka.client: kafkajs`).
//
// kafkajs has only gzip built in: one snappy, lz4 or zstd batch on a topic (any Collector's
// operator may turn those on) would stop its consumer in a restart loop. So the three codecs are
// registered here, without native addons: snappy and lz4 from @platformatic/kafka's WASM codecs
// (which read both raw and xerial-framed snappy), zstd from node:zlib.
//
// Group consumption uses eachBatch with autoCommit off: each partition's batch goes to the
// handler in slices of at most maxBatch, and a slice's offset is committed once the handler
// resolved. kafkajs only heartbeats when asked inside eachBatch, so a heartbeat runs on a timer
// while the handler works (a slow judge must not cost the member its partitions).
import { compressionsAlgorithms } from '@platformatic/kafka';
import kafkajs, {
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type LogEntry,
  type Producer,
} from 'kafkajs';
import { errorFields, type Logger } from '../util/index.ts';
import {
  type BatchHandler,
  type Compression,
  type GroupConsumer,
  type GroupConsumerOptions,
  headerRecord,
  type InMessage,
  type KafkaAdmin,
  type KafkaClient,
  type KafkaClientOptions,
  type KafkaProducer,
  type OutMessage,
  pause,
  settledBy,
  type ProducerOptions,
  type TopicSpec,
} from './client.ts';

const { Kafka, CompressionTypes, CompressionCodecs, logLevel, Partitioners } = kafkajs;

let codecsRegistered = false;

/** Registers snappy, lz4 and zstd once per process (kafkajs keeps codecs in a global table). */
function registerCodecs(): void {
  if (codecsRegistered) return;
  codecsRegistered = true;
  const codec = (alg: { compressSync(b: Buffer): Buffer; decompressSync(b: Buffer): Buffer }) => () => ({
    compress: async (encoder: { buffer: Buffer }) => alg.compressSync(encoder.buffer),
    decompress: async (buffer: Buffer) => alg.decompressSync(buffer),
  });
  const table = CompressionCodecs as unknown as Record<number, unknown>;
  const algs = compressionsAlgorithms as unknown as Record<
    string,
    { compressSync(b: Buffer): Buffer; decompressSync(b: Buffer): Buffer }
  >;
  table[CompressionTypes.Snappy] = codec(algs.snappy!);
  table[CompressionTypes.LZ4] = codec(algs.lz4!);
  table[CompressionTypes.ZSTD] = codec(algs.zstd!);
}

const COMPRESSION_TYPE: Record<Compression, number> = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
};

/** kafkajs logs through ours: its errors as warnings (it retries them itself), the rest dropped. */
function logCreator(log: Logger) {
  return () =>
    ({ namespace, level, log: entry }: LogEntry) => {
      const {
        message,
        timestamp: _t,
        logger: _l,
        ...rest
      } = entry as { message: string; timestamp: string; logger?: unknown };
      if (level === logLevel.ERROR) log.warn(`kafkajs ${namespace}: ${message}`, rest);
      else if (level === logLevel.WARN) log.debug(`kafkajs ${namespace}: ${message}`, rest);
    };
}

export class KafkajsClient implements KafkaClient {
  readonly kind = 'kafkajs' as const;
  private readonly kafka: InstanceType<typeof Kafka>;
  readonly log: Logger;

  constructor(o: KafkaClientOptions) {
    registerCodecs();
    this.log = o.log;
    this.kafka = new Kafka({
      clientId: o.clientId,
      brokers: [...o.brokers],
      connectionTimeout: 3000,
      requestTimeout: o.requestTimeoutMs ?? 10_000,
      retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 5000 },
      logLevel: logLevel.WARN,
      logCreator: logCreator(o.log),
    });
  }

  producer(opts: ProducerOptions = {}): KafkaProducer {
    const p: Producer = this.kafka.producer({
      allowAutoTopicCreation: false,
      // Java's partitioner (murmur2 & 0x7fffffff); naming it also silences kafkajs's warning.
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { retries: 1 },
    });
    let connected: Promise<void> | undefined;
    const compression = COMPRESSION_TYPE[opts.compression ?? 'none'];
    const acks = opts.acks === 1 ? 1 : -1;
    return {
      async send(topic: string, messages: readonly OutMessage[]): Promise<void> {
        if (messages.length === 0) return;
        try {
          connected ??= p.connect();
          await connected;
          await p.send({
            topic,
            acks,
            compression,
            messages: messages.map((m) => ({
              key: m.key,
              value: m.value,
              ...(m.headers ? { headers: { ...m.headers } } : {}),
              ...(m.partition === undefined ? {} : { partition: m.partition }),
            })),
          });
        } catch (e) {
          // Connect again on the next send (the broker may have restarted).
          connected = undefined;
          await p.disconnect().catch(() => {});
          throw e;
        }
      },
      close: () => p.disconnect(),
    };
  }

  consumer(opts: GroupConsumerOptions): GroupConsumer {
    return new KafkajsGroupConsumer(this.kafka, this.log, opts);
  }

  admin(): KafkaAdmin {
    const a: Admin = this.kafka.admin();
    let connected: Promise<void> | undefined;
    const ready = (): Promise<void> => (connected ??= a.connect());
    const partitions = async (topic: string): Promise<number> => {
      await ready();
      if (!(await a.listTopics()).includes(topic)) return 0;
      const md = await a.fetchTopicMetadata({ topics: [topic] });
      return md.topics[0]?.partitions.length ?? 0;
    };
    return {
      async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
        await ready();
        const existing = new Set(await a.listTopics());
        const missing = specs.filter((s) => !existing.has(s.topic));
        if (missing.length === 0) return;
        await a.createTopics({
          waitForLeaders: true,
          topics: missing.map((s) => ({ topic: s.topic, numPartitions: s.partitions, replicationFactor: 1 })),
        });
      },
      partitions,
      async lag(groupId: string, topic: string): Promise<number> {
        if ((await partitions(topic)) === 0) return 0;
        const ends = await a.fetchTopicOffsets(topic);
        const committed = await a.fetchOffsets({ groupId, topics: [topic] });
        const done = new Map<number, bigint>();
        for (const t of committed)
          for (const p of t.partitions) done.set(p.partition, BigInt(p.offset) < 0n ? 0n : BigInt(p.offset));
        let lag = 0n;
        for (const e of ends) lag += BigInt(e.high) - (done.get(e.partition) ?? 0n);
        return Number(lag);
      },
      close: () => a.disconnect(),
    };
  }
}

class KafkajsGroupConsumer implements GroupConsumer {
  private readonly kafka: InstanceType<typeof Kafka>;
  private readonly log: Logger;
  private readonly o: GroupConsumerOptions;
  private consumer: Consumer | undefined;
  private readonly stop = new AbortController();
  private running: Promise<void> | undefined;
  restarts = 0;

  constructor(kafka: InstanceType<typeof Kafka>, log: Logger, o: GroupConsumerOptions) {
    this.kafka = kafka;
    this.log = log;
    this.o = o;
  }

  run(handle: BatchHandler): Promise<void> {
    this.running ??= this.loop(handle);
    return this.running;
  }

  private async loop(handle: BatchHandler): Promise<void> {
    while (!this.stop.signal.aborted) {
      const c = this.kafka.consumer({
        groupId: this.o.groupId,
        sessionTimeout: this.o.sessionTimeoutMs,
        heartbeatInterval: Math.max(100, Math.min(3000, Math.floor(this.o.sessionTimeoutMs / 3))),
        rebalanceTimeout: Math.max(this.o.sessionTimeoutMs, 30_000),
        maxWaitTimeInMs: this.o.maxWaitMs ?? 500,
        allowAutoTopicCreation: false,
        retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 5000 },
      });
      this.consumer = c;
      // kafkajs restarts itself after most failures; when it gives up, so does this connection.
      const crashed = new Promise<void>((resolve) => {
        c.on(c.events.CRASH, (ev: { payload: { error: Error; restart: boolean } }) => {
          if (!ev.payload.restart) resolve();
        });
      });
      try {
        await c.connect();
        await c.subscribe({ topics: [...this.o.topics], fromBeginning: true });
        await c.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          eachBatch: (p) => this.batch(c, p, handle),
        });
        await Promise.race([
          crashed,
          new Promise<void>((r) => this.stop.signal.addEventListener('abort', () => r(), { once: true })),
        ]);
        if (!this.stop.signal.aborted) {
          this.restarts++;
          this.log.warn('kafka consumer stopped; reconnecting', { group: this.o.groupId });
        }
      } catch (e) {
        if (!this.stop.signal.aborted) {
          this.restarts++;
          this.log.warn('kafka consumer failed; reconnecting', {
            group: this.o.groupId,
            err: errorFields(e),
          });
        }
      } finally {
        // Lets the batch in hand finish (and commit), then leaves the group.
        await c.disconnect().catch(() => {});
      }
      if (!this.stop.signal.aborted) await pause(1000, this.stop.signal);
    }
  }

  private async batch(c: Consumer, p: EachBatchPayload, handle: BatchHandler): Promise<void> {
    const { batch } = p;
    const all = batch.messages;
    for (let i = 0; i < all.length; i += this.o.maxBatch) {
      // A stale batch belongs to a generation this member left: its partitions may be someone
      // else's now, who reads them from the committed offset.
      if (!p.isRunning() || p.isStale() || this.stop.signal.aborted) return;
      const slice = all.slice(i, i + this.o.maxBatch);
      const msgs: InMessage[] = slice.map((m) => ({
        topic: batch.topic,
        partition: batch.partition,
        offset: BigInt(m.offset),
        key: m.key ?? null,
        value: m.value ?? null,
        headers: headerRecord(
          Object.entries(m.headers ?? {}).map(([k, v]) => [k, Array.isArray(v) ? v[v.length - 1] : v]),
        ),
        timestampMs: Number(m.timestamp),
      }));
      const beat = setInterval(
        () => {
          p.heartbeat().catch(() => {});
        },
        Math.max(100, Math.min(3000, Math.floor(this.o.sessionTimeoutMs / 3))),
      );
      try {
        await handle(msgs);
      } finally {
        clearInterval(beat);
      }
      const next = (BigInt(slice[slice.length - 1]!.offset) + 1n).toString();
      p.resolveOffset(slice[slice.length - 1]!.offset);
      try {
        await c.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }]);
      } catch (e) {
        this.log.warn('kafka offset commit failed; the batch may be read again', {
          topic: batch.topic,
          partition: batch.partition,
          err: errorFields(e),
        });
        return;
      }
    }
  }

  async close(deadlineMs = Date.now() + 10_000): Promise<void> {
    this.stop.abort();
    if (this.running && !(await settledBy(this.running, deadlineMs))) {
      this.log.warn(
        'the kafka consumer did not leave its group in time; its partitions move after the session timeout',
        {
          group: this.o.groupId,
        },
      );
    }
  }
}
