// Spans on Kafka in the OpenTelemetry Collector's format: what its `kafka` exporter writes with
// `encoding: otlp_proto` and `partition_traces_by_id: true` (facts in the Kafka notes; checked
// against messages recorded from the real exporter in test/fixtures/collector-kafka.json):
//   value     = an OTLP TracesData (the bytes of an ExportTraceServiceRequest), no framing;
//   one message per (trace, resource, scope): exactly one ResourceSpans holding one ScopeSpans
//             with that trace's spans of that scope (so a trace spans several messages, and
//             several batches: consumers reassemble);
//   key       = the trace id as 32 lowercase hex characters;
//   partition = abs(int32(fnv1a32(key)) % partitions), the Sarama-compatible hash;
//   headers   = none.
//
// CollectorSpanReceiver reads such a topic in a consumer group and feeds every message to the
// same ingest step as the OTLP receivers (forward + assemble), so spans from a Collector are
// forwarded and scored like any other. When the pipeline is full (export queue, memory budget)
// it stops reading and tries the same message again: Kafka holds the backlog, nothing is dropped.
// CollectorSpanExporter writes received spans in that same format, so a Collector (or another
// scorecar) can read what scorecar writes.
import type { Component, Consumer } from '../component/index.ts';
import { errorFields, isScorecarError, type Logger, type MetricsRegistry } from '../util/index.ts';
import {
  encodeSpans,
  type OtlpBatch,
  type ResourceRef,
  type ScopeRef,
  SPAN_STRIDE,
  spanTraceIdOffset,
} from '../wire/index.ts';
import { type GroupConsumer, type InMessage, type KafkaClient, type OutMessage, pause } from './client.ts';
import type { BufferedPublisher } from './publisher.ts';

/** FNV-1a, 32 bits. */
export function fnv1a32(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The partition the Collector's default (Sarama-compatible) partitioner picks for a key. */
export function saramaPartition(key: Uint8Array, partitions: number): number {
  // Go: int32(hash) % n keeps the sign of the dividend; abs() of the result.
  return Math.abs((fnv1a32(key) | 0) % partitions);
}

/** A message of the Collector's format, before it has a partition. */
export interface SpanMessage {
  /** 32 lowercase hex characters. */
  key: string;
  value: Buffer;
}

/**
 * Splits a scanned ExportTraceServiceRequest as the Collector's exporter does: one message per
 * (trace, resource, scope), in order of first appearance; spans without a valid trace id are
 * left out (the receivers refused them).
 */
export function splitTraces(batch: OtlpBatch): SpanMessage[] {
  const scan = batch.scan;
  const buf = batch.scanned;
  if (!scan || !buf) return [];
  const out: SpanMessage[] = [];
  const slice = (r: { start: number; end: number }): Uint8Array | null =>
    r.start < 0 ? null : buf.subarray(r.start, r.end);
  for (const rs of scan.resources) {
    const res: ResourceRef = {
      bytes: slice(rs.resource),
      schemaUrl: slice(rs.schemaUrl),
      experimentHeader: undefined,
    };
    for (const ss of rs.scopes) {
      const scope: ScopeRef = { bytes: slice(ss.scope), schemaUrl: slice(ss.schemaUrl) };
      const byTrace = new Map<string, Uint8Array[]>();
      const s = ss.spans;
      for (let i = 0; i < s.length; i += SPAN_STRIDE) {
        const t = spanTraceIdOffset(s, i);
        if (t < 0) continue;
        const id = Buffer.from(buf.buffer, buf.byteOffset + t, 16).toString('hex');
        let spans = byTrace.get(id);
        if (!spans) {
          spans = [];
          byTrace.set(id, spans);
        }
        spans.push(buf.subarray(s[i]!, s[i + 1]!));
      }
      for (const [id, spans] of byTrace) {
        out.push({
          key: id,
          value: encodeSpans(
            spans,
            spans.map(() => res),
            spans.map(() => scope),
          ),
        });
      }
    }
  }
  return out;
}

/** Where the receiver hands a message's bytes: the ingest step of the OTLP receivers. */
export interface SpanIngest {
  traces(
    body: Buffer,
    ctx: { transport: 'kafka'; experimentHeader: string | undefined },
  ): { accepted: number; rejected: number };
}

export interface CollectorSpanReceiverOptions {
  client: KafkaClient;
  topic: string;
  groupId: string;
  batchSize: number;
  sessionTimeoutMs: number;
  ingest: SpanIngest;
  /** Whether `bytes` more may be taken now (the memory budget). */
  fits: (bytes: number) => boolean;
  metrics: MetricsRegistry;
  log: Logger;
}

/** How long the receiver waits before trying a refused message again. */
const REFUSED_WAIT_MS = 200;

export class CollectorSpanReceiver implements Component {
  private readonly o: CollectorSpanReceiverOptions;
  private consumer: GroupConsumer | undefined;
  private readonly stop = new AbortController();
  private readonly m;

  constructor(o: CollectorSpanReceiverOptions) {
    this.o = o;
    this.m = {
      messages: o.metrics.counter(
        'scorecar_kafka_span_messages_total',
        'Span messages read from the Kafka receiver topic, by outcome (ok, invalid, empty)',
        ['outcome'],
      ),
      waits: o.metrics.counter(
        'scorecar_kafka_receiver_waits_total',
        'Times the Kafka receiver stopped reading because the pipeline was full (retried, not dropped)',
        ['reason'],
      ),
    };
  }

  start(): void {
    if (this.consumer) return;
    this.consumer = this.o.client.consumer({
      groupId: this.o.groupId,
      topics: [this.o.topic],
      maxBatch: this.o.batchSize,
      sessionTimeoutMs: this.o.sessionTimeoutMs,
    });
    void this.consumer.run((batch) => this.handle(batch));
  }

  private async handle(batch: readonly InMessage[]): Promise<void> {
    for (const m of batch) {
      if (!m.value || m.value.length === 0) {
        this.m.messages.inc({ outcome: 'empty' });
        continue;
      }
      for (;;) {
        if (this.stop.signal.aborted) throw new Error('the Kafka receiver is stopping');
        if (!this.o.fits(m.value.length)) {
          this.m.waits.inc({ reason: 'memory_budget_full' });
          await pause(REFUSED_WAIT_MS, this.stop.signal);
          continue;
        }
        try {
          this.o.ingest.traces(m.value, { transport: 'kafka', experimentHeader: undefined });
          this.m.messages.inc({ outcome: 'ok' });
          break;
        } catch (e) {
          if (isScorecarError(e) && e.retryable) {
            // The export queue or a stage is full: Kafka keeps the message until there is room.
            this.m.waits.inc({ reason: e.code.toLowerCase() });
            await pause(REFUSED_WAIT_MS, this.stop.signal);
            continue;
          }
          this.m.messages.inc({ outcome: 'invalid' });
          this.o.log.warn('skipping a span message that is not OTLP protobuf', {
            topic: m.topic,
            partition: m.partition,
            offset: String(m.offset),
            err: errorFields(e),
          });
          break;
        }
      }
    }
  }

  async shutdown(deadlineMs: number): Promise<void> {
    this.stop.abort();
    await this.consumer?.close(deadlineMs);
  }
}

export interface CollectorSpanExporterOptions {
  /** Built with `CollectorSpanExporter.placement(partitions)` as its atWrite. */
  publisher: BufferedPublisher;
  metrics: MetricsRegistry;
}

/** Writes every received span to Kafka in the Collector's format (a fan-out consumer of batches). */
export class CollectorSpanExporter implements Consumer<OtlpBatch>, Component {
  private readonly o: CollectorSpanExporterOptions;
  private readonly m;

  constructor(o: CollectorSpanExporterOptions) {
    this.o = o;
    this.m = {
      dropped: o.metrics.counter(
        'scorecar_kafka_span_messages_dropped_total',
        'Span messages not written to Kafka because its buffer was full',
      ),
    };
  }

  start(): void {}

  /**
   * The publisher's atWrite: each message's partition by the Collector's hash, once the topic's
   * partition count is known (`partitions()` is 0 until then, and messages wait).
   */
  static placement(partitions: () => number): (msg: OutMessage) => OutMessage | undefined {
    return (msg) => {
      const n = partitions();
      if (n <= 0) return undefined;
      return { ...msg, partition: saramaPartition(msg.key as Buffer, n) };
    };
  }

  /** Never refuses: a full buffer drops (and counts) rather than holding the receivers up. */
  consume(batch: OtlpBatch): void {
    if (batch.signal !== 'traces') return;
    for (const msg of splitTraces(batch)) {
      const out: OutMessage = { key: Buffer.from(msg.key), value: msg.value };
      if (!this.o.publisher.offer(out, undefined)) this.m.dropped.inc();
    }
  }

  shutdown(deadlineMs: number): Promise<void> {
    return this.o.publisher.shutdown(deadlineMs);
  }
}
