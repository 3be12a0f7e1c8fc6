// The Kafka client over @platformatic/kafka (the default, `kafka.client: platformatic`).
//
// Group consumption reads the library's message stream in batches and commits each partition's
// last offset only after the handler resolved. Two behaviours of the library shape it (measured,
// see the Kafka notes): after every rebalance the stream fetches again from the committed
// offsets, and it keeps handing out up to highWaterMark messages of partitions that were just
// revoked. So messages of partitions this member no longer owns are dropped before the handler
// sees them (the new owner reads them from the committed offset), and the handler must be
// idempotent — scorecar's are, by deterministic assessment ids.
import { Admin, Consumer, type Message, Producer, ProduceAcks } from '@platformatic/kafka';
import { errorFields } from '../util/index.ts';
import {
  type BatchHandler,
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

type Msg = Message<Buffer, Buffer, Buffer, Buffer>;

/** Waits between reconnects after a failure (the broker may be restarting). */
const RECONNECT_MS = 1000;

function toBuffer(v: Buffer | string | null): Buffer | undefined {
  if (v === null) return undefined;
  return typeof v === 'string' ? Buffer.from(v) : v;
}

export class PlatformaticClient implements KafkaClient {
  readonly kind = 'platformatic' as const;
  private readonly o: KafkaClientOptions;

  constructor(o: KafkaClientOptions) {
    this.o = o;
  }

  private base(suffix: string): { clientId: string; bootstrapBrokers: string[]; timeout: number } {
    return {
      clientId: `${this.o.clientId}-${suffix}`,
      bootstrapBrokers: [...this.o.brokers],
      timeout: this.o.requestTimeoutMs ?? 10_000,
    };
  }

  producer(opts: ProducerOptions = {}): KafkaProducer {
    const p = new Producer({
      ...this.base('producer'),
      acks: opts.acks === 1 ? ProduceAcks.LEADER : ProduceAcks.ALL,
      compression: opts.compression ?? 'none',
      // The caller owns retries (its buffer is bounded and counted); the library tries once more
      // on a stale-metadata answer only.
      retries: 1,
      retryDelay: 200,
    });
    return {
      async send(topic: string, messages: readonly OutMessage[]): Promise<void> {
        if (messages.length === 0) return;
        await p.send({
          messages: messages.map((m) => {
            // The default serialisers take header keys as bytes too.
            const headers: Map<Buffer, Buffer> | undefined = m.headers
              ? new Map(Object.entries(m.headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)]))
              : undefined;
            return {
              topic,
              value: m.value,
              ...(m.key === null ? {} : { key: toBuffer(m.key) }),
              ...(headers ? { headers } : {}),
              ...(m.partition === undefined ? {} : { partition: m.partition }),
            };
          }),
        });
      },
      close: () => p.close(true),
    };
  }

  consumer(opts: GroupConsumerOptions): GroupConsumer {
    return new PlatformaticGroupConsumer(this, opts);
  }

  /** A new library consumer for one (re)connection. */
  newConsumer(opts: GroupConsumerOptions): Consumer<Buffer, Buffer, Buffer, Buffer> {
    const session = opts.sessionTimeoutMs;
    return new Consumer({
      ...this.base('consumer'),
      groupId: opts.groupId,
      sessionTimeout: session,
      heartbeatInterval: Math.max(100, Math.min(3000, Math.floor(session / 3))),
      rebalanceTimeout: Math.max(session, 30_000),
      maxWaitTime: opts.maxWaitMs ?? 500,
      // What the stream may hold beyond the batch in hand: every one of them is a message that
      // a rebalance can make this member drop and another read again.
      highWaterMark: Math.max(opts.maxBatch * 2, 64),
      // One fetch response is pushed into the stream whole, paused or not: this bounds it
      // (the library's default is 50 MB).
      maxBytes: 8 * 1024 * 1024,
      retries: 3,
      retryDelay: 250,
    });
  }

  get log(): KafkaClientOptions['log'] {
    return this.o.log;
  }

  admin(): KafkaAdmin {
    const a = new Admin(this.base('admin'));
    const partitions = async (topic: string): Promise<number> => {
      const topics = await a.listTopics();
      if (!topics.includes(topic)) return 0;
      const md = await a.metadata({ topics: [topic], forceUpdate: true });
      return md.topics.get(topic)?.partitionsCount ?? 0;
    };
    return {
      async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
        const existing = new Set(await a.listTopics());
        for (const s of specs) {
          if (existing.has(s.topic)) continue;
          try {
            await a.createTopics({ topics: [s.topic], partitions: s.partitions, replicas: 1 });
          } catch (e) {
            // Another process created it between the listing and the call.
            if (!(await a.listTopics()).includes(s.topic)) throw e;
          }
        }
      },
      partitions,
      async lag(groupId: string, topic: string): Promise<number> {
        const n = await partitions(topic);
        if (n === 0) return 0;
        const idx = Array.from({ length: n }, (_, i) => i);
        const ends = await a.listOffsets({
          topics: [
            { name: topic, partitions: idx.map((partitionIndex) => ({ partitionIndex, timestamp: -1n })) },
          ],
        });
        const committed = await a.listConsumerGroupOffsets({
          groups: [{ groupId, topics: [{ name: topic, partitionIndexes: idx }] }],
        });
        const done = new Map<number, bigint>();
        for (const t of committed[0]?.topics ?? [])
          for (const p of t.partitions)
            done.set(p.partitionIndex, p.committedOffset < 0n ? 0n : p.committedOffset);
        let lag = 0n;
        for (const t of ends)
          for (const p of t.partitions) lag += p.offset - (done.get(p.partitionIndex) ?? 0n);
        return Number(lag);
      },
      close: () => a.close(),
    };
  }
}

class PlatformaticGroupConsumer implements GroupConsumer {
  private readonly client: PlatformaticClient;
  private readonly o: GroupConsumerOptions;
  private readonly stop = new AbortController();
  private running: Promise<void> | undefined;
  restarts = 0;

  constructor(client: PlatformaticClient, o: GroupConsumerOptions) {
    this.client = client;
    this.o = o;
  }

  run(handle: BatchHandler): Promise<void> {
    this.running ??= this.loop(handle);
    return this.running;
  }

  private async loop(handle: BatchHandler): Promise<void> {
    const log = this.client.log;
    while (!this.stop.signal.aborted) {
      // One library consumer (one group member) for as long as it works: a new member would make
      // the whole group rebalance, and every rebalance makes every member read again from the
      // committed offsets.
      const consumer = this.client.newConsumer(this.o);
      try {
        while (!this.stop.signal.aborted) {
          const stream = await consumer.consume({
            topics: [...this.o.topics],
            mode: 'committed',
            // A group with no committed offset starts at the beginning: nothing published before
            // the first worker joined is skipped.
            fallbackMode: 'earliest',
            autocommit: false,
          });
          try {
            await this.drain(consumer, stream, handle);
          } catch (e) {
            if (this.stop.signal.aborted) break;
            if (!stream.destroyed) throw e;
            // A commit refused because the group moved on destroys the stream (the library's
            // doing); the member rejoins and a new stream reads from the committed offsets.
            this.restarts++;
            log.debug('kafka message stream ended; opening a new one', {
              group: this.o.groupId,
              err: errorFields(e),
            });
          } finally {
            if (!stream.destroyed) await stream.close().catch(() => {});
          }
        }
      } catch (e) {
        if (!this.stop.signal.aborted) {
          this.restarts++;
          log.warn('kafka consumer failed; reconnecting', { group: this.o.groupId, err: errorFields(e) });
        }
      } finally {
        await consumer.close(true).catch(() => {});
      }
      if (!this.stop.signal.aborted) await pause(RECONNECT_MS, this.stop.signal);
    }
  }

  /** Hands the stream's batches to `handle` until it fails or the consumer is closed. */
  private async drain(
    consumer: Consumer<Buffer, Buffer, Buffer, Buffer>,
    stream: FlowingStream,
    handle: BatchHandler,
  ): Promise<void> {
    const queue = new StreamQueue(stream, this.o.maxBatch * 2);
    let idleSince = Date.now();
    while (!this.stop.signal.aborted) {
      const batch = await queue.take(this.o.maxBatch, this.stop.signal);
      if (batch.length === 0) {
        // Measured here: after a rebalance the library's stream sometimes stops fetching
        // partitions this member owns while they have messages. A member idle for a while that
        // still has lag opens a new stream, which fetches again from the committed offsets.
        if (Date.now() - idleSince >= STALL_CHECK_MS && !this.stop.signal.aborted) {
          idleSince = Date.now();
          if ((await ownedLag(consumer, this.o.topics)) > 0) {
            this.restarts++;
            this.client.log.debug('kafka member idle with lag; opening a new message stream', {
              group: this.o.groupId,
            });
            return;
          }
        }
        continue;
      }
      idleSince = Date.now();
      const owned = ownedOnly(batch, consumer.assignments);
      if (owned.length === 0) continue;
      await handle(owned.map(toIn));
      await commitLast(consumer, owned, this.client.log);
    }
  }

  async close(deadlineMs = Date.now() + 10_000): Promise<void> {
    this.stop.abort();
    if (this.running && !(await settledBy(this.running, deadlineMs))) {
      this.client.log.warn(
        'the kafka consumer did not leave its group in time; its partitions move after the session timeout',
        {
          group: this.o.groupId,
        },
      );
    }
  }
}

/** How long a member goes without messages before it checks its partitions' lag. */
const STALL_CHECK_MS = 2000;

/** Messages committed-behind on the partitions this member owns (0 when that cannot be told). */
async function ownedLag(
  consumer: Consumer<Buffer, Buffer, Buffer, Buffer>,
  topics: readonly string[],
): Promise<number> {
  try {
    const lag = await consumer.getLag({ topics: [...topics] });
    let n = 0n;
    // -1 marks a partition this member is not assigned.
    for (const parts of lag.values()) for (const l of parts) if (l > 0n) n += l;
    return Number(n);
  } catch {
    return 0;
  }
}

/** Messages of partitions this member still owns (the stream may hold revoked ones). */
function ownedOnly(batch: Msg[], assignments: { topic: string; partitions: number[] }[] | null): Msg[] {
  if (!assignments) return [];
  const owned = new Set<string>();
  for (const a of assignments) for (const p of a.partitions) owned.add(`${a.topic}\u0000${p}`);
  return batch.filter((m) => owned.has(`${m.topic}\u0000${m.partition}`));
}

/** The longest a commit is waited for before the batch is taken as (maybe) uncommitted. */
const COMMIT_WAIT_MS = 15_000;

/**
 * Commits each partition's last offset of the batch through the consumer (not the stream: a
 * stream commit asked for while the member is mid-rejoin waits for a rejoin that may not come,
 * and one refused destroys the stream). A failed or slow commit only means the batch may be read
 * again (by this member or the partition's next owner); the handler's outputs are idempotent.
 */
async function commitLast(
  consumer: Consumer<Buffer, Buffer, Buffer, Buffer>,
  batch: Msg[],
  log: KafkaClientOptions['log'],
): Promise<void> {
  const last = new Map<string, Msg>();
  for (const m of batch) {
    const k = `${m.topic}\u0000${m.partition}`;
    const prev = last.get(k);
    if (!prev || prev.offset < m.offset) last.set(k, m);
  }
  const offsets = [...last.values()].map((m) => ({
    topic: m.topic,
    partition: m.partition,
    offset: m.offset + 1n,
    leaderEpoch: m.leaderEpoch,
  }));
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      consumer.commit({ offsets }),
      new Promise<void>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer to the offset commit within ${COMMIT_WAIT_MS} ms`)),
          COMMIT_WAIT_MS,
        );
      }),
    ]);
  } catch (e) {
    log.warn('kafka offset commit failed; the batch may be read again', {
      partitions: offsets.map((o) => `${o.topic}/${o.partition}`),
      err: errorFields(e),
    });
  } finally {
    clearTimeout(timer);
  }
}

function toIn(m: Msg): InMessage {
  return {
    topic: m.topic,
    partition: m.partition,
    offset: m.offset,
    key: m.key ?? null,
    value: m.value ?? null,
    headers: headerRecord(m.headers.entries()),
    timestampMs: Number(m.timestamp),
  };
}

/** The library's message stream as the queue below uses it. */
interface FlowingStream {
  on(ev: 'data', fn: (m: Msg) => void): unknown;
  on(ev: 'error', fn: (e: Error) => void): unknown;
  on(ev: 'close', fn: () => void): unknown;
  pause(): unknown;
  resume(): unknown;
  readonly destroyed: boolean;
  close(): Promise<void>;
}

/**
 * The stream in flowing mode, feeding a queue that pauses it at `highWater` messages and resumes
 * it once half of that is taken. (Measured: reading it in paused mode — read() until null, then
 * wait for 'readable' — leaves it idle for seconds at a time while messages keep arriving, as
 * soon as the handler takes a few milliseconds per batch.)
 */
class StreamQueue {
  private items: Msg[] = [];
  private head = 0;
  private failure: Error | undefined;
  private closed = false;
  private paused = false;
  private wake: (() => void) | undefined;
  private readonly stream: FlowingStream;
  private readonly highWater: number;

  constructor(stream: FlowingStream, highWater: number) {
    this.stream = stream;
    this.highWater = Math.max(1, highWater);
    stream.on('data', (m: Msg) => {
      this.items.push(m);
      if (!this.paused && this.items.length - this.head >= this.highWater) {
        this.paused = true;
        stream.pause();
      }
      this.notify();
    });
    stream.on('error', (e: Error) => {
      this.failure ??= e;
      this.notify();
    });
    stream.on('close', () => {
      this.closed = true;
      this.notify();
    });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /**
   * Up to `max` messages as soon as at least one is there; [] after about a second without any
   * (or when aborted). Throws when the stream failed or closed under us (the caller reopens).
   */
  async take(max: number, signal: AbortSignal): Promise<Msg[]> {
    for (let waited = false; ; waited = true) {
      if (this.failure) throw this.failure;
      if (this.items.length > this.head) {
        const out = this.items.slice(this.head, this.head + max);
        this.head += out.length;
        if (this.head >= this.items.length) {
          this.items = [];
          this.head = 0;
        }
        if (this.paused && this.items.length - this.head <= this.highWater / 2) {
          this.paused = false;
          this.stream.resume();
        }
        return out;
      }
      if (this.closed || this.stream.destroyed) throw new Error('the kafka message stream closed');
      if (signal.aborted || waited) return [];
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(tick);
          signal.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        // Looks again at least every second (the caller checks for a stalled member then).
        const tick = setTimeout(done, 1000);
        this.wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }
}
