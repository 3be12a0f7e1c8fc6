// The Kafka pieces that need no broker: the job schema (round trip, and what a worker refuses),
// the assessment message contract, the Collector partitioner, the bounded publisher's
// accounting (against a producer that fails or succeeds on demand), and the config rules.
import { describe, expect, it } from 'vitest';
import type { Assessment } from '../../src/assessments/index.ts';
import { tracesFromRequest } from '../../src/assembly/index.ts';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import {
  assessmentMessage,
  BufferedPublisher,
  decodeJob,
  emitItemOf,
  encodeJob,
  fnv1a32,
  type InMessage,
  JOB_SCHEMA_VERSION,
  JobPublisher,
  jobId,
  jobMessage,
  type KafkaProducer,
  type OutMessage,
  saramaPartition,
  selectedJob,
} from '../../src/kafka/index.ts';
import type { SelectedJob } from '../../src/select/index.ts';
import { isScorecarError, MetricsRegistry, silentLogger } from '../../src/util/index.ts';
import { DEFAULT_VIEW_LIMITS } from '../../src/wire/index.ts';
import { makeTraces, requestOf } from '../support/kafka-traces.ts';
import { waitFor } from '../support/scorecar.ts';

const VIEW = {
  resolution: ['resource:service.name'],
  defaultExperiment: 'default',
  limits: DEFAULT_VIEW_LIMITS,
};

function selected(seed = 'unit'): SelectedJob {
  const [trace] = tracesFromRequest(requestOf('svc', makeTraces(1, seed)));
  return {
    view: undefined as never,
    scorer: {
      experimentId: 'exp-a',
      name: 'len',
      version: 3,
      definition: { type: 'code', source: '(ctx) => 1' },
    },
    sampleRate: 0.25,
    completion: 'idle',
    approxBytes: 0,
    trace: trace!,
  };
}

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isScorecarError(e)) return e.code;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('scorecar.v1.ScoringJob', () => {
  it('round-trips a job, and a worker rebuilds its view from the OTLP bytes under the sidecar experiment', () => {
    const m = jobMessage(selected(), 1234);
    const d = decodeJob(encodeJob(m));
    expect(d).toMatchObject({
      traceId: m.traceId,
      experimentId: 'exp-a',
      sampleRate: 0.25,
      completion: 'idle',
      selectedUnixMs: 1234,
    });
    expect(d.scorer).toEqual(m.scorer);
    expect(d.jobId).toBe(jobId(m.traceId, 'exp-a', 'len', 3));
    expect(Buffer.from(d.spans).equals(Buffer.from(m.spans))).toBe(true);
    const job = selectedJob(d, VIEW);
    // The bytes name service "svc"; the job's experiment is the sidecar's decision.
    expect(job.view.experimentId).toBe('exp-a');
    expect(job.view.traceId).toBe(m.traceId);
    expect(job.view.spans).toHaveLength(2);
    expect(job.view.outputs).toBe('WRONG answer 0');
  });

  it('refuses what a worker cannot run, with INVALID_JOB', () => {
    const good = jobMessage(selected(), 1);
    expect(refusal(() => decodeJob(Buffer.from('not protobuf at all \xff\xff')))).toBe('INVALID_JOB');
    expect(refusal(() => decodeJob(Buffer.from([0x08, JOB_SCHEMA_VERSION + 1])))).toBe('INVALID_JOB');
    const bad = (patch: Partial<typeof good>): string =>
      refusal(() => decodeJob(encodeJob({ ...good, ...patch })));
    expect(bad({ traceId: 'XYZ' })).toBe('INVALID_JOB');
    expect(bad({ completion: 'later' as never })).toBe('INVALID_JOB');
    expect(bad({ sampleRate: 0 })).toBe('INVALID_JOB');
    expect(bad({ scorer: { ...good.scorer, definition: { type: 'nope' } as never } })).toBe('INVALID_JOB');
    // Spans of another trace only.
    const other = jobMessage(selected('other'), 1);
    expect(refusal(() => selectedJob(decodeJob(encodeJob({ ...good, spans: other.spans })), VIEW))).toBe(
      'INVALID_JOB',
    );
    // A job must carry its trace to be published.
    expect(refusal(() => jobMessage({ ...selected(), trace: undefined }, 1))).toBe('INTERNAL');
  });
});

describe('the assessments topic contract', () => {
  const a: Assessment = {
    assessmentId: 'a-1',
    name: 'len',
    traceId: 'ab'.repeat(16),
    spanId: 'cd'.repeat(8),
    experimentId: 'exp',
    scorer: { name: 'len', version: 2 },
    source: { type: 'LLM_JUDGE', id: 'openai:/m' },
    value: 'yes',
    rationale: 'because',
    metadata: { 'scorecar.label': 'yes' },
    sampleRate: 0.5,
    createdAt: '2026-11-30T00:00:00.000Z',
  };
  const asIn = (m: OutMessage): InMessage => ({
    topic: 't',
    partition: 0,
    offset: 0n,
    key: Buffer.from(String(m.key)),
    value: m.value,
    headers: { ...(m.headers ?? {}) },
    timestampMs: 0,
  });

  it('is the assessment JSON keyed by trace id, with its schema version; the emitter extras ride in headers', () => {
    const m = assessmentMessage({
      assessment: a,
      usage: { inputTokens: 5, outputTokens: 2, attempts: 1 },
      startedMs: 77,
      aggregations: ['mean'],
    });
    expect(m.key).toBe(a.traceId);
    expect(JSON.parse(m.value.toString())).toEqual(a);
    expect(m.headers).toMatchObject({ 'scorecar.schema.version': '1', 'content-type': 'application/json' });
    expect(emitItemOf(asIn(m))).toEqual({
      assessment: a,
      usage: { inputTokens: 5, outputTokens: 2, attempts: 1 },
      startedMs: 77,
      aggregations: ['mean'],
    });
    // Without extras (what inline mode writes), the evaluation span starts at createdAt.
    expect(emitItemOf(asIn(assessmentMessage({ assessment: a })))).toEqual({
      assessment: a,
      startedMs: Date.parse(a.createdAt),
    });
  });

  it('refuses messages that are not assessments', () => {
    const base = asIn(assessmentMessage({ assessment: a }));
    expect(refusal(() => emitItemOf({ ...base, value: Buffer.from('{') }))).toBe('INVALID_JOB');
    expect(refusal(() => emitItemOf({ ...base, value: null }))).toBe('INVALID_JOB');
    expect(refusal(() => emitItemOf({ ...base, headers: { 'scorecar.schema.version': '9' } }))).toBe(
      'INVALID_JOB',
    );
    expect(
      refusal(() => emitItemOf({ ...base, value: Buffer.from(JSON.stringify({ ...a, scorer: 'len' })) })),
    ).toBe('INVALID_JOB');
    expect(
      refusal(() =>
        emitItemOf({
          ...base,
          value: Buffer.from(JSON.stringify({ ...a, source: { type: 'HUMAN', id: 'x' } })),
        }),
      ),
    ).toBe('INVALID_JOB');
    expect(refusal(() => emitItemOf({ ...base, value: Buffer.from('[1]') }))).toBe('INVALID_JOB');
  });
});

describe('the Collector partitioner', () => {
  it('is FNV-1a 32 with Sarama signed modulo', () => {
    expect(fnv1a32(new Uint8Array())).toBe(0x811c9dc5);
    expect(fnv1a32(Buffer.from('a'))).toBe(0xe40c292c);
    expect(fnv1a32(Buffer.from('foobar'))).toBe(0xbf9cf968);
    // 0xbf9cf968 is negative as int32: Go's % keeps the sign, abs() makes it a partition.
    expect(saramaPartition(Buffer.from('foobar'), 7)).toBe(Math.abs((0xbf9cf968 | 0) % 7));
    for (let i = 0; i < 200; i++) {
      const p = saramaPartition(Buffer.from(`key-${i}`), 5);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(5);
    }
  });
});

/** A producer that fails while `down` and records what it was sent. */
class TestProducer implements KafkaProducer {
  down = false;
  sent: OutMessage[] = [];
  closed = false;
  async send(_topic: string, messages: readonly OutMessage[]): Promise<void> {
    if (this.down) throw new Error('broker away');
    this.sent.push(...messages);
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

const RETRY = { initialIntervalMs: 5, maxIntervalMs: 20, multiplier: 1.5, randomizationFactor: 0 };

describe('BufferedPublisher', () => {
  it('holds messages while writes fail, bounded; drops and counts the rest; writes them in order once it can', async () => {
    const producer = new TestProducer();
    producer.down = true;
    const metrics = new MetricsRegistry();
    const dropped: string[] = [];
    const pub = new BufferedPublisher<string>({
      producer,
      topic: 't',
      stream: 'jobs',
      maxBytes: 1000,
      batchBytes: 300,
      retry: RETRY,
      metrics,
      log: silentLogger,
      onDrop: (m) => dropped.push(m),
    });
    const msg = (i: number): OutMessage => ({ key: null, value: Buffer.alloc(100, i) });
    let taken = 0;
    for (let i = 0; i < 20; i++) if (pub.offer(msg(i), `m${i}`)) taken++;
    expect(taken).toBe(6); // 6 x (100 + 64) bytes fit in 1000
    expect(pub.bufferedBytes).toBeLessThanOrEqual(1000);
    await waitFor(
      () => /scorecar_kafka_write_retries_total\{stream="jobs"\} [1-9]/.test(metrics.render()),
      5000,
      'a retry',
    );
    producer.down = false;
    await pub.whenDrained();
    expect(producer.sent.map((m) => m.value[0])).toEqual([0, 1, 2, 3, 4, 5]);
    expect(metrics.render()).toContain('scorecar_kafka_dropped_total{stream="jobs",reason="buffer_full"} 14');
    expect(metrics.render()).toContain('scorecar_kafka_written_total{stream="jobs"} 6');
    // Shutdown with the broker away: what is buffered is dropped at the deadline and counted.
    producer.down = true;
    pub.offer(msg(99), 'last');
    await pub.shutdown(Date.now() + 50);
    expect(dropped).toEqual(['last']);
    expect(pub.offer(msg(100), 'after')).toBe(false);
    expect(producer.closed).toBe(true);
    expect(metrics.render()).toContain('scorecar_kafka_dropped_total{stream="jobs",reason="shutdown"} 2');
  });

  it('waits to write until atWrite can place the messages', async () => {
    const producer = new TestProducer();
    let n = 0;
    const pub = new BufferedPublisher({
      producer,
      topic: 't',
      stream: 'spans',
      maxBytes: 10_000,
      batchBytes: 10_000,
      retry: RETRY,
      metrics: new MetricsRegistry(),
      log: silentLogger,
      atWrite: (m) => (n > 0 ? { ...m, partition: n } : undefined),
    });
    pub.offer({ key: 'k', value: Buffer.from('v') }, undefined);
    await new Promise((r) => setTimeout(r, 150));
    expect(producer.sent).toHaveLength(0);
    n = 3;
    await pub.whenDrained();
    expect(producer.sent[0]!.partition).toBe(3);
    await pub.shutdown(Date.now());
  });

  it('JobPublisher refuses with QUEUE_FULL once its buffer is full, counting per scorer', async () => {
    const producer = new TestProducer();
    producer.down = true;
    const metrics = new MetricsRegistry();
    const jobs = new JobPublisher({
      producer,
      topic: 'jobs',
      bufferBytes: 1,
      batchBytes: 1000,
      retry: RETRY,
      metrics,
      log: silentLogger,
    });
    jobs.consume(selected('a')); // the first always fits
    expect(jobs.hasRoom(1, 1)).toBe(false);
    expect(refusal(() => jobs.consume(selected('b')))).toBe('QUEUE_FULL');
    jobs.refuse('exp-a', 'len', 'queue_full');
    expect(metrics.render()).toContain(
      'scorecar_kafka_jobs_dropped_total{experiment="exp-a",scorer="len",reason="buffer_full"} 2',
    );
    await jobs.shutdown(Date.now());
    expect(refusal(() => jobs.consume(selected('c')))).toBe('SHUTTING_DOWN');
    expect(metrics.render()).toContain(
      'scorecar_kafka_jobs_dropped_total{experiment="exp-a",scorer="len",reason="shutdown"} 2',
    );
  });
});

describe('kafka config', () => {
  const issues = (text: string): string[] => {
    try {
      loadConfig({ text, env: {} });
    } catch (e) {
      if (e instanceof ConfigError) return e.issues.map((i) => i.path);
      throw e;
    }
    return [];
  };

  it('needs brokers for what uses Kafka, and refuses a span loop, each at its key path', () => {
    expect(issues('scoring: {mode: kafka}')).toEqual(['scoring.mode']);
    expect(issues('exporters: {kafka: {assessments: true}}')).toEqual(['exporters.kafka.assessments']);
    expect(
      issues('receivers: {kafka: {enabled: true}}\nexporters: {kafka: {spans: {enabled: true}}}\n').sort(),
    ).toEqual(
      ['exporters.kafka.spans.enabled', 'exporters.kafka.spans.topic', 'receivers.kafka.enabled'].sort(),
    );
    expect(
      issues('kafka: {brokers: ["nohost"], client: rdkafka, topics: {jobs: {name: "a b"}}}').sort(),
    ).toEqual(['kafka.brokers.0', 'kafka.client', 'kafka.topics.jobs.name'].sort());
    expect(issues('scoring: {mode: kafka}\nkafka: {brokers: ["127.0.0.1:9092"]}')).toEqual([]);
  });
});
