// The Kafka client, as the rest of scorecar sees it: a producer that sends a batch and resolves
// once the brokers acknowledged it, a group consumer that hands batches to a handler and commits
// their offsets only after the handler resolved (at least once: what was not committed is read
// again), and the few admin calls the pipeline and the tests need. Two implementations sit behind
// it: @platformatic/kafka (the default: maintained, every codec built in, fast) and kafkajs
// (`kafka.client: kafkajs`, with snappy/lz4/zstd registered without native addons). Nothing
// outside this folder imports either library.
import type { Logger } from '../util/index.ts';

export type KafkaClientKind = 'platformatic' | 'kafkajs';
export type Compression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
export const COMPRESSIONS: readonly Compression[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

export interface KafkaClientOptions {
  client: KafkaClientKind;
  /** host:port of one or more brokers. */
  brokers: readonly string[];
  clientId: string;
  log: Logger;
  /** Per-request timeout (connects, produce, metadata); default 10 s. */
  requestTimeoutMs?: number;
}

export interface OutMessage {
  /** null: no key (the client picks the partition). */
  key: Buffer | string | null;
  value: Buffer;
  headers?: Readonly<Record<string, string>>;
  /** Explicit partition (the Collector-compatible exporter computes its own). */
  partition?: number;
}

export interface InMessage {
  topic: string;
  partition: number;
  offset: bigint;
  key: Buffer | null;
  value: Buffer | null;
  /** Header values as UTF-8 strings (the last value wins when a key repeats). */
  headers: Record<string, string>;
  timestampMs: number;
}

export interface ProducerOptions {
  compression?: Compression;
  /** all (default): every in-sync replica has the batch; 1: the leader has it. */
  acks?: 'all' | 1;
}

export interface KafkaProducer {
  /** Resolves once the brokers acknowledged every message; rejects (nothing retried here) otherwise. */
  send(topic: string, messages: readonly OutMessage[]): Promise<void>;
  close(): Promise<void>;
}

export interface GroupConsumerOptions {
  groupId: string;
  topics: readonly string[];
  /** Most messages handed to the handler at once. */
  maxBatch: number;
  /** A member silent for this long is dropped from the group and its partitions reassigned. */
  sessionTimeoutMs: number;
  /** How long a fetch waits on the broker for data (bounds the latency of an idle consumer). */
  maxWaitMs?: number;
}

/**
 * Handles one batch (messages of one or more partitions, in offset order within each). Resolve:
 * the batch's offsets are committed. Reject: nothing is committed and the consumer leaves the
 * group and joins again, so the batch is read again (by this member or another).
 */
export type BatchHandler = (batch: readonly InMessage[]) => Promise<void>;

export interface GroupConsumer {
  /**
   * Joins the group and hands batches to `handle` until close(). Survives broker outages and
   * rebalances by reconnecting; resolves once closed.
   */
  run(handle: BatchHandler): Promise<void>;
  /**
   * Stops after the batch in hand (its offsets are committed if it completes), leaves the group.
   * Waits at most until `deadlineMs` (default: 10 s from now): a library that hangs while leaving
   * (seen: kafkajs in the middle of a join) must not hold a shutdown; the group then moves this
   * member's partitions after its session timeout.
   */
  close(deadlineMs?: number): Promise<void>;
  /** Batches read again after a failure or a rebalance cannot be told apart; this counts reconnects. */
  readonly restarts: number;
}

export interface TopicSpec {
  topic: string;
  partitions: number;
}

export interface KafkaAdmin {
  /** Creates the topics that do not exist (existing ones are left as they are). */
  ensureTopics(topics: readonly TopicSpec[]): Promise<void>;
  /** Partition count of a topic (0 when it does not exist). */
  partitions(topic: string): Promise<number>;
  /** Messages of `topic` not yet committed by `groupId`, summed over partitions (end - committed). */
  lag(groupId: string, topic: string): Promise<number>;
  close(): Promise<void>;
}

export interface KafkaClient {
  readonly kind: KafkaClientKind;
  producer(opts?: ProducerOptions): KafkaProducer;
  consumer(opts: GroupConsumerOptions): GroupConsumer;
  admin(): KafkaAdmin;
}

/** Both libraries are loaded on demand, so a process that never talks to Kafka loads neither. */
export async function createKafkaClient(opts: KafkaClientOptions): Promise<KafkaClient> {
  if (opts.client === 'kafkajs') {
    const { KafkajsClient } = await import('./kafkajs.ts');
    return new KafkajsClient(opts);
  }
  const { PlatformaticClient } = await import('./platformatic.ts');
  return new PlatformaticClient(opts);
}

/** Header values as strings, whatever shape the library gives them in. */
export function headerRecord(entries: Iterable<[unknown, unknown]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (k === null || k === undefined) continue;
    out[String(k)] = v === null || v === undefined ? '' : Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
  }
  return out;
}

/** Waits `ms`, or less when `signal` aborts first. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Resolves when `p` settles or at `deadlineMs`, whichever is first; true when `p` settled. */
export async function settledBy(p: Promise<unknown>, deadlineMs: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), Math.max(0, deadlineMs - Date.now()));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
