// Reading a judge model's answer: find the `{result, rationale}` JSON object in whatever the
// model wrapped it in (code fences, prose before or after, a <think> block), then turn
// `result` into the value the judge promised (yes/no, boolean, number, string or one of a
// set of labels). Anything that does not fit becomes a ScorecarError with a stable code.
import { ScorecarError } from '../../util/index.ts';

export interface JudgeAnswer {
  result: unknown;
  rationale?: string;
}

export type AnswerSpec =
  | { kind: 'yes_no' }
  | { kind: 'bool' }
  | { kind: 'number' }
  | { kind: 'string' }
  | { kind: 'choice'; choices: string[] };

const MAX_SNIPPET = 200;

function snippet(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > MAX_SNIPPET ? `${t.slice(0, MAX_SNIPPET)}…` : t;
}

/** Every balanced {...} span of text, outermost first, scanning strings so braces in them do not count. */
function objectCandidates(text: string): string[] {
  const out: string[] = [];
  for (let start = text.indexOf('{'); start >= 0 && out.length < 20; start = text.indexOf('{', start + 1)) {
    let depth = 0;
    let inString = false;
    let escaped = false;
    for (let i = start; i < text.length; i++) {
      const c = text[i];
      if (inString) {
        if (escaped) escaped = false;
        else if (c === '\\') escaped = true;
        else if (c === '"') inString = false;
        continue;
      }
      if (c === '"') inString = true;
      else if (c === '{') depth++;
      else if (c === '}') {
        depth--;
        if (depth === 0) {
          out.push(text.slice(start, i + 1));
          break;
        }
      }
    }
  }
  return out;
}

function tryObject(candidate: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(candidate);
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // not JSON: the caller tries the next candidate
  }
  return undefined;
}

/** Looks a key up case-insensitively (models sometimes answer `Result` or `RATIONALE`). */
function field(obj: Record<string, unknown>, name: string): { found: boolean; value: unknown } {
  if (Object.hasOwn(obj, name)) return { found: true, value: obj[name] };
  for (const k of Object.keys(obj))
    if (k.trim().toLowerCase() === name) return { found: true, value: obj[k] };
  return { found: false, value: undefined };
}

/**
 * Extracts `{result, rationale}` from a model's text. Throws JUDGE_PARSE_ERROR when no JSON
 * object can be found and JUDGE_INVALID_RESPONSE when the JSON has no `result`.
 */
export function parseJudgeAnswer(text: string): JudgeAnswer {
  // Reasoning models may think aloud first; their scratchpad can hold stray braces.
  const cleaned = text.replace(/<think(?:ing)?>[\s\S]*?<\/think(?:ing)?>/gi, '').trim();
  const candidates: string[] = [cleaned];
  for (const m of cleaned.matchAll(/```[a-zA-Z0-9_-]*\s*\n?([\s\S]*?)```/g)) candidates.push(m[1]!.trim());
  candidates.push(...objectCandidates(cleaned));
  let firstObject: Record<string, unknown> | undefined;
  for (const c of candidates) {
    const obj = tryObject(c);
    if (!obj) continue;
    firstObject ??= obj;
    const result = field(obj, 'result');
    if (!result.found) continue;
    const answer: JudgeAnswer = { result: result.value };
    const rationale = field(obj, 'rationale');
    if (rationale.found && rationale.value !== null && rationale.value !== undefined) {
      answer.rationale =
        typeof rationale.value === 'string' ? rationale.value : JSON.stringify(rationale.value);
    }
    return answer;
  }
  if (firstObject) {
    throw new ScorecarError(
      'JUDGE_INVALID_RESPONSE',
      `judge answer has no "result" field (keys: ${Object.keys(firstObject).slice(0, 10).join(', ') || 'none'}): ${snippet(text)}`,
    );
  }
  throw new ScorecarError('JUDGE_PARSE_ERROR', `judge answer is not a JSON object: ${snippet(text)}`);
}

const YES = new Set(['yes', 'y', 'true', 't', 'pass', 'passed', '1', 'correct', 'ok']);
const NO = new Set(['no', 'n', 'false', 'f', 'fail', 'failed', '0', 'incorrect']);

/** yes/no synonyms (true/pass/1/y → yes, false/fail/0/n → no); undefined when it is neither. */
export function normaliseYesNo(value: unknown): 'yes' | 'no' | undefined {
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'number') return value === 1 ? 'yes' : value === 0 ? 'no' : undefined;
  if (typeof value !== 'string') return undefined;
  const v = value
    .trim()
    .toLowerCase()
    .replace(/^["'`[\s]+|["'`\]\s.!]+$/g, '');
  if (YES.has(v)) return 'yes';
  if (NO.has(v)) return 'no';
  return undefined;
}

/** Converts `result` into the value promised by the answer spec, or throws JUDGE_INVALID_RESPONSE. */
export function coerceResult(
  spec: AnswerSpec,
  result: unknown,
): { value: string | number | boolean; label?: string } {
  const bad = (expected: string): ScorecarError =>
    new ScorecarError(
      'JUDGE_INVALID_RESPONSE',
      `judge result ${snippet(JSON.stringify(result) ?? String(result))} is not ${expected}`,
    );
  switch (spec.kind) {
    case 'yes_no': {
      const v = normaliseYesNo(result);
      if (v === undefined) throw bad('"yes" or "no"');
      return { value: v };
    }
    case 'bool': {
      const v = normaliseYesNo(result);
      if (v === undefined) throw bad('a boolean');
      return { value: v === 'yes' };
    }
    case 'number': {
      if (typeof result === 'number' && Number.isFinite(result)) return { value: result };
      if (typeof result === 'string' && /^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$/.test(result)) {
        return { value: Number(result) };
      }
      throw bad('a number');
    }
    case 'string': {
      if (typeof result === 'string') return { value: result };
      if (typeof result === 'number' || typeof result === 'boolean') return { value: String(result) };
      throw bad('a string');
    }
    case 'choice': {
      if (typeof result !== 'string' && typeof result !== 'number')
        throw bad(`one of ${spec.choices.join(', ')}`);
      const v = String(result)
        .trim()
        .replace(/^\[\[\s*|\s*\]\]$/g, '')
        .replace(/^["'`]+|["'`.]+$/g, '')
        .trim()
        .toLowerCase();
      const label = spec.choices.find((c) => c.toLowerCase() === v);
      if (label === undefined)
        throw bad(`one of the choices ${spec.choices.map((c) => `"${c}"`).join(', ')}`);
      return { value: label, label };
    }
  }
}
