// Every error scorecar reports has a stable code from the one table below: what it means,
// whether a retry can help, and the status it maps to on HTTP (receivers and admin API) and on
// gRPC (receivers). Both receivers, the admin API, the SDK and error assessments read this table;
// nothing else maps codes to statuses, and code never switches on message text. docs/errors.md
// documents every code (test/unit/errors.test.ts checks that it does).
//
// Modelled on platformatic/kafka's and undici's error modules (a code and a retryable flag on
// every error) and on the OTLP spec's status rules (retryable: 429, 502, 503, 504 / UNAVAILABLE,
// RESOURCE_EXHAUSTED only with RetryInfo).

/** gRPC status codes (google.rpc.Code). */
export const GRPC = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export interface ErrorSpec {
  /** Whether the same request or job may succeed later. */
  readonly retryable: boolean;
  readonly http: number;
  readonly grpc: number;
  /** Where it comes from: a request refused, the capacity of the pipeline, a scorer's run. */
  readonly kind: 'request' | 'capacity' | 'config' | 'downstream' | 'scorer';
  readonly summary: string;
}

const e = (kind: ErrorSpec['kind'], http: number, grpc: number, retryable: boolean, summary: string): ErrorSpec => ({
  kind,
  http,
  grpc,
  retryable,
  summary,
});

/** The closed list of error codes. */
export const ERRORS = {
  // A request that will never be accepted as it is.
  INVALID_ARGUMENT: e('request', 400, GRPC.INVALID_ARGUMENT, false, 'A parameter, field or value is invalid.'),
  INVALID_PROTOBUF: e('request', 400, GRPC.INVALID_ARGUMENT, false, 'An OTLP body is not a valid protobuf message.'),
  INVALID_JSON: e('request', 400, GRPC.INVALID_ARGUMENT, false, 'A body is not valid JSON, or not OTLP/JSON.'),
  UNSUPPORTED_MEDIA_TYPE: e('request', 415, GRPC.INVALID_ARGUMENT, false, 'Unknown content type or content encoding.'),
  METHOD_NOT_ALLOWED: e('request', 405, GRPC.UNIMPLEMENTED, false, 'The method is not allowed on this path.'),
  PAYLOAD_TOO_LARGE: e('request', 413, GRPC.RESOURCE_EXHAUSTED, false, 'A body is over the size limit (after decompression).'),
  // 408 has no row in gRPC's HTTP-to-gRPC status mapping, which makes it UNKNOWN.
  REQUEST_TIMEOUT: e('request', 408, GRPC.UNKNOWN, false, 'A request body did not arrive in full within the request timeout.'),
  NOT_FOUND: e('request', 404, GRPC.NOT_FOUND, false, 'No such endpoint, experiment, scorer, version or trace.'),
  ALREADY_EXISTS: e('request', 409, GRPC.ALREADY_EXISTS, false, 'The resource exists already.'),
  LIMIT_EXCEEDED: e('request', 409, GRPC.FAILED_PRECONDITION, false, 'A count limit is reached (e.g. the 21st scorer name of an experiment).'),
  FAILED_PRECONDITION: e('request', 409, GRPC.FAILED_PRECONDITION, false, 'The resource is not in a state that allows the call.'),
  UNAUTHENTICATED: e('request', 401, GRPC.UNAUTHENTICATED, false, 'Missing or wrong credentials (admin token, or a judge provider refused ours).'),
  PERMISSION_DENIED: e('request', 403, GRPC.PERMISSION_DENIED, false, 'The credentials do not allow the call.'),
  HOST_NOT_ALLOWED: e('request', 403, GRPC.PERMISSION_DENIED, false, 'The admin request names a Host that is neither loopback nor in admin.allowedHosts (DNS-rebinding guard).'),
  CROSS_SITE_REFUSED: e('request', 403, GRPC.PERMISSION_DENIED, false, 'A cross-site browser request (Origin / Sec-Fetch-Site not in admin.cors.allowedOrigins), or a mutating admin call without content-type: application/json or an x-scorecar-request header (CSRF guard).'),
  INVALID_FILTER: e('request', 400, GRPC.INVALID_ARGUMENT, false, 'A filter string does not parse; details.position says where.'),
  INVALID_DEFINITION: e('request', 400, GRPC.INVALID_ARGUMENT, false, 'A scorer definition is invalid; details.errors lists every problem with its path.'),
  INVALID_JOB: e('request', 400, GRPC.INVALID_ARGUMENT, false, 'A Kafka message is not a scoring job (or assessment) this build can read: counted and skipped, never retried.'),
  TABLE_INCOMPATIBLE: e('request', 409, GRPC.FAILED_PRECONDITION, false, 'An archive Delta table has a protocol, features or schema scorecar cannot write, or one changed under it.'),
  BACKFILL_RUNNING: e('request', 409, GRPC.FAILED_PRECONDITION, false, 'A backfill of this experiment is already running; wait for it or cancel it (details.jobId).'),
  // The pipeline is full or stopping: retry after the hint.
  MEMORY_BUDGET_FULL: e('capacity', 429, GRPC.UNAVAILABLE, true, 'The memory budget (limits.memoryBytes) is used up by data in flight; retry after Retry-After.'),
  OVERLOADED: e('capacity', 503, GRPC.UNAVAILABLE, true, 'A store is busy (another writer holds its lock); retry after Retry-After.'),
  QUEUE_FULL: e('capacity', 503, GRPC.UNAVAILABLE, true, 'A bounded queue (export queue, scoring queue) is full, or the export spool cannot write; retry after Retry-After.'),
  SHUTTING_DOWN: e('capacity', 503, GRPC.UNAVAILABLE, true, 'scorecar is shutting down; retry on another replica or later.'),
  // Configuration, found at start.
  CONFIG_INVALID: e('config', 400, GRPC.INVALID_ARGUMENT, false, 'The configuration is invalid; every problem is listed with its key path (exit code 78).'),
  TLS_INVALID: e('config', 400, GRPC.INVALID_ARGUMENT, false, 'A TLS certificate, key or client CA file is missing, unreadable, not PEM, or the key does not match the certificate; at start it is listed under CONFIG_INVALID with its key path, on reload the new files are refused and the old ones keep serving.'),
  // Downstream services.
  DOWNSTREAM_UNAVAILABLE: e('downstream', 503, GRPC.UNAVAILABLE, true, 'The downstream OTLP endpoint cannot be reached.'),
  STORE_UNAVAILABLE: e('downstream', 503, GRPC.UNAVAILABLE, true, 'The shared store (PostgreSQL, storage.postgres.url) cannot be reached; admin writes are refused, assessments wait in a bounded buffer, replicas reconnect on their own.'),
  KAFKA_UNAVAILABLE: e('downstream', 503, GRPC.UNAVAILABLE, true, 'The Kafka brokers cannot be reached or refused a write; jobs and assessments wait in a bounded buffer, then are dropped and counted.'),
  DOWNSTREAM_REJECTED: e('downstream', 502, GRPC.FAILED_PRECONDITION, false, 'The downstream OTLP endpoint refused data permanently.'),
  TIMEOUT: e('downstream', 504, GRPC.DEADLINE_EXCEEDED, true, 'A call, a judge or a code scorer ran out of time (code scorers: CPU time).'),
  INTERNAL: e('downstream', 500, GRPC.INTERNAL, false, 'A bug in scorecar. Receivers answer 503 / UNAVAILABLE instead, so senders retry.'),
  // Scorer runs: the error code of an error assessment (assessment.error.code) or scorer health.
  RATE_LIMITED: e('scorer', 429, GRPC.RESOURCE_EXHAUSTED, true, 'The judge provider answered 429 past the retry budget.'),
  PROVIDER_UNAVAILABLE: e('scorer', 503, GRPC.UNAVAILABLE, true, 'The judge provider could not be reached or answered 5xx past the retry budget.'),
  PROVIDER_REJECTED: e('scorer', 502, GRPC.FAILED_PRECONDITION, false, 'The judge provider refused the request (4xx other than 401/403/429).'),
  PROVIDER_BAD_RESPONSE: e('scorer', 502, GRPC.INTERNAL, false, 'The judge provider answered something that is not a completion.'),
  PROVIDER_NOT_CONFIGURED: e('scorer', 500, GRPC.FAILED_PRECONDITION, false, 'No endpoint or credentials for the judge model (environment or scoring.providers).'),
  JUDGE_PARSE_ERROR: e('scorer', 502, GRPC.INTERNAL, false, "The judge's answer has no verdict scorecar can read."),
  JUDGE_INVALID_RESPONSE: e('scorer', 502, GRPC.INTERNAL, false, "The judge's verdict is not one the scorer allows."),
  MISSING_INPUT: e('scorer', 400, GRPC.FAILED_PRECONDITION, false, 'The trace lacks what the judge needs (inputs, outputs, retrieved documents).'),
  MISSING_EXPECTATIONS: e('scorer', 400, GRPC.FAILED_PRECONDITION, false, 'The judge needs expectations the trace does not carry.'),
  CODE_SCORER_ERROR: e('scorer', 400, GRPC.FAILED_PRECONDITION, false, 'A code scorer threw, rejected or does not evaluate to a function.'),
  CODE_SCORER_INVALID_RESULT: e('scorer', 400, GRPC.FAILED_PRECONDITION, false, 'A code scorer returned something that is not a value or feedback.'),
  OUT_OF_MEMORY: e('scorer', 400, GRPC.RESOURCE_EXHAUSTED, false, 'A code scorer went over scoring.sandbox.memoryBytes.'),
  SANDBOX_CRASHED: e('scorer', 500, GRPC.INTERNAL, true, 'A sandbox worker died or did not start; it was replaced.'),
  BUDGET_EXHAUSTED: e('scorer', 429, GRPC.RESOURCE_EXHAUSTED, true, "The experiment's daily judge budget is spent; judges pause until the next UTC day."),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/** What a scorer's failure costs: token usage already spent when it happened. */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  /** Undefined when the price table has no entry for the model. */
  cost?: number | undefined;
  attempts: number;
}

export class ScorecarError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;
  /** Judge usage consumed before a scorer failed (an unparseable answer still cost tokens). */
  readonly usage: Usage | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { retryable?: boolean; cause?: unknown; details?: Record<string, unknown>; usage?: Usage } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ScorecarError';
    this.code = code;
    this.retryable = opts.retryable ?? ERRORS[code].retryable;
    this.details = opts.details;
    this.usage = opts.usage;
  }
}

export function isScorecarError(e: unknown): e is ScorecarError {
  return e instanceof ScorecarError;
}

/** The message of anything thrown, for logs and error assessments. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/** HTTP status of a code (the admin API and the OTLP/HTTP receiver). */
export function httpStatusOf(code: ErrorCode): number {
  return ERRORS[code].http;
}

/** gRPC status of a code (the OTLP/gRPC receiver). */
export function grpcStatusOf(code: ErrorCode): number {
  return ERRORS[code].grpc;
}

/**
 * How a receiver answers anything thrown while it handled a request. Known codes answer their
 * row of the table; anything else is a bug of ours and answers retryable (503 / UNAVAILABLE
 * with a retry hint), as the Collector's receivers do: a bug must make senders retry, not drop
 * their data. `retryHint` tells whether to send Retry-After / RetryInfo.
 */
export function receiverStatus(e: unknown): { code: ErrorCode | 'UNEXPECTED'; http: number; grpc: number; retryHint: boolean; message: string } {
  if (isScorecarError(e) && e.code !== 'INTERNAL') {
    const spec = ERRORS[e.code];
    return { code: e.code, http: spec.http, grpc: spec.grpc, retryHint: e.retryable, message: e.message };
  }
  return {
    code: 'UNEXPECTED',
    http: 503,
    grpc: GRPC.UNAVAILABLE,
    retryHint: true,
    message: `scorecar could not handle the request (${errorMessage(e)}); retry later`,
  };
}

/** An error as log fields: type, message, code and stack (and the cause's). */
export function errorFields(e: unknown): Record<string, unknown> {
  if (!(e instanceof Error)) return { type: typeof e, message: String(e) };
  const out: Record<string, unknown> = { type: e.name, message: e.message };
  const code = (e as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  if (e.stack) out.stack = e.stack;
  if (e.cause !== undefined) out.cause = errorFields(e.cause);
  return out;
}

/**
 * MLflow's REST error codes (the names of its ErrorCode enum) and the HTTP status MLflow pairs
 * with each, for the MLflow-compatible routes (src/mlflow): MLflow's clients read `error_code`
 * and the status, so each of our codes answers as the nearest MLflow code. Derived from the
 * code's HTTP status, with the exceptions MLflow's own server makes (an existing resource is a
 * 400 there). docs/errors.md lists the mapping.
 */
const MLFLOW_BY_HTTP: Record<number, readonly [string, number]> = {
  400: ['INVALID_PARAMETER_VALUE', 400],
  401: ['UNAUTHENTICATED', 401],
  403: ['PERMISSION_DENIED', 403],
  404: ['RESOURCE_DOES_NOT_EXIST', 404],
  // Refusals MLflow has no 4xx code for: a request that cannot be accepted as it is.
  405: ['BAD_REQUEST', 400],
  408: ['BAD_REQUEST', 400],
  409: ['INVALID_PARAMETER_VALUE', 400],
  413: ['BAD_REQUEST', 400],
  415: ['BAD_REQUEST', 400],
  429: ['REQUEST_LIMIT_EXCEEDED', 429],
  503: ['TEMPORARILY_UNAVAILABLE', 503],
  504: ['DEADLINE_EXCEEDED', 504],
};
const MLFLOW_OVERRIDES: Partial<Record<ErrorCode, readonly [string, number]>> = {
  ALREADY_EXISTS: ['RESOURCE_ALREADY_EXISTS', 400],
};

/** The MLflow error code and HTTP status a scorecar code answers with on MLflow's routes. */
export function mlflowErrorOf(code: ErrorCode): { errorCode: string; http: number } {
  const [errorCode, http] = MLFLOW_OVERRIDES[code] ?? MLFLOW_BY_HTTP[ERRORS[code].http] ?? ['INTERNAL_ERROR', 500];
  return { errorCode, http };
}
