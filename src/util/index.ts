export { type ErrorCode, errorMessage, isScorecarError, ScorecarError } from './errors.ts';
export { createLogger, type Logger, type LoggerOptions, type LogLevel, silentLogger } from './log.ts';
export { CallbackCounter, Counter, Gauge, Histogram, MetricsRegistry, PROMETHEUS_CONTENT_TYPE } from './metrics.ts';
export { type BackoffPolicy, backoffInterval, jitteredInterval, parseRetryAfter } from './retry.ts';
