// What the assembler hands to the next stage: every span of one trace, still encoded.
import type { ResourceRef, ScopeRef } from '../otlp/parts.ts';

export type CompletionReason = 'root' | 'idle' | 'max_age' | 'shutdown';

export interface CompleteTrace {
  /** Lowercase hex, 32 characters. */
  readonly traceId: string;
  /** Encoded Span messages, in arrival order; resources[i] and scopes[i] belong to spans[i]. */
  readonly spans: readonly Uint8Array[];
  readonly resources: readonly ResourceRef[];
  readonly scopes: readonly ScopeRef[];
  readonly reason: CompletionReason;
  /** Whether a root span (no parent) was seen. */
  readonly hasRoot: boolean;
  readonly firstSeenMs: number;
  readonly completedMs: number;
  /** Sum of the encoded span sizes. */
  readonly wireBytes: number;
}

/** The next stage: called once per completed trace, synchronously; must not block. */
export type TraceConsumer = (trace: CompleteTrace) => void;
