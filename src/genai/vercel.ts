// Vercel AI SDK telemetry (`ai` package, experimental_telemetry): spans named by
// `ai.operationId` (`ai.generateText`, `ai.generateText.doGenerate`, `ai.streamText[.doStream]`,
// `ai.generateObject`, `ai.embed[Many][.doEmbed]`, `ai.toolCall`, `ai.rerank`, ...); inputs in
// `ai.prompt` (JSON `{system, prompt|messages}`) or `ai.prompt.messages` (the provider call),
// `ai.value(s)` for embeddings, `ai.toolCall.args`; outputs in `ai.response.text`,
// `ai.response.object`, `ai.response.toolCalls`, `ai.toolCall.result` (older SDKs: `ai.result.*`);
// usage in `ai.usage.inputTokens|outputTokens|totalTokens` (older: `promptTokens|
// completionTokens`); app metadata as `ai.telemetry.metadata.<key>` (sessionId, userId, ...).
import type { SpanData } from '../wire/index.ts';
import { type ConventionReader, type SpanType, usageOf } from './convention.ts';
import type { TokenUsage } from './types.ts';
import { attrJson, attrNumber, attrString, type Found } from './values.ts';

export const METADATA_PREFIX = 'ai.telemetry.metadata.';
const SESSION_KEYS = ['sessionId', 'session_id', 'langfuseSessionId', 'session'];
const USER_KEYS = ['userId', 'user_id', 'langfuseUserId', 'user'];

function operationType(op: string): SpanType | undefined {
  const [base, inner] = [op.split('.').slice(0, 2).join('.'), op.split('.')[2]];
  switch (base) {
    case 'ai.generateText':
    case 'ai.streamText':
    case 'ai.generateObject':
    case 'ai.streamObject':
      return inner === 'doGenerate' || inner === 'doStream' ? 'CHAT_MODEL' : 'LLM';
    case 'ai.embed':
    case 'ai.embedMany':
      return 'EMBEDDING';
    case 'ai.toolCall':
      return 'TOOL';
    case 'ai.rerank':
      return 'RERANKER';
    default:
      return undefined;
  }
}

function firstOf(span: SpanData, keys: readonly string[]): Found | undefined {
  for (const k of keys) {
    if (k === 'ai.response.text' || k === 'ai.result.text') {
      // Text stays text even when it happens to look like JSON.
      const v = span.attributes[k];
      if (typeof v === 'string') return { value: v };
      continue;
    }
    const f = attrJson(span.attributes, k);
    if (f) return f;
  }
  return undefined;
}

function metadata(span: SpanData, keys: readonly string[]): string | undefined {
  for (const k of keys) {
    const v = attrString(span.attributes, METADATA_PREFIX + k);
    if (v !== undefined) return v;
  }
  return undefined;
}

function usage(span: SpanData): TokenUsage | undefined {
  const a = span.attributes;
  return usageOf(
    attrNumber(a, 'ai.usage.inputTokens') ?? attrNumber(a, 'ai.usage.promptTokens'),
    attrNumber(a, 'ai.usage.outputTokens') ?? attrNumber(a, 'ai.usage.completionTokens'),
    attrNumber(a, 'ai.usage.totalTokens'),
  );
}

export const vercel: ConventionReader = {
  name: 'vercel-ai',
  detect: (span) => Object.hasOwn(span.attributes, 'ai.operationId'),
  spanType: (span) => {
    const op = attrString(span.attributes, 'ai.operationId');
    return op === undefined ? undefined : operationType(op);
  },
  inputs: (span) =>
    firstOf(span, ['ai.prompt', 'ai.prompt.messages', 'ai.value', 'ai.values', 'ai.toolCall.args']),
  outputs: (span) =>
    firstOf(span, [
      'ai.response.text',
      'ai.response.object',
      'ai.response.toolCalls',
      'ai.toolCall.result',
      'ai.result.text',
      'ai.result.object',
      'ai.result.toolCalls',
    ]),
  usage,
  sessionId: (span) => metadata(span, SESSION_KEYS),
  userId: (span) => metadata(span, USER_KEYS),
};
