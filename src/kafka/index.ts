// Kafka: the client module (one small interface over @platformatic/kafka or kafkajs), the
// scoring-job and assessment topics, the `scorecar worker`, and the Collector-compatible span
// receiver and exporter.
export {
  type BatchHandler,
  COMPRESSIONS,
  type Compression,
  createKafkaClient,
  type GroupConsumer,
  type GroupConsumerOptions,
  type InMessage,
  type KafkaAdmin,
  type KafkaClient,
  type KafkaClientKind,
  type KafkaClientOptions,
  type KafkaProducer,
  type OutMessage,
  type ProducerOptions,
  type TopicSpec,
} from './client.ts';
export {
  AGGREGATIONS_HEADER,
  ASSESSMENT_SCHEMA_VERSION,
  AssessmentFeed,
  type AssessmentFeedOptions,
  assessmentMessage,
  emitItemOf,
  STARTED_HEADER,
  USAGE_HEADER,
} from './assessments.ts';
export {
  decodeJob,
  encodeJob,
  JOB_SCHEMA_VERSION,
  type JobMessage,
  jobId,
  jobMessage,
  SCHEMA_VERSION_HEADER,
  selectedJob,
  type ViewSettings,
} from './job.ts';
export { JobPublisher, type JobPublisherOptions } from './jobs.ts';
export { BufferedPublisher, type PublisherOptions } from './publisher.ts';
export { ScoringWorker, type WorkerOptions } from './worker.ts';
export {
  CollectorSpanExporter,
  type CollectorSpanExporterOptions,
  CollectorSpanReceiver,
  type CollectorSpanReceiverOptions,
  fnv1a32,
  type SpanIngest,
  type SpanMessage,
  saramaPartition,
  splitTraces,
} from './spans.ts';
export { TopicSetup, type TopicSetupOptions } from './topics.ts';
