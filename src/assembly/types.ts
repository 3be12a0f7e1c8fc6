// What the assembler hands to the next stage: every span of one trace, and the log records that
// carry its trace id, still encoded.
import type { ResourceRef, ScopeRef } from '../wire/index.ts';

export type CompletionReason = 'root' | 'idle' | 'max_age' | 'shutdown';

export interface CompleteTrace {
  /** Lowercase hex, 32 characters. */
  readonly traceId: string;
  /** Encoded Span messages, in arrival order; resources[i] and scopes[i] belong to spans[i]. */
  readonly spans: readonly Uint8Array[];
  readonly resources: readonly ResourceRef[];
  readonly scopes: readonly ScopeRef[];
  /**
   * Encoded LogRecord messages carrying this trace id (GenAI message events, application logs),
   * in arrival order; logResources[i] and logScopes[i] belong to logs[i]. Absent or empty when
   * none arrived (producers that only have spans may leave these out).
   */
  readonly logs?: readonly Uint8Array[];
  readonly logResources?: readonly ResourceRef[];
  readonly logScopes?: readonly ScopeRef[];
  readonly reason: CompletionReason;
  /** Whether a root span (no parent) was seen. */
  readonly hasRoot: boolean;
  readonly firstSeenMs: number;
  readonly completedMs: number;
  /** Sum of the encoded span and log record sizes. */
  readonly wireBytes: number;
}

/**
 * Which traces are worth buffering, asked once when a trace id is first seen (by a span or by a
 * log record carrying it; `resource` is then the log record's resource): the selection
 * stage answers from the sampler's hash and the active scorers' rates (a trace hashed above
 * every rate of its experiment can never be scored), an archive would answer yes for its
 * experiments. `idBytes[idOffset..+16]` is the trace id; `resource` what the span arrived under.
 */
export interface TraceInterest {
  wants(idBytes: Uint8Array, idOffset: number, resource: ResourceRef): boolean;
}
