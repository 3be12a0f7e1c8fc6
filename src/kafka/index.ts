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
