// Langfuse SDKs over OTel (@langfuse/tracing, @langfuse/core LangfuseOtelSpanAttributes):
// `langfuse.observation.type` (span, generation, retriever, tool, agent, chain, embedding, ...),
// `langfuse.observation.input|output` (JSON), `langfuse.observation.usage_details` (JSON
// `{input, output, total}` or OpenAI-style counts), trace-level `langfuse.trace.input|output`,
// `langfuse.trace.tags`, `langfuse.trace.metadata.<key>`, `langfuse.observation.level`
// (ERROR marks a failed observation); session and user as `session.id` / `user.id` (read by the
// generic reader) or the compat keys `langfuse.session.id` / `langfuse.user.id`; experiment runs
// add `langfuse.experiment.item.expected_output`.
import type { SpanData } from '../wire/index.ts';
import { type ConventionReader, type SpanType, spanTypeFromName, usageOf } from './convention.ts';
import type { TokenUsage } from './types.ts';
import { attrJson, attrString, type Found, isRecord, stringList, toNumber } from './values.ts';

export const TRACE_METADATA_PREFIX = 'langfuse.trace.metadata.';
export const EXPECTED_OUTPUT = 'langfuse.experiment.item.expected_output';

const TYPES: Record<string, SpanType> = {
  generation: 'LLM',
  embedding: 'EMBEDDING',
  retriever: 'RETRIEVER',
  tool: 'TOOL',
  agent: 'AGENT',
  chain: 'CHAIN',
  evaluator: 'UNKNOWN',
  guardrail: 'UNKNOWN',
  event: 'UNKNOWN',
  // 'span' is deliberately absent: a plain Langfuse span says nothing about its kind, so another
  // convention on the same span may still type it.
};

function usage(span: SpanData): TokenUsage | undefined {
  const u = attrJson(span.attributes, 'langfuse.observation.usage_details')?.value;
  if (!isRecord(u)) return undefined;
  return usageOf(
    toNumber(u.input) ?? toNumber(u.prompt_tokens) ?? toNumber(u.promptTokens) ?? toNumber(u.input_tokens),
    toNumber(u.output) ??
      toNumber(u.completion_tokens) ??
      toNumber(u.completionTokens) ??
      toNumber(u.output_tokens),
    toNumber(u.total) ?? toNumber(u.total_tokens) ?? toNumber(u.totalTokens),
  );
}

export const langfuse: ConventionReader & {
  traceInputs(span: SpanData): Found | undefined;
  traceOutputs(span: SpanData): Found | undefined;
  failed(span: SpanData): boolean;
} = {
  name: 'langfuse',
  detect: (span) => Object.keys(span.attributes).some((k) => k.startsWith('langfuse.')),
  spanType: (span) => spanTypeFromName(attrString(span.attributes, 'langfuse.observation.type'), TYPES),
  inputs: (span) => attrJson(span.attributes, 'langfuse.observation.input'),
  outputs: (span) => attrJson(span.attributes, 'langfuse.observation.output'),
  traceInputs: (span) => attrJson(span.attributes, 'langfuse.trace.input'),
  traceOutputs: (span) => attrJson(span.attributes, 'langfuse.trace.output'),
  failed: (span) => attrString(span.attributes, 'langfuse.observation.level') === 'ERROR',
  usage,
  sessionId: (span) => attrString(span.attributes, 'langfuse.session.id'),
  userId: (span) => attrString(span.attributes, 'langfuse.user.id'),
};

/** Langfuse trace tags (`langfuse.trace.tags`, a list of labels). */
export function langfuseTags(span: SpanData): string[] {
  return stringList(span.attributes['langfuse.trace.tags']) ?? [];
}
