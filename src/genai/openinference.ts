// OpenInference (Arize-ai/openinference spec/semantic_conventions.md): `openinference.span.kind`,
// `input.value` / `output.value` with `input.mime_type` / `output.mime_type` (JSON parsed only
// when the mime type says so, or when the text is a JSON object/array), flattened
// `llm.input_messages.N.message.role|content` and `llm.output_messages.N.message.*`,
// `retrieval.documents.N.document.id|content|score|metadata`, `llm.token_count.prompt|completion|
// total`, `session.id`, `user.id`, `tag.tags`.
import type { Attributes, SpanData } from '../wire/index.ts';
import { type ConventionReader, type SpanType, spanTypeFromName, usageOf } from './convention.ts';
import type { RetrievedDocument, TokenUsage } from './types.ts';
import {
  attrNumber,
  attrString,
  type Found,
  indexedRecords,
  parseJsonLoose,
  parseJsonStructured,
  plain,
  stringList,
  toNumber,
} from './values.ts';

const KIND_TYPES: Record<string, SpanType> = {
  llm: 'LLM',
  chain: 'CHAIN',
  retriever: 'RETRIEVER',
  tool: 'TOOL',
  agent: 'AGENT',
  embedding: 'EMBEDDING',
  reranker: 'RERANKER',
  guardrail: 'UNKNOWN',
  evaluator: 'UNKNOWN',
  prompt: 'UNKNOWN',
  unknown: 'UNKNOWN',
};

function value(attrs: Attributes, key: 'input' | 'output'): Found | undefined {
  const v = attrs[`${key}.value`];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') return { value: plain(v) };
  const mime = attrString(attrs, `${key}.mime_type`);
  if (mime === 'application/json') return { value: parseJsonLoose(v) };
  if (mime === 'text/plain') return { value: v };
  return { value: parseJsonStructured(v) };
}

function messages(attrs: Attributes, prefix: string): Found | undefined {
  const recs = indexedRecords(attrs, prefix);
  if (recs.length === 0) return undefined;
  return {
    value: recs.map((r) => {
      const m: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(r))
        m[k.startsWith('message.') ? k.slice('message.'.length) : k] = plain(v);
      return m;
    }),
  };
}

function documents(span: SpanData): RetrievedDocument[] | undefined {
  const recs = indexedRecords(span.attributes, 'retrieval.documents');
  if (recs.length === 0) return undefined;
  return recs.map((r) => {
    const content = r['document.content'];
    const doc: RetrievedDocument = {
      content: typeof content === 'string' ? content : content == null ? '' : String(plain(content)),
    };
    const id = r['document.id'];
    if (typeof id === 'string' || typeof id === 'number') doc.id = String(id);
    const score = toNumber(r['document.score']);
    if (score !== undefined) doc.score = score;
    const md = r['document.metadata'];
    const meta = typeof md === 'string' ? parseJsonLoose(md) : plain(md);
    if (meta !== null && typeof meta === 'object' && !Array.isArray(meta))
      doc.metadata = meta as Record<string, unknown>;
    return doc;
  });
}

function usage(span: SpanData): TokenUsage | undefined {
  const a = span.attributes;
  return usageOf(
    attrNumber(a, 'llm.token_count.prompt'),
    attrNumber(a, 'llm.token_count.completion'),
    attrNumber(a, 'llm.token_count.total'),
  );
}

export const openinference: ConventionReader & {
  valueInputs(span: SpanData): Found | undefined;
  valueOutputs(span: SpanData): Found | undefined;
  messageInputs(span: SpanData): Found | undefined;
  messageOutputs(span: SpanData): Found | undefined;
} = {
  name: 'openinference',
  detect: (span) =>
    Object.hasOwn(span.attributes, 'openinference.span.kind') ||
    Object.keys(span.attributes).some(
      (k) => k.startsWith('llm.input_messages.') || k.startsWith('retrieval.documents.'),
    ),
  spanType: (span) => spanTypeFromName(attrString(span.attributes, 'openinference.span.kind'), KIND_TYPES),
  valueInputs: (span) => value(span.attributes, 'input'),
  valueOutputs: (span) => value(span.attributes, 'output'),
  messageInputs: (span) => messages(span.attributes, 'llm.input_messages'),
  messageOutputs: (span) => messages(span.attributes, 'llm.output_messages'),
  inputs: (span) => value(span.attributes, 'input') ?? messages(span.attributes, 'llm.input_messages'),
  outputs: (span) => value(span.attributes, 'output') ?? messages(span.attributes, 'llm.output_messages'),
  usage,
  documents,
  query: (span) => value(span.attributes, 'input'),
};

/** OpenInference tags (`tag.tags`, a list of strings). */
export function openinferenceTags(span: SpanData): string[] {
  return stringList(span.attributes['tag.tags']) ?? [];
}
