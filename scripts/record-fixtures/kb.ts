// The tiny knowledge base and conversation every recorded app runs (shared with the Python apps
// through kb.json), so every convention's fixture describes the same RAG flow.
import { readFileSync } from 'node:fs';

export interface KbDocument {
  id: string;
  content: string;
  score: number;
  metadata: Record<string, string>;
}

export interface KbTurn {
  question: string;
  docs: string[];
  /** null: the model server refuses the call, so the trace ends in an error. */
  answer: string | null;
  stream: boolean;
}

export interface Kb {
  session: string;
  user: string;
  systemPrompt: string;
  documents: KbDocument[];
  turns: KbTurn[];
}

export const KB: Kb = JSON.parse(readFileSync(new URL('./kb.json', import.meta.url), 'utf8')) as Kb;

export const MODEL = 'gpt-4o-mini';

/** The retriever: a fixed lookup, so the recorded documents never change. */
export function retrieve(question: string): KbDocument[] {
  const turn = KB.turns.find((t) => t.question === question);
  const ids = turn?.docs ?? [];
  return KB.documents.filter((d) => ids.includes(d.id));
}

export function systemMessage(docs: readonly KbDocument[]): string {
  return `${KB.systemPrompt}\n\nContext:\n${docs.map((d) => d.content).join('\n')}`;
}

export function chatMessages(
  question: string,
  docs: readonly KbDocument[],
): { role: 'system' | 'user'; content: string }[] {
  return [
    { role: 'system', content: systemMessage(docs) },
    { role: 'user', content: question },
  ];
}

/** Token counts the fake model server reports: whitespace-separated words. */
export function countTokens(text: string): number {
  const t = text.trim();
  return t === '' ? 0 : t.split(/\s+/).length;
}
