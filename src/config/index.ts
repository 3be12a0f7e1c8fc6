export { ConfigError, type ConfigIssue, type LoadOptions, loadConfig } from './load.ts';
export {
  type ArchiveConfig,
  type BackfillConfig,
  type Config,
  configSchema,
  type ExporterConfig,
  type KafkaConfig,
  type MlflowConfig,
  type MlflowExporterConfig,
  type RetryConfig,
  type ScorerEntry,
  type ServerTlsConfig,
} from './schema.ts';
