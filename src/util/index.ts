// Shared pieces every folder may use: the error table, logging, metrics, retry timing, clocks,
// and the server-side TLS of the receivers and the admin port.
export { type Clock, realClock } from './clock.ts';
export {
  ERROR_CODES,
  type ErrorCode,
  type ErrorSpec,
  ERRORS,
  errorFields,
  errorMessage,
  GRPC,
  grpcStatusOf,
  httpStatusOf,
  isErrorCode,
  isScorecarError,
  mlflowErrorOf,
  receiverStatus,
  ScorecarError,
  type Usage,
} from './errors.ts';
export { createLogger, type Logger, type LoggerOptions, type LogLevel, silentLogger } from './log.ts';
export { CallbackCounter, Counter, Gauge, Histogram, MetricsRegistry, PROMETHEUS_CONTENT_TYPE } from './metrics.ts';
export { type BackoffPolicy, backoffInterval, jitteredInterval, parseRetryAfter } from './retry.ts';
export {
  checkTlsMaterial,
  type ReloadResult,
  readTlsFilesSync,
  ServerTls,
  type ServerTlsOptions,
  type ServerTlsSettings,
  type TlsIssue,
  type TlsMaterial,
  tlsError,
} from './tls.ts';
