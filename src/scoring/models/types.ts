// Options and reports of the judge model client. They mirror the config keys under `scoring.*`
// (src/config/schema.ts); everything has a default so tests pass only what they exercise.
import type { Clock, Logger, Usage } from '../../util/index.ts';

/** Per-vendor provider settings: `scoring.providers.{openai,anthropic,databricks}`. */
export interface ProviderOptions {
  /** Overrides the vendor's environment variable (OPENAI_BASE_URL, ANTHROPIC_BASE_URL, DATABRICKS_HOST). */
  baseUrl?: string;
  /** Overrides OPENAI_API_KEY / ANTHROPIC_API_KEY / DATABRICKS_TOKEN. */
  apiKey?: string;
  /** Requests in flight to one endpoint of this provider at once (default `scoring.concurrency`). */
  concurrency?: number;
}

/** `scoring.retry`: exponential backoff with jitter, as the OTLP exporters use it. */
export interface RetryPolicy {
  initialIntervalMs: number;
  maxIntervalMs: number;
  /** Give up once this much time has passed since the first attempt; 0 = one attempt only. */
  maxElapsedMs: number;
  multiplier: number;
  /** Each wait is drawn uniformly from [1 - r, 1 + r] times the nominal interval. */
  randomizationFactor: number;
}

/** `scoring.prices[modelUri]`: USD (or any currency) per million tokens. */
export interface ModelPrice {
  inputPerMillionTokens: number;
  outputPerMillionTokens: number;
}

/** What every model call reports (for metrics and budgets), success or not. */
export interface ModelCallInfo {
  modelUri: string;
  /** Endpoint key the concurrency limit applies to (base URL or serving endpoint URL). */
  endpoint: string;
  ok: boolean;
  /** Stable error code when ok is false (UNAUTHENTICATED, RATE_LIMITED, TIMEOUT, ...). */
  errorCode?: string;
  /** HTTP status of the last attempt, 0 when no response arrived. */
  status: number;
  attempts: number;
  latencyMs: number;
  inputTokens: number;
  outputTokens: number;
  /** Undefined when the price table has no entry for the model. */
  cost?: number;
}

/** What a judge sends: the grading question (system) and the material (user). */
export interface ModelRequest {
  system: string;
  user: string;
}

/** A model's answer and what it cost. */
export interface ModelCompletion extends Usage {
  text: string;
}

export interface ModelClientOptions {
  /** Per-attempt timeout of a model call (`scoring.timeoutMs`). */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Default concurrency per provider endpoint (`scoring.concurrency`). */
  concurrency?: number;
  providers?: {
    openai?: ProviderOptions;
    anthropic?: ProviderOptions;
    databricks?: ProviderOptions;
  };
  /** Keyed by model URI (`scoring.prices`). */
  prices?: Record<string, ModelPrice>;
  /** Environment for credentials and endpoints (default process.env). */
  env?: Record<string, string | undefined>;
  fetch?: typeof fetch;
  clock?: Clock;
  /** Jitter source in [0, 1) (default Math.random). */
  random?: () => number;
  logger?: Logger;
  /** Called once per model call (after its retries), for metrics and budgets. */
  onModelCall?: (info: ModelCallInfo) => void;
}

export const MODEL_DEFAULTS = {
  timeoutMs: 60_000,
  concurrency: 8,
  retry: {
    initialIntervalMs: 1000,
    maxIntervalMs: 30_000,
    maxElapsedMs: 120_000,
    multiplier: 1.5,
    randomizationFactor: 0.5,
  },
} as const;
