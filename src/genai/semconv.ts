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
// Events come as span events or as log records (the JS contrib instrumentation and the event
// API of later semconv versions emit log records) that the view joins to the span they name
// (SpanData.logs). A log record's event name is its event_name field, else its `event.name`
// attribute (older SDKs, and the recorded JS instrumentation); its message content is in the
// body (`{content}`, `{index, finish_reason, message: {content, tool_calls}}`), merged into the
// message after the attributes. The newest single event `gen_ai.client.inference.operation.details`
// carries `gen_ai.input.messages` / `gen_ai.output.messages` / `gen_ai.system_instructions` as
// attributes (structured, or JSON strings), read like the span attributes of that name. A span
// with GenAI span events is read from those alone; its log records only when it has none, so an
// exporter that sends both does not double the messages.
import type { Attributes, AttrValue, LogRecordData, SpanData } from '../wire/index.ts';
import { type ConventionReader, type SpanType, spanTypeFromName, usageOf } from './convention.ts';
import type { RetrievedDocument, TokenUsage } from './types.ts';
import { normalizeDocuments } from './documents.ts';
import {
  attrJson,
  attrNumber,
  attrString,
  type Found,
  indexedRecords,
  isRecord,
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

/** A GenAI event, from a span event or from a log record naming the span. */
interface GenAiEvent {
  name: string;
  attributes: Attributes;
  /** A log record's body; undefined for span events. */
  body: AttrValue | undefined;
}

/** Keys of a message event that describe the event, not the message. */
const EVENT_META = new Set(['gen_ai.system', 'gen_ai.provider.name', 'event.name']);
const DETAILS_EVENT = 'gen_ai.client.inference.operation.details';

/** A log record's event name: its event_name field, else an `event.name` attribute (older SDKs). */
export function logEventName(l: LogRecordData): string {
  if (l.eventName !== '') return l.eventName;
  const a = l.attributes['event.name'];
  return typeof a === 'string' ? a : '';
}

/** The span's GenAI events: its span events, else the log records joined to it (module header). */
function genAiEvents(span: SpanData): GenAiEvent[] {
  const out: GenAiEvent[] = [];
  for (const e of span.events) {
    if (e.name.startsWith('gen_ai.')) out.push({ name: e.name, attributes: e.attributes, body: undefined });
  }
  if (out.length > 0 || span.logs === undefined) return out;
  for (const l of span.logs) {
    const name = logEventName(l);
    if (name.startsWith('gen_ai.')) out.push({ name, attributes: l.attributes, body: l.body });
  }
  return out;
}

/** One message from a message event: a JSON payload, or its attributes and body fields. */
function eventMessage(e: GenAiEvent, role: string | undefined): unknown {
  const a = e.attributes;
  const payload = attrJson(a, 'gen_ai.event.content')?.value;
  if (payload !== undefined) return payload;
  const msg: Record<string, unknown> = {};
  if (role) msg.role = role;
  for (const [k, v] of Object.entries(a)) {
    if (EVENT_META.has(k)) continue;
    msg[k] = typeof v === 'string' && k !== 'content' ? parseJsonLoose(v) : plain(v);
  }
  const body = e.body;
  if (isRecord(body)) for (const [k, v] of Object.entries(body)) msg[k] = plain(v);
  else if (body !== undefined && body !== null) msg.content = plain(body);
  return msg;
}

/** Inputs from `gen_ai.input.messages` and `gen_ai.system_instructions` in a set of attributes. */
function messagesIn(attrs: Attributes): Found | undefined {
  const messages = attrJson(attrs, 'gen_ai.input.messages');
  const system = attrJson(attrs, 'gen_ai.system_instructions');
  if (!messages) return system ? { value: [{ role: 'system', parts: system.value }] } : undefined;
  if (system && Array.isArray(messages.value))
    return { value: [{ role: 'system', parts: system.value }, ...messages.value] };
  return messages;
}

function eventInputs(span: SpanData): Found | undefined {
  const msgs: unknown[] = [];
  for (const e of genAiEvents(span)) {
    const role = INPUT_EVENTS.get(e.name);
    if (role !== undefined) msgs.push(eventMessage(e, role));
    else if (e.name === 'gen_ai.content.prompt') {
      const p = attrJson(e.attributes, 'gen_ai.prompt');
      if (p) return p;
    } else if (e.name === DETAILS_EVENT) {
      const m = messagesIn(e.attributes);
      if (m) return m;
    }
  }
  return msgs.length ? { value: msgs } : undefined;
}

function eventOutputs(span: SpanData): Found | undefined {
  const choices: unknown[] = [];
  for (const e of genAiEvents(span)) {
    if (e.name === 'gen_ai.choice') choices.push(eventMessage(e, undefined));
    else if (e.name === 'gen_ai.content.completion') {
      const c = attrJson(e.attributes, 'gen_ai.completion');
      if (c) return c;
    } else if (e.name === DETAILS_EVENT) {
      const m = attrJson(e.attributes, 'gen_ai.output.messages');
      if (m) return m;
    }
  }
  return choices.length ? { value: choices } : undefined;
}

function messageInputs(span: SpanData): Found | undefined {
  return messagesIn(span.attributes);
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
    span.events.some((e) => e.name.startsWith('gen_ai.')) ||
    (span.logs?.some((l) => logEventName(l).startsWith('gen_ai.')) ?? false),
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
