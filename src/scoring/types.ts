// Options and shared types of the scoring module. The options object mirrors the config keys
// under `scoring.*` (src/config/schema.ts) so the engine can pass `config.scoring` straight in;
// everything has a default so tests can pass only what they exercise.
import type { Logger } from '../util/index.ts';

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

/** Time source and timers, injectable so tests can drive retries with fake timers. */
export interface Clock {
  now(): number;
  /** Calls fn after ms; returns a function that cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
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

export interface SandboxOptions {
  /** CPU-time budget of one code-scorer call (interrupt handler deadline). */
  timeoutMs?: number;
  /** Heap limit of the scorer's JavaScript runtime. */
  memoryBytes?: number;
  /** Worker threads in the pool (default 2). */
  workers?: number;
  /**
   * A worker that has not answered this long after a job started is terminated and replaced
   * (default 2 * timeoutMs + 1000): the backstop when the interrupt handler cannot fire.
   */
  hardDeadlineMs?: number;
  /** Largest JSON a scorer may return (default 1 MiB). */
  maxResultBytes?: number;
}

export interface ScoringOptions {
  /** Judge model when a definition names none (`scoring.defaultModel`). */
  defaultModel?: string;
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
  sandbox?: SandboxOptions;
  /** Longest rendering of any one value (inputs, outputs, a document) put into a judge prompt. */
  maxValueChars?: number;
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

/** Stable error codes carried by error assessments (`assessment.error.code`). */
export type ScoringErrorCode =
  | 'UNAUTHENTICATED'
  | 'RATE_LIMITED'
  | 'PROVIDER_UNAVAILABLE'
  | 'PROVIDER_REJECTED'
  | 'PROVIDER_BAD_RESPONSE'
  | 'PROVIDER_NOT_CONFIGURED'
  | 'TIMEOUT'
  | 'JUDGE_PARSE_ERROR'
  | 'JUDGE_INVALID_RESPONSE'
  | 'MISSING_INPUT'
  | 'MISSING_EXPECTATIONS'
  | 'INVALID_DEFINITION'
  | 'CODE_SCORER_ERROR'
  | 'CODE_SCORER_INVALID_RESULT'
  | 'OUT_OF_MEMORY'
  | 'SANDBOX_CRASHED'
  | 'INTERNAL';

/** An error that becomes an error assessment (never escapes `run`). */
export class ScoringError extends Error {
  readonly code: ScoringErrorCode;
  /** Whether a later attempt may succeed (the engine may use it to re-queue). */
  readonly retryable: boolean;
  /** Token usage already consumed when the error happened (e.g. an unparseable answer). */
  readonly usage: { inputTokens: number; outputTokens: number; cost?: number; attempts: number } | undefined;

  constructor(
    code: ScoringErrorCode,
    message: string,
    opts: {
      retryable?: boolean;
      cause?: unknown;
      usage?: { inputTokens: number; outputTokens: number; cost?: number; attempts: number };
    } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ScoringError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.usage = opts.usage;
  }
}

export const DEFAULT_SCORING = {
  defaultModel: 'openai:/gpt-4.1-mini',
  timeoutMs: 60_000,
  concurrency: 8,
  retry: {
    initialIntervalMs: 1000,
    maxIntervalMs: 30_000,
    maxElapsedMs: 120_000,
    multiplier: 1.5,
    randomizationFactor: 0.5,
  },
  sandbox: { timeoutMs: 1000, memoryBytes: 64 * 1024 * 1024, workers: 2, maxResultBytes: 1024 * 1024 },
  maxValueChars: 20_000,
} as const;

export const realClock: Clock = {
  now: () => Date.now(),
  // Globals are looked up at call time, so vi.useFakeTimers() also drives the default clock.
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};
