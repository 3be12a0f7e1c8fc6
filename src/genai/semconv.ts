// OpenTelemetry GenAI semantic conventions (development status), in their three generations:
// - current: `gen_ai.input.messages` / `gen_ai.output.messages` (JSON `[{role, parts:[{type,
//   content}|...]}]`), `gen_ai.system_instructions`, `gen_ai.operation.name`,
//   `gen_ai.usage.input_tokens|output_tokens`, `gen_ai.conversation.id`, retrieval spans with
//   `gen_ai.retrieval.query.text` and `gen_ai.retrieval.documents` (JSON `[{id, score, content}]`);
// - older indexed attributes `gen_ai.prompt.N.role|content` / `gen_ai.completion.N.*` (still
//   written by OpenLLMetry and others), and `gen_ai.usage.prompt_tokens|completion_tokens`;
// - message events `gen_ai.system|user|assistant|tool.message` and `gen_ai.choice` (attributes
//   `content` / `message` / `gen_ai.event.content`), and the oldest `gen_ai.content.prompt` /
//   `gen_ai.content.completion` events carrying `gen_ai.prompt` / `gen_ai.completion`.
// The JS contrib instrumentation emits those message events as log records, not span events;
// a view built from spans alone cannot see them (see the module header of view.ts).
import type { Attributes, SpanData, SpanEventData } from '../wire/index.ts';
import { type ConventionReader, type SpanType, spanTypeFromName, usageOf } from './convention.ts';
import type { RetrievedDocument, TokenUsage } from './types.ts';
import { normalizeDocuments } from './documents.ts';
import {
  attrJson,
  attrNumber,
  attrString,
  type Found,
  indexedRecords,
  parseJsonLoose,
  plain,
} from './values.ts';

const OPERATION_TYPES: Record<string, SpanType> = {
  chat: 'CHAT_MODEL',
  text_completion: 'LLM',
  generate_content: 'LLM',
  embeddings: 'EMBEDDING',
  embedding: 'EMBEDDING',
  execute_tool: 'TOOL',
  invoke_agent: 'AGENT',
  create_agent: 'AGENT',
  invoke_workflow: 'CHAIN',
  retrieval: 'RETRIEVER',
  retrieve: 'RETRIEVER',
  rerank: 'RERANKER',
};

const INPUT_EVENTS = new Map([
  ['gen_ai.system.message', 'system'],
  ['gen_ai.user.message', 'user'],
  ['gen_ai.assistant.message', 'assistant'],
  ['gen_ai.tool.message', 'tool'],
]);

function indexedMessages(attrs: Attributes, prefix: string): Found | undefined {
  const recs = indexedRecords(attrs, prefix);
  if (recs.length === 0) return undefined;
  return {
    value: recs.map((r) => {
      const m: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(r)) m[k] = plain(v);
      return m;
    }),
  };
}

/** One message from a message event: its `content`/`message` attributes, or a JSON payload. */
function eventMessage(e: SpanEventData, role: string | undefined): unknown {
  const a = e.attributes;
  const payload = attrJson(a, 'gen_ai.event.content')?.value;
  if (payload !== undefined) return payload;
  const msg: Record<string, unknown> = {};
  if (role) msg.role = role;
  for (const [k, v] of Object.entries(a)) {
    if (k === 'gen_ai.system' || k === 'gen_ai.provider.name' || k === 'event.name') continue;
    msg[k] = typeof v === 'string' && k !== 'content' ? parseJsonLoose(v) : plain(v);
  }
  return msg;
}

function eventInputs(span: SpanData): Found | undefined {
  const msgs: unknown[] = [];
  for (const e of span.events) {
    const role = INPUT_EVENTS.get(e.name);
    if (role !== undefined) msgs.push(eventMessage(e, role));
    else if (e.name === 'gen_ai.content.prompt') {
      const p = attrJson(e.attributes, 'gen_ai.prompt');
      if (p) return p;
    }
  }
  return msgs.length ? { value: msgs } : undefined;
}

function eventOutputs(span: SpanData): Found | undefined {
  const choices: unknown[] = [];
  for (const e of span.events) {
    if (e.name === 'gen_ai.choice') choices.push(eventMessage(e, undefined));
    else if (e.name === 'gen_ai.content.completion') {
      const c = attrJson(e.attributes, 'gen_ai.completion');
      if (c) return c;
    }
  }
  return choices.length ? { value: choices } : undefined;
}

function messageInputs(span: SpanData): Found | undefined {
  const messages = attrJson(span.attributes, 'gen_ai.input.messages');
  const system = attrJson(span.attributes, 'gen_ai.system_instructions');
  if (!messages) return system ? { value: [{ role: 'system', parts: system.value }] } : undefined;
  if (system && Array.isArray(messages.value))
    return { value: [{ role: 'system', parts: system.value }, ...messages.value] };
  return messages;
}

function usage(span: SpanData): TokenUsage | undefined {
  const a = span.attributes;
  return usageOf(
    attrNumber(a, 'gen_ai.usage.input_tokens') ?? attrNumber(a, 'gen_ai.usage.prompt_tokens'),
    attrNumber(a, 'gen_ai.usage.output_tokens') ?? attrNumber(a, 'gen_ai.usage.completion_tokens'),
    attrNumber(a, 'gen_ai.usage.total_tokens') ?? attrNumber(a, 'llm.usage.total_tokens'),
  );
}

export const semconv: ConventionReader & {
  eventInputs(span: SpanData): Found | undefined;
  eventOutputs(span: SpanData): Found | undefined;
  indexedInputs(span: SpanData): Found | undefined;
  indexedOutputs(span: SpanData): Found | undefined;
  messageInputs(span: SpanData): Found | undefined;
  messageOutputs(span: SpanData): Found | undefined;
} = {
  name: 'genai-semconv',
  detect: (span) =>
    Object.keys(span.attributes).some((k) => k.startsWith('gen_ai.')) ||
    span.events.some((e) => e.name.startsWith('gen_ai.')),
  spanType: (span) => spanTypeFromName(attrString(span.attributes, 'gen_ai.operation.name'), OPERATION_TYPES),
  eventInputs,
  eventOutputs,
  indexedInputs: (span) =>
    indexedMessages(span.attributes, 'gen_ai.prompt') ?? attrJson(span.attributes, 'gen_ai.prompt'),
  indexedOutputs: (span) =>
    indexedMessages(span.attributes, 'gen_ai.completion') ?? attrJson(span.attributes, 'gen_ai.completion'),
  messageInputs,
  messageOutputs: (span) => attrJson(span.attributes, 'gen_ai.output.messages'),
  inputs: (span) =>
    eventInputs(span) ?? indexedMessages(span.attributes, 'gen_ai.prompt') ?? messageInputs(span),
  outputs: (span) =>
    eventOutputs(span) ??
    indexedMessages(span.attributes, 'gen_ai.completion') ??
    attrJson(span.attributes, 'gen_ai.output.messages'),
  usage,
  sessionId: (span) => attrString(span.attributes, 'gen_ai.conversation.id'),
  documents: (span): RetrievedDocument[] | undefined => {
    const d = attrJson(span.attributes, 'gen_ai.retrieval.documents');
    return d ? normalizeDocuments(d.value) : undefined;
  },
  query: (span) => {
    const q = attrString(span.attributes, 'gen_ai.retrieval.query.text');
    return q === undefined ? undefined : { value: q };
  },
};
