// Creates the topics scorecar writes to (kafka.createTopics) and learns the partition count the
// Collector-format span exporter hashes over — in the background, retrying, so that brokers
// that are away at start never delay or stop the data plane: writes wait in their bounded
// buffers meanwhile.
import type { Component } from '../component/index.ts';
import { errorFields, type Logger } from '../util/index.ts';
import { type KafkaClient, pause, type TopicSpec } from './client.ts';

export interface TopicSetupOptions {
  client: KafkaClient;
  /** Topics to create when missing (empty: create none). */
  create: readonly TopicSpec[];
  /** A topic whose partition count is wanted, and who wants it. */
  countPartitionsOf?: { topic: string; onCount: (partitions: number) => void } | undefined;
  log: Logger;
  retryMs?: number;
}

export class TopicSetup implements Component {
  private readonly o: TopicSetupOptions;
  private readonly stop = new AbortController();
  private running: Promise<void> | undefined;
  /** Resolves once the topics are set up (never rejects; it retries until shutdown). */
  ready: Promise<void> | undefined;

  constructor(o: TopicSetupOptions) {
    this.o = o;
  }

  start(): void {
    this.running ??= this.loop();
    this.ready = this.running;
  }

  private async loop(): Promise<void> {
    for (let attempt = 0; !this.stop.signal.aborted; attempt++) {
      const admin = this.o.client.admin();
      try {
        if (this.o.create.length > 0) await admin.ensureTopics(this.o.create);
        const c = this.o.countPartitionsOf;
        if (c) c.onCount(await admin.partitions(c.topic));
        if (attempt > 0)
          this.o.log.info('Kafka topics set up', { topics: this.o.create.map((t) => t.topic) });
        return;
      } catch (e) {
        if (attempt === 0) {
          this.o.log.warn('cannot set up the Kafka topics now; retrying (writes wait in their buffers)', {
            code: 'KAFKA_UNAVAILABLE',
            err: errorFields(e),
          });
        }
      } finally {
        await admin.close().catch(() => {});
      }
      await pause(this.o.retryMs ?? 2000, this.stop.signal);
    }
  }

  async shutdown(): Promise<void> {
    this.stop.abort();
    await this.running;
  }
}
