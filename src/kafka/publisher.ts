// A bounded, never-blocking way onto a topic: messages wait in a buffer of at most `maxBytes`
// (counted in the memory budget by whoever owns it) and one write at a time takes them to the
// brokers, in order. A write that fails (the broker unreachable, restarting, refusing) is
// retried with backoff and jitter, forever: the buffer is the bound, not the number of tries.
// When the buffer is full, offer() says no and the caller counts the drop — a receiver or the
// selection stage is never made to wait for Kafka. At shutdown, what is still buffered at the
// deadline is dropped and counted.
import type { Component } from '../component/index.ts';
import {
  type BackoffPolicy,
  errorFields,
  jitteredInterval,
  type Logger,
  type MetricsRegistry,
} from '../util/index.ts';
import { type KafkaProducer, type OutMessage, pause } from './client.ts';

export interface PublisherOptions<M> {
  producer: KafkaProducer;
  topic: string;
  /** `stream` label of the metrics: jobs, assessments, spans. */
  stream: string;
  maxBytes: number;
  /** Largest write, in message bytes (at least one message is always written). */
  batchBytes: number;
  retry: BackoffPolicy;
  metrics: MetricsRegistry;
  log: Logger;
  /** Told about each message dropped after it was accepted (shutdown), with what it was offered with. */
  onDrop?: (meta: M, reason: 'shutdown') => void;
  /**
   * Messages as they are written, for what is only known later than the offer: the Collector
   * format's partition needs the topic's partition count. Returns undefined while it cannot tell
   * yet; the writer then waits and asks again.
   */
  atWrite?: (msg: OutMessage) => OutMessage | undefined;
}

/** How long the writer waits when atWrite cannot place a message yet. */
const NOT_READY_MS = 100;

interface Entry<M> {
  msg: OutMessage;
  bytes: number;
  meta: M;
}

export class BufferedPublisher<M = undefined> implements Component {
  private readonly o: PublisherOptions<M>;
  private queue: Entry<M>[] = [];
  private head = 0;
  private bytes = 0;
  private writing = false;
  private isClosed = false;
  private failures = 0;
  private readonly stop = new AbortController();
  private idle: Array<() => void> = [];
  private readonly m;
  private readonly labels: { stream: string };

  constructor(o: PublisherOptions<M>) {
    this.o = o;
    this.labels = { stream: o.stream };
    const mr = o.metrics;
    this.m = {
      written: mr.counter(
        'scorecar_kafka_written_total',
        'Messages written to Kafka (acknowledged by the brokers), by stream',
        ['stream'],
      ),
      dropped: mr.counter(
        'scorecar_kafka_dropped_total',
        'Messages not written to Kafka, by stream and reason (buffer_full, shutdown)',
        ['stream', 'reason'],
      ),
      retries: mr.counter(
        'scorecar_kafka_write_retries_total',
        'Kafka writes retried after a failure, by stream',
        ['stream'],
      ),
      bufferBytes: mr.gauge(
        'scorecar_kafka_buffer_bytes',
        'Bytes of messages waiting to be written to Kafka, by stream',
        ['stream'],
      ),
      bufferMessages: mr.gauge(
        'scorecar_kafka_buffer_messages',
        'Messages waiting to be written to Kafka, by stream',
        ['stream'],
      ),
    };
    this.gauges();
  }

  /** Bytes waiting (for the memory budget). */
  get bufferedBytes(): number {
    return this.bytes;
  }

  get depth(): number {
    return this.queue.length - this.head;
  }

  /** Shut down: takes nothing more. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** Whether `bytes` more would fit now. */
  hasRoom(bytes = 0): boolean {
    return !this.isClosed && this.bytes + bytes <= this.o.maxBytes;
  }

  start(): void {}

  /**
   * Takes a message unless the buffer is full or the publisher is closed; false = not taken
   * (counted here as buffer_full or shutdown; the caller counts its own item).
   */
  offer(msg: OutMessage, meta: M): boolean {
    const bytes =
      msg.value.length + (typeof msg.key === 'string' ? msg.key.length : (msg.key?.length ?? 0)) + 64;
    if (this.isClosed) {
      this.m.dropped.inc({ ...this.labels, reason: 'shutdown' });
      return false;
    }
    // One message larger than the whole buffer still goes when the buffer is empty.
    if (this.bytes + bytes > this.o.maxBytes && this.depth > 0) {
      this.m.dropped.inc({ ...this.labels, reason: 'buffer_full' });
      return false;
    }
    this.queue.push({ msg, bytes, meta });
    this.bytes += bytes;
    this.gauges();
    this.kick();
    return true;
  }

  private gauges(): void {
    this.m.bufferBytes.set(this.bytes, this.labels);
    this.m.bufferMessages.set(this.depth, this.labels);
  }

  private kick(): void {
    if (this.writing || this.depth === 0 || this.stop.signal.aborted) return;
    this.writing = true;
    void this.write().finally(() => {
      this.writing = false;
      if (this.depth > 0 && !this.stop.signal.aborted) this.kick();
      else this.maybeIdle();
    });
  }

  private async write(): Promise<void> {
    while (this.depth > 0 && !this.stop.signal.aborted) {
      const batch: Entry<M>[] = [];
      let size = 0;
      for (let i = this.head; i < this.queue.length; i++) {
        const e = this.queue[i]!;
        if (batch.length > 0 && size + e.bytes > this.o.batchBytes) break;
        batch.push(e);
        size += e.bytes;
      }
      let msgs = batch.map((e) => e.msg);
      const atWrite = this.o.atWrite;
      if (atWrite) {
        const placed = msgs.map((m) => atWrite(m));
        if (placed.some((m) => m === undefined)) {
          await pause(NOT_READY_MS, this.stop.signal);
          continue;
        }
        msgs = placed as OutMessage[];
      }
      try {
        await this.o.producer.send(this.o.topic, msgs);
      } catch (e) {
        if (this.failures === 0) {
          this.o.log.warn('cannot write to Kafka; retrying (messages wait in the bounded buffer)', {
            topic: this.o.topic,
            buffered: this.depth,
            code: 'KAFKA_UNAVAILABLE',
            err: errorFields(e),
          });
        }
        this.m.retries.inc(this.labels);
        await pause(jitteredInterval(this.o.retry, Math.min(this.failures++, 30)), this.stop.signal);
        continue;
      }
      // Shutdown gave up on the buffer meanwhile (and counted it): nothing to take off.
      if (this.stop.signal.aborted) return;
      if (this.failures > 0)
        this.o.log.info('writing to Kafka again', { topic: this.o.topic, after: this.failures });
      this.failures = 0;
      for (const e of batch) {
        this.queue[this.head++] = undefined as unknown as Entry<M>;
        this.bytes -= e.bytes;
      }
      if (this.head >= this.queue.length) {
        this.queue = [];
        this.head = 0;
      } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      this.m.written.inc(this.labels, batch.length);
      this.gauges();
    }
  }

  private maybeIdle(): void {
    if (this.depth > 0 || this.writing) return;
    const w = this.idle;
    this.idle = [];
    for (const f of w) f();
  }

  /** Resolves once everything offered so far is written. */
  whenDrained(): Promise<void> {
    if (this.depth === 0 && !this.writing) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  /** Stops taking messages, writes what is buffered until the deadline, drops (and counts) the rest. */
  async shutdown(deadlineMs: number): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.whenDrained(),
      new Promise<void>((r) => {
        timer = setTimeout(r, Math.max(0, deadlineMs - Date.now()));
      }),
    ]);
    clearTimeout(timer);
    this.stop.abort();
    // A write still in flight either lands (counted written) or not; its messages are dropped here.
    const left = this.queue.slice(this.head);
    if (left.length > 0) {
      this.o.log.warn('Kafka messages not written before the shutdown deadline', {
        topic: this.o.topic,
        count: left.length,
      });
      this.m.dropped.inc({ ...this.labels, reason: 'shutdown' }, left.length);
      for (const e of left) this.o.onDrop?.(e.meta, 'shutdown');
    }
    this.queue = [];
    this.head = 0;
    this.bytes = 0;
    this.gauges();
    await this.o.producer.close().catch(() => {});
  }
}
