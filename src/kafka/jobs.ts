// The selection stage's next stage in scoring.mode kafka: each selected (trace, scorer version)
// job becomes a scorecar.v1.ScoringJob message on the jobs topic (key = the trace id, so a
// trace's jobs share a partition). Messages wait in the publisher's bounded buffer while the
// brokers are slow or away; a job that does not fit is refused (QUEUE_FULL) and counted, so the
// selection stage and the receivers before it never wait for Kafka.
import type { Component, Consumer } from '../component/index.ts';
import type { JobAdmission, SelectedJob } from '../select/index.ts';
import { type Logger, type MetricsRegistry, ScorecarError } from '../util/index.ts';
import type { KafkaProducer } from './client.ts';
import { encodeJob, JOB_SCHEMA_VERSION, jobMessage, SCHEMA_VERSION_HEADER } from './job.ts';
import { BufferedPublisher } from './publisher.ts';

export interface JobPublisherOptions {
  producer: KafkaProducer;
  topic: string;
  bufferBytes: number;
  batchBytes: number;
  retry: {
    initialIntervalMs: number;
    maxIntervalMs: number;
    multiplier: number;
    randomizationFactor: number;
  };
  metrics: MetricsRegistry;
  log: Logger;
  now?: () => number;
}

interface JobMeta {
  experiment: string;
  scorer: string;
}

export class JobPublisher implements Consumer<SelectedJob>, JobAdmission, Component {
  private readonly publisher: BufferedPublisher<JobMeta>;
  private readonly now: () => number;
  private readonly m;

  constructor(o: JobPublisherOptions) {
    this.now = o.now ?? Date.now;
    this.m = {
      published: o.metrics.counter(
        'scorecar_kafka_jobs_total',
        'Scoring jobs accepted for the jobs topic (buffered, then written)',
        ['experiment', 'scorer'],
      ),
      dropped: o.metrics.counter(
        'scorecar_kafka_jobs_dropped_total',
        'Scoring jobs not published, by reason (buffer_full: the brokers are slow or away; shutdown)',
        ['experiment', 'scorer', 'reason'],
      ),
    };
    this.publisher = new BufferedPublisher<JobMeta>({
      producer: o.producer,
      topic: o.topic,
      stream: 'jobs',
      maxBytes: o.bufferBytes,
      batchBytes: o.batchBytes,
      retry: o.retry,
      metrics: o.metrics,
      log: o.log,
      onDrop: (meta, reason) => this.m.dropped.inc({ ...meta, reason }),
    });
  }

  /** Bytes of encoded jobs waiting (counted in the memory budget). */
  get bufferedBytes(): number {
    return this.publisher.bufferedBytes;
  }

  get depth(): number {
    return this.publisher.depth;
  }

  start(): void {}

  consume(job: SelectedJob): void {
    const meta = { experiment: job.scorer.experimentId, scorer: job.scorer.name };
    const m = jobMessage(job, this.now());
    const taken = this.publisher.offer(
      {
        key: m.traceId,
        value: encodeJob(m),
        headers: { [SCHEMA_VERSION_HEADER]: String(JOB_SCHEMA_VERSION) },
      },
      meta,
    );
    if (!taken) {
      const closed = this.publisher.closed;
      this.m.dropped.inc({ ...meta, reason: closed ? 'shutdown' : 'buffer_full' });
      throw closed
        ? new ScorecarError('SHUTTING_DOWN', 'the Kafka jobs publisher is shut down')
        : new ScorecarError(
            'QUEUE_FULL',
            'the Kafka jobs buffer is full (the brokers are slow or unreachable)',
          );
    }
    this.m.published.inc(meta);
  }

  /** Refuses before views are built when the buffer is already full (selection-stage admission). */
  hasRoom(_jobs: number, _bytes: number): boolean {
    return this.publisher.hasRoom(0);
  }

  refuse(experimentId: string, scorer: string, reason: 'queue_full'): void {
    this.m.dropped.inc({
      experiment: experimentId,
      scorer,
      reason: reason === 'queue_full' ? 'buffer_full' : reason,
    });
  }

  whenDrained(): Promise<void> {
    return this.publisher.whenDrained();
  }

  shutdown(deadlineMs: number): Promise<void> {
    return this.publisher.shutdown(deadlineMs);
  }
}
