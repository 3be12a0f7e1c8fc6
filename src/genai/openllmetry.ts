// OpenLLMetry / Traceloop (@traceloop/ai-semantic-conventions): workflow, task, agent and tool
// spans carry `traceloop.span.kind` and `traceloop.entity.input|output` (JSON; inputs are
// `{"args":[...],"kwargs":{...}}`); association properties (session, user, anything the app
// chose) are `traceloop.association.properties.<key>` on every span of the workflow; LLM spans
// use GenAI semconv attributes (read by semconv.ts) plus `llm.request.type`; vector DB spans
// report results as `db.query.result` events (`db.query.result.id|score|document|metadata`).
import type { SpanData } from '../wire/index.ts';
import { type ConventionReader, type SpanType, spanTypeFromName } from './convention.ts';
import type { RetrievedDocument } from './types.ts';
import { attrJson, attrString, parseJsonLoose, toNumber } from './values.ts';

export const ASSOCIATION_PREFIX = 'traceloop.association.properties.';
const SESSION_KEYS = ['session_id', 'sessionId', 'session'];
const USER_KEYS = ['user_id', 'userId', 'user'];

const KIND_TYPES: Record<string, SpanType> = {
  workflow: 'CHAIN',
  task: 'CHAIN',
  agent: 'AGENT',
  tool: 'TOOL',
  session: 'CHAIN',
  unknown: 'UNKNOWN',
};
const REQUEST_TYPES: Record<string, SpanType> = {
  chat: 'CHAT_MODEL',
  completion: 'LLM',
  embedding: 'EMBEDDING',
  rerank: 'RERANKER',
};
const RESULT_EVENT = 'db.query.result';

function association(span: SpanData, keys: readonly string[]): string | undefined {
  for (const k of keys) {
    const v = attrString(span.attributes, ASSOCIATION_PREFIX + k);
    if (v !== undefined) return v;
  }
  return undefined;
}

function documents(span: SpanData): RetrievedDocument[] | undefined {
  const docs: RetrievedDocument[] = [];
  for (const e of span.events) {
    if (e.name !== RESULT_EVENT) continue;
    const a = e.attributes;
    const content = a['db.query.result.document'];
    const doc: RetrievedDocument = { content: typeof content === 'string' ? content : '' };
    const id = a['db.query.result.id'];
    if (typeof id === 'string' || typeof id === 'number') doc.id = String(id);
    const score = toNumber(a['db.query.result.score']);
    if (score !== undefined) doc.score = score;
    const md = a['db.query.result.metadata'];
    const meta = typeof md === 'string' ? parseJsonLoose(md) : undefined;
    if (meta !== null && typeof meta === 'object' && !Array.isArray(meta))
      doc.metadata = meta as Record<string, unknown>;
    docs.push(doc);
  }
  return docs.length ? docs : undefined;
}

export const openllmetry: ConventionReader = {
  name: 'openllmetry',
  detect: (span) =>
    Object.keys(span.attributes).some((k) => k.startsWith('traceloop.')) ||
    span.events.some((e) => e.name === RESULT_EVENT),
  spanType: (span) =>
    spanTypeFromName(attrString(span.attributes, 'traceloop.span.kind'), KIND_TYPES) ??
    spanTypeFromName(attrString(span.attributes, 'llm.request.type'), REQUEST_TYPES) ??
    (span.events.some((e) => e.name === RESULT_EVENT) ? 'RETRIEVER' : undefined),
  inputs: (span) => attrJson(span.attributes, 'traceloop.entity.input'),
  outputs: (span) => attrJson(span.attributes, 'traceloop.entity.output'),
  sessionId: (span) => association(span, SESSION_KEYS),
  userId: (span) => association(span, USER_KEYS),
  documents,
};
