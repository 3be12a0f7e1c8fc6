// The assessments topic (default `scorecar.assessments`): a public contract. Key = the trace id
// (32 lowercase hex characters), value = the assessment as JSON, exactly the fields of the REST
// API and MLflow Feedback (README "Kafka"), header `scorecar.schema.version: 1` and
// `content-type: application/json`. Workers write it in kafka mode; a sidecar in inline mode
// writes it too with exporters.kafka.assessments; consumers cannot tell which mode scored.
//
// Extra headers carry what the emitter of a kafka-mode sidecar needs and the public JSON does
// not hold in typed form: `scorecar.usage` (judge usage, for budgets), `scorecar.started-ms`
// (the evaluation span's start) and `scorecar.aggregations` (a code scorer's aggregations).
//
// AssessmentFeed is that emitter's input: it reads the topic in a consumer group and hands each
// batch to the emitter, which drops assessments whose id the store already holds, so a message
// read twice (a worker that died after writing but before committing its jobs, a rebalance) is
// emitted once; offsets are committed only after the emitter wrote the batch.
import type { Assessment, EmitItem } from '../assessments/index.ts';
import type { Component, Consumer } from '../component/index.ts';
import { AGGREGATIONS, type Aggregation } from '../definitions/index.ts';
import { errorFields, type Logger, type MetricsRegistry, ScorecarError, type Usage } from '../util/index.ts';
import type { GroupConsumer, InMessage, KafkaClient, OutMessage } from './client.ts';
import { SCHEMA_VERSION_HEADER } from './job.ts';

export const ASSESSMENT_SCHEMA_VERSION = 1;
export const USAGE_HEADER = 'scorecar.usage';
export const STARTED_HEADER = 'scorecar.started-ms';
export const AGGREGATIONS_HEADER = 'scorecar.aggregations';

/** The message of one assessment (what a Kafka consumer of the topic reads). */
export function assessmentMessage(it: {
  assessment: Assessment;
  usage?: Usage | undefined;
  startedMs?: number;
  aggregations?: readonly Aggregation[] | undefined;
}): OutMessage {
  const headers: Record<string, string> = {
    [SCHEMA_VERSION_HEADER]: String(ASSESSMENT_SCHEMA_VERSION),
    'content-type': 'application/json',
  };
  if (it.usage) headers[USAGE_HEADER] = JSON.stringify(it.usage);
  if (it.startedMs !== undefined) headers[STARTED_HEADER] = String(it.startedMs);
  if (it.aggregations && it.aggregations.length > 0)
    headers[AGGREGATIONS_HEADER] = JSON.stringify(it.aggregations);
  return { key: it.assessment.traceId, value: Buffer.from(JSON.stringify(it.assessment)), headers };
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const bad = (why: string): ScorecarError =>
  new ScorecarError('INVALID_JOB', `not an assessment message: ${why}`);

/** The assessment (and its emitter extras) of a message; throws INVALID_JOB for anything else. */
export function emitItemOf(m: InMessage): EmitItem {
  const version = m.headers[SCHEMA_VERSION_HEADER];
  if (version !== undefined && version !== String(ASSESSMENT_SCHEMA_VERSION))
    throw bad(`schema version ${version}`);
  if (!m.value) throw bad('no value');
  let a: unknown;
  try {
    a = JSON.parse(m.value.toString('utf8'));
  } catch {
    throw bad('the value is not JSON');
  }
  if (!isObj(a)) throw bad('the value is not an object');
  for (const k of ['assessmentId', 'name', 'traceId', 'spanId', 'experimentId', 'createdAt'] as const) {
    if (typeof a[k] !== 'string') throw bad(`${k} is not a string`);
  }
  const scorer = a.scorer;
  const source = a.source;
  if (!isObj(scorer) || typeof scorer.name !== 'string' || typeof scorer.version !== 'number')
    throw bad('scorer is not {name, version}');
  if (
    !isObj(source) ||
    (source.type !== 'LLM_JUDGE' && source.type !== 'CODE') ||
    typeof source.id !== 'string'
  )
    throw bad('source is not {type, id}');
  if (!isObj(a.metadata) || typeof a.sampleRate !== 'number') throw bad('metadata or sampleRate is missing');
  const assessment = a as unknown as Assessment;
  const started = Number(m.headers[STARTED_HEADER]);
  const item: EmitItem = {
    assessment,
    startedMs: Number.isFinite(started) && started > 0 ? started : Date.parse(assessment.createdAt),
  };
  try {
    const u = m.headers[USAGE_HEADER];
    if (u) {
      const usage = JSON.parse(u) as Usage;
      if (typeof usage.inputTokens === 'number' && typeof usage.outputTokens === 'number') item.usage = usage;
    }
    const g = m.headers[AGGREGATIONS_HEADER];
    if (g) {
      const aggs = (JSON.parse(g) as unknown[]).filter((x): x is Aggregation =>
        (AGGREGATIONS as readonly unknown[]).includes(x),
      );
      if (aggs.length > 0) item.aggregations = aggs;
    }
  } catch {
    // The extras are optional: an assessment without them is still the assessment.
  }
  return item;
}

export interface AssessmentFeedOptions {
  client: KafkaClient;
  topic: string;
  groupId: string;
  batchSize: number;
  sessionTimeoutMs: number;
  /** The emitter: consume() takes a batch, flush() writes it (store, downstream) before the commit. */
  emitter: Consumer<readonly EmitItem[]> & { flush(): Promise<void> };
  metrics: MetricsRegistry;
  log: Logger;
}

/** Reads the assessments topic into the emitter (a kafka-mode sidecar's assessment input). */
export class AssessmentFeed implements Component {
  private readonly o: AssessmentFeedOptions;
  private consumer: GroupConsumer | undefined;
  private readonly m;

  constructor(o: AssessmentFeedOptions) {
    this.o = o;
    this.m = {
      read: o.metrics.counter(
        'scorecar_kafka_assessments_read_total',
        'Assessment messages read from the assessments topic and handed to the emitter',
      ),
      invalid: o.metrics.counter(
        'scorecar_kafka_invalid_messages_total',
        'Kafka messages skipped because they could not be read (INVALID_JOB), by topic',
        ['topic'],
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
    void this.consumer.run(async (batch) => this.handle(batch));
  }

  private async handle(batch: readonly InMessage[]): Promise<void> {
    const items: EmitItem[] = [];
    for (const m of batch) {
      try {
        items.push(emitItemOf(m));
      } catch (e) {
        this.m.invalid.inc({ topic: m.topic });
        this.o.log.warn('skipping an unreadable assessment message', {
          topic: m.topic,
          partition: m.partition,
          offset: String(m.offset),
          err: errorFields(e),
        });
      }
    }
    if (items.length > 0) {
      this.o.emitter.consume(items);
      // Written (stored, queued downstream) before the offsets are committed.
      await this.o.emitter.flush();
      this.m.read.inc(undefined, items.length);
    }
  }

  async shutdown(deadlineMs: number): Promise<void> {
    await this.consumer?.close(deadlineMs);
  }
}
