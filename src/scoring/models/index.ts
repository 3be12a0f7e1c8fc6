// Judge model providers: MLflow-style model URIs resolved to OpenAI, Anthropic and Databricks
// endpoints (or any OpenAI-compatible server), retried with backoff and jitter, bounded per
// endpoint, with token usage and cost read from every answer.
export { createModelClient, type ModelClient, type ModelCompletion, resolveRetryPolicy } from './providers.ts';
export { nextDelay, Semaphore, sleep } from './retry.ts';
export {
  MODEL_DEFAULTS,
  type ModelCallInfo,
  type ModelClientOptions,
  type ModelPrice,
  type ModelRequest,
  type ProviderOptions,
  type RetryPolicy,
} from './types.ts';
