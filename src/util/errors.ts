// Errors with a stable code and whether retrying can help. Transport mapping (HTTP status,
// gRPC code) happens in one place per transport; code never switches on message text.

export type ErrorCode =
  // input
  | 'INVALID_ARGUMENT'
  | 'INVALID_PROTOBUF'
  | 'INVALID_JSON'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'METHOD_NOT_ALLOWED'
  | 'PAYLOAD_TOO_LARGE'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'LIMIT_EXCEEDED'
  | 'FAILED_PRECONDITION'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'INVALID_FILTER'
  | 'INVALID_DEFINITION'
  // capacity
  | 'OVERLOADED'
  | 'QUEUE_FULL'
  | 'SHUTTING_DOWN'
  // config
  | 'CONFIG_INVALID'
  // downstream / providers
  | 'DOWNSTREAM_UNAVAILABLE'
  | 'DOWNSTREAM_REJECTED'
  | 'TIMEOUT'
  | 'INTERNAL';

export class ScorecarError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { retryable?: boolean; cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ScorecarError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.details = opts.details;
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
