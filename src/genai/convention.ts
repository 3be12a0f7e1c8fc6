// The shape every convention reader has: small, pure functions of one decoded span that answer
// "what does this convention say about the span", each returning undefined when the convention
// says nothing. The view (view.ts) decides the precedence between conventions.
import type { SpanData } from '../wire/index.ts';
import type { RetrievedDocument, TokenUsage } from './types.ts';
import type { Found } from './values.ts';

/** MLflow span types (mlflow.entities.SpanType), the values of the `span.type` filter. */
export const SPAN_TYPES = [
  'LLM',
  'CHAT_MODEL',
  'RETRIEVER',
  'TOOL',
  'CHAIN',
  'AGENT',
  'EMBEDDING',
  'RERANKER',
  'PARSER',
  'UNKNOWN',
] as const;
export type SpanType = (typeof SPAN_TYPES)[number];

export interface ConventionReader {
  /** Name listed in TraceView.conventions. */
  readonly name: string;
  /** Whether the span carries this convention's attributes at all. */
  detect(span: SpanData): boolean;
  spanType?(span: SpanData): SpanType | undefined;
  inputs?(span: SpanData): Found | undefined;
  outputs?(span: SpanData): Found | undefined;
  usage?(span: SpanData): TokenUsage | undefined;
  sessionId?(span: SpanData): string | undefined;
  userId?(span: SpanData): string | undefined;
  /** Documents of a retriever span, when the convention flattens them into attributes/events. */
  documents?(span: SpanData): RetrievedDocument[] | undefined;
  /** The retriever's query, when the convention names it separately from the span inputs. */
  query?(span: SpanData): Found | undefined;
}

/** Builds a TokenUsage from whichever counts are known; undefined when none is. */
export function usageOf(
  input: number | undefined,
  output: number | undefined,
  total: number | undefined,
): TokenUsage | undefined {
  if (input === undefined && output === undefined && total === undefined) return undefined;
  const u: TokenUsage = {};
  if (input !== undefined) u.inputTokens = input;
  if (output !== undefined) u.outputTokens = output;
  if (total !== undefined) u.totalTokens = total;
  else if (input !== undefined || output !== undefined) u.totalTokens = (input ?? 0) + (output ?? 0);
  return u;
}

/** Maps a free-form kind name onto an MLflow span type (case-insensitive). */
export function spanTypeFromName(
  kind: string | undefined,
  table: Readonly<Record<string, SpanType>>,
): SpanType | undefined {
  if (kind === undefined) return undefined;
  return table[kind.toLowerCase()];
}
