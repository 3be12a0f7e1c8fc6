// Code scorers, host side: the ctx handed to the sandbox, and the reading of what the scorer
// returned (boolean, number, string, a feedback object {name?, value, rationale?, metadata?},
// or a list of them) into feedbacks. MLflow's aggregations over numeric results live here too.
import { sourceMayReadTrace, type TraceView, toJsonSafe, traceViewJsonText } from '../../genai/index.ts';
import type { Aggregation } from '../../definitions/index.ts';

import { ScorecarError } from '../../util/index.ts';

export interface CodeFeedback {
  name: string;
  value: string | number | boolean;
  rationale?: string;
  metadata: Record<string, string>;
}

const MAX_FEEDBACKS = 100;
const MAX_NAME = 200;

/**
 * Whether a scorer's source could observe ctx.trace (genai owns the JSON form of a view and this
 * test, so the selection stage can build the text off the event loop for the scorers that read it).
 */
export { sourceMayReadTrace };

/** The JSON the sandbox turns into ctx (inputs, outputs, expectations) and ctx.trace. */
export function sandboxInput(view: TraceView, withTrace = true): { ctxJson: string; traceJson: string | null } {
  const traceJson = withTrace ? traceViewJsonText(view) : null;
  const ctxJson = JSON.stringify({
    inputs: toJsonSafe(view.inputs),
    outputs: toJsonSafe(view.outputs),
    expectations: toJsonSafe(view.expectations ?? {}),
  });
  return { ctxJson, traceJson };
}

function invalid(message: string): ScorecarError {
  return new ScorecarError('CODE_SCORER_INVALID_RESULT', message);
}

function reviveMarkers(_k: string, x: unknown): unknown {
  if (x !== null && typeof x === 'object' && !Array.isArray(x)) {
    const o = x as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && typeof o.__scorecarNonFinite === 'string') return Number(o.__scorecarNonFinite);
    if (keys.length === 1 && o.__scorecarUndefined === true) return undefined;
  }
  return x;
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'number') return String(v);
  return `a ${typeof v}`;
}

function scalar(v: unknown, where: string): string | number | boolean {
  if (typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw invalid(`${where} is ${v}, not a finite number`);
    return v;
  }
  throw invalid(
    `${where} is ${describeValue(v)}; expected a boolean, a number, a string or a feedback {name?, value, rationale?, metadata?}`,
  );
}

function metadataOf(v: unknown, where: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(`${where}.metadata must be an object`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (x === undefined) continue;
    out[k] =
      typeof x === 'string'
        ? x
        : typeof x === 'number' && !Number.isFinite(x)
          ? String(x)
          : JSON.stringify(x);
  }
  return out;
}

function feedbackOf(item: unknown, defaultName: string, where: string): CodeFeedback {
  if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
    const o = item as Record<string, unknown>;
    if (!Object.hasOwn(o, 'value')) {
      throw invalid(
        `${where} is an object without a "value" field; a feedback is {name?, value, rationale?, metadata?}`,
      );
    }
    let name = defaultName;
    if (o.name !== undefined && o.name !== null) {
      if (typeof o.name !== 'string' || o.name.trim() === '')
        throw invalid(`${where}.name must be a non-empty string`);
      if (o.name.length > MAX_NAME) throw invalid(`${where}.name is longer than ${MAX_NAME} characters`);
      name = o.name.trim();
    }
    const fb: CodeFeedback = {
      name,
      value: scalar(o.value, `${where}.value`),
      metadata: metadataOf(o.metadata, where),
    };
    if (o.rationale !== undefined && o.rationale !== null)
      fb.rationale = typeof o.rationale === 'string' ? o.rationale : JSON.stringify(o.rationale);
    return fb;
  }
  return { name: defaultName, value: scalar(item, where), metadata: {} };
}

/**
 * Reads the sandbox's JSON (`{"v": <returned value>}`) into feedbacks. Names default to the
 * scorer's name; repeated names in a list get `/2`, `/3`... so each keeps its own assessment id.
 */
export function readCodeResult(json: string, scorerName: string): CodeFeedback[] {
  let payload: unknown;
  try {
    payload = JSON.parse(json, reviveMarkers);
  } catch {
    throw invalid('the result is not valid JSON');
  }
  const v = (payload as { v?: unknown } | null)?.v;
  let out: CodeFeedback[];
  if (Array.isArray(v)) {
    if (v.length === 0) throw invalid('the scorer returned an empty list');
    if (v.length > MAX_FEEDBACKS)
      throw invalid(`the scorer returned ${v.length} feedbacks; at most ${MAX_FEEDBACKS} are allowed`);
    out = v.map((item, i) => {
      if (Array.isArray(item)) throw invalid(`result[${i}] is a nested list`);
      return feedbackOf(item, scorerName, `result[${i}]`);
    });
  } else {
    out = [feedbackOf(v, scorerName, 'the result')];
  }
  const seen = new Map<string, number>();
  for (const fb of out) {
    const n = (seen.get(fb.name) ?? 0) + 1;
    seen.set(fb.name, n);
    if (n > 1) fb.name = `${fb.name}/${n}`;
  }
  return out;
}

/**
 * MLflow's aggregations over numeric scorer values: mean, min, max, median, variance (population,
 * as numpy.var) and p90 (linear interpolation, as numpy.percentile). NaN for an empty list.
 */
export function aggregate(values: number[], kind: Aggregation): number {
  const xs = values.filter((x) => Number.isFinite(x));
  if (xs.length === 0) return Number.NaN;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  switch (kind) {
    case 'mean':
      return mean;
    case 'min':
      return xs.reduce((a, b) => Math.min(a, b));
    case 'max':
      return xs.reduce((a, b) => Math.max(a, b));
    case 'variance':
      return xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length;
    case 'median':
      return percentile(xs, 50);
    case 'p90':
      return percentile(xs, 90);
  }
}

function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}
