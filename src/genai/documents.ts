// Turns whatever a retriever span returned into RetrievedDocument[]: MLflow's
// `[{page_content, metadata, id}]`, LangChain-style `pageContent`, plain `{content|text, id,
// score}` objects (GenAI semconv, Langfuse apps), bare strings, or an object wrapping such a list.
import type { RetrievedDocument } from './types.ts';
import { isRecord, parseJsonLoose, stringify, toNumber } from './values.ts';

const CONTENT_KEYS = ['page_content', 'pageContent', 'content', 'text', 'document', 'chunk'] as const;
const ID_KEYS = ['id', 'doc_id', 'document_id', 'documentId'] as const;
const SCORE_KEYS = ['score', 'relevance_score', 'similarity', 'distance_score'] as const;
const LIST_KEYS = ['documents', 'docs', 'results', 'retrieved_documents', 'matches'] as const;

function metadataOf(v: unknown): Record<string, unknown> | undefined {
  const m = typeof v === 'string' ? parseJsonLoose(v) : v;
  return isRecord(m) ? m : undefined;
}

/** One document from a list item; bare strings are the content. */
export function toDocument(item: unknown): RetrievedDocument | undefined {
  if (typeof item === 'string') return { content: item };
  if (!isRecord(item)) return undefined;
  const doc: RetrievedDocument = { content: '' };
  let hasContent = false;
  for (const k of CONTENT_KEYS) {
    const c = item[k];
    if (typeof c === 'string') {
      doc.content = c;
      hasContent = true;
      break;
    }
  }
  if (!hasContent) doc.content = stringify(item);
  for (const k of ID_KEYS) {
    const id = item[k];
    if (typeof id === 'string' || typeof id === 'number') {
      doc.id = String(id);
      break;
    }
  }
  const metadata = metadataOf(item.metadata);
  for (const k of SCORE_KEYS) {
    const s = toNumber(item[k]);
    if (s !== undefined) {
      doc.score = s;
      break;
    }
  }
  if (doc.score === undefined && metadata) {
    const s = toNumber(metadata.score);
    if (s !== undefined) doc.score = s;
  }
  if (metadata) doc.metadata = metadata;
  return doc;
}

/** Documents from a retriever's output value, or undefined when it holds no list of documents. */
export function normalizeDocuments(value: unknown): RetrievedDocument[] | undefined {
  const v = typeof value === 'string' ? parseJsonLoose(value) : value;
  let list: unknown[] | undefined;
  if (Array.isArray(v)) list = v;
  else if (isRecord(v)) {
    for (const k of LIST_KEYS) {
      if (Array.isArray(v[k])) {
        list = v[k] as unknown[];
        break;
      }
    }
  }
  if (!list) return undefined;
  const out: RetrievedDocument[] = [];
  for (const item of list) {
    const d = toDocument(item);
    if (d) out.push(d);
  }
  return out;
}
