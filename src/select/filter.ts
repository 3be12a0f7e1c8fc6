// Filter strings: MLflow's trace search syntax, compiled once into a predicate over a TraceView.
// A scorer's filter decides which completed traces it sees (before sampling); a bad filter is
// refused at registration with the position and the reason (FilterSyntaxError, INVALID_FILTER).
//
// Language (MLflow mlflow/utils/search_utils.py SearchTraceUtils, 3.x; differences marked *):
//   filter   := <empty> | cond (AND cond)*          AND only; OR, NOT <cond> and ( ) groups refused
//   cond     := key op literal | key [NOT] IN (literal, ...) | key IS [NOT] NULL
//   literal  := 'single' | "double" quoted string | number (-1, 2.5, 1e3)
//   keywords (AND, LIKE, IN, IS, NULL, ...) are case-insensitive; key prefixes and names are not.
// Keys (a key is dotted; `backticks` quote a segment that has dots or other characters):
//   trace.<k>, attributes.<k>, attribute.<k>, or a bare <k> — MLflow's trace attributes, NOT span
//   attributes (in MLflow `attributes.status` is `trace.status`; span attributes are always
//   `span.attributes.<k>`):
//     status             OK | ERROR | IN_PROGRESS (valid, never matches a completed trace)
//     name               trace name (root span name)
//     timestamp_ms, execution_time_ms, end_time_ms (aliases timestamp, execution_time, end_time):
//                        integer milliseconds as MLflow stores them (start floored; end_time_ms =
//                        timestamp_ms + execution_time_ms); numeric literals only
//     request_id         the trace id; matches the hex id or its MLflow form tr-<hex>
//     run_id             = metadata.`mlflow.sourceRun`
//     text               = span.content (full-text LIKE / ILIKE over any span)
//     client_request_id, prompt: valid in MLflow but refused here (OTLP traces do not carry them)
//   tag.<k> / tags.<k>                  view.tags (`mlflow.traceName` falls back to the trace name)
//   metadata.<k> / request_metadata.<k> view.metadata (`mlflow.trace.session` / `mlflow.trace.user`
//                                       fall back to the view's session / user id)
//   span.name, span.type, span.status (UNSET | OK | ERROR), span.content, span.attributes.<k>:
//     true when ANY span matches.
//   feedback.*, expectation.*, issue.*: refused (a trace is filtered before it has assessments).
// Operators per key (MLflow's sets, plus the * extensions):
//   numeric trace keys       = != > >= < <=
//   status, name, request_id = != LIKE ILIKE RLIKE IN NOT IN
//   span.name/type/status    = != LIKE ILIKE RLIKE IN NOT IN
//   text, span.content       LIKE ILIKE
//   tag, metadata            = != LIKE ILIKE RLIKE IS NULL IS NOT NULL, *IN / NOT IN, *> >= < <=
//   span.attributes.<k>      = != LIKE ILIKE RLIKE IN NOT IN, *> >= < <=, *IS NULL / IS NOT NULL
// Values: strings compare as strings. *A numeric literal on a tag, metadata entry or span attribute
//   compares numerically: attribute numbers as they are, strings that are decimal numbers parsed,
//   anything else never matches. > >= < <= need a numeric literal; LIKE/ILIKE/RLIKE a string.
//   A span attribute is compared through its string form (numbers as JS prints them, booleans
//   true/false, arrays and maps as JSON, bytes as hex); a string holding a JSON-encoded string
//   (MLflow's own convention encodes every attribute value as JSON: mlflow.spanType = "\"LLM\"")
//   also matches through its decoded value, so span.attributes.`mlflow.spanType` = 'LLM' works.
// LIKE / ILIKE: % any run, _ one character, anchored; LIKE case-sensitive, ILIKE not; a backslash
//   escapes the next character (\% \_ \\), as in PostgreSQL. Matching is a non-backtracking
//   wildcard scan (O(len * pattern)). RLIKE: a regular expression in JavaScript syntax, found
//   anywhere unless anchored, case-sensitive, ^ $ at the ends of the whole value; read as Unicode
//   code points (as RegExp's u flag does: `.` is one emoji). It runs on sender-controlled values,
//   so it runs on a linear-time automaton matcher (regex.ts), not on V8's backtracking RegExp:
//   what that matcher cannot run in linear time — backreferences, lookaround, atomic groups,
//   possessive quantifiers, inline flags — is refused at registration, at its position.
// Strings: the quote is written doubled ('it''s') or backslash-escaped, \\ is one backslash, any
//   other backslash is kept (so '\%' reaches LIKE as an escaped %).
// Missing values follow SQL: a comparison on a missing tag/metadata/attribute is false, so
//   tag.env != 'prod' does not match a trace without an env tag (use IS NULL for that); for span
//   keys, != and NOT IN ask "is there a span whose value differs", not "no span has it".
import type { AttrValue, SpanData } from '../wire/index.ts';
import type { TraceView } from '../genai/index.ts';
import {
  type FilterClause,
  type FilterLiteral,
  FilterSyntaxError,
  parseFilter,
  scanQuoted,
} from './filter-parse.ts';
import { compileRegex, type LinearRegex, RegexSyntaxError } from './regex.ts';

export interface CompiledFilter {
  readonly text: string;
  /** The parsed conditions (AND-ed); empty for a match-all filter. */
  readonly clauses: readonly FilterClause[];
  matches(view: TraceView): boolean;
  /**
   * Work done so far by this filter's RLIKE matchers, in steps (see LinearRegex.steps): lets a
   * test show that matching stays linear in the input without timing it. A function, not state
   * on the object, because the registry deep-freezes what it publishes.
   */
  regexSteps(): number;
}

type Predicate = (view: TraceView) => boolean;
type ValueTest = (v: AttrValue) => boolean;
type FormsOf = (v: AttrValue) => readonly string[];

const ANY_ONE = -1;
const ANY_RUN = -2;

/** A compiled LIKE pattern: code units, ANY_ONE for _ and ANY_RUN for %. */
function compileLike(pattern: string, literal: FilterLiteral, text: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern.charCodeAt(i);
    if (c === 92 /* \ */) {
      if (i + 1 >= pattern.length) {
        throw new FilterSyntaxError(
          text,
          literal.position,
          'invalid LIKE pattern',
          'it must not end with an escape character (\\)',
        );
      }
      out.push(pattern.charCodeAt(++i));
    } else if (c === 37 /* % */) {
      if (out[out.length - 1] !== ANY_RUN) out.push(ANY_RUN);
    } else if (c === 95 /* _ */) {
      out.push(ANY_ONE);
    } else out.push(c);
  }
  return out;
}

function isHigh(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function isLow(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/** Wildcard match that only ever backtracks to the last %, so it cannot blow up. */
function likeMatch(pat: readonly number[], s: string): boolean {
  const n = s.length;
  const m = pat.length;
  let si = 0;
  let pi = 0;
  let starP = -1;
  let starS = 0;
  while (si < n) {
    const p = pi < m ? pat[pi]! : 0;
    if (pi < m && p === ANY_ONE) {
      // One character: a surrogate pair counts as one.
      si += isHigh(s.charCodeAt(si)) && si + 1 < n && isLow(s.charCodeAt(si + 1)) ? 2 : 1;
      pi++;
    } else if (pi < m && p === ANY_RUN) {
      starP = pi++;
      starS = si;
    } else if (pi < m && p === s.charCodeAt(si)) {
      si++;
      pi++;
    } else if (starP >= 0) {
      starS += isHigh(s.charCodeAt(starS)) && starS + 1 < n && isLow(s.charCodeAt(starS + 1)) ? 2 : 1;
      si = starS;
      pi = starP + 1;
    } else return false;
  }
  while (pi < m && pat[pi] === ANY_RUN) pi++;
  return pi === m;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return hex(value);
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** String forms a value is compared through (see the header). */
function attrForms(v: AttrValue): readonly string[] {
  if (typeof v === 'string') {
    const n = v.length;
    if (n >= 2 && v.charCodeAt(0) === 34 && v.charCodeAt(n - 1) === 34) {
      try {
        const decoded: unknown = JSON.parse(v);
        if (typeof decoded === 'string') return [v, decoded];
      } catch {
        // not JSON: compared as written
      }
    }
    return [v];
  }
  if (typeof v === 'number' || typeof v === 'boolean') return [String(v)];
  if (v instanceof Uint8Array) return [hex(v)];
  return [JSON.stringify(v, jsonReplacer)];
}

const DECIMAL = /^\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*$/;

/** The number a value compares as under a numeric literal, if any. */
function numOf(v: AttrValue): number | undefined {
  if (typeof v === 'number') return Number.isNaN(v) ? undefined : v;
  if (typeof v === 'string' && DECIMAL.test(v)) return Number(v);
  return undefined;
}

/** Compiles an RLIKE pattern; a refusal points at the offending construct in the filter string. */
function compileRlike(lit: FilterLiteral, text: string): LinearRegex {
  try {
    return compileRegex(lit.value as string);
  } catch (e) {
    if (!(e instanceof RegexSyntaxError)) throw e;
    const offsets: number[] = [];
    scanQuoted(text, lit.position, offsets);
    const position = offsets[e.index] ?? lit.position;
    if (e.unsupported) throw new FilterSyntaxError(text, position, `RLIKE: ${e.message}`, e.hint);
    throw new FilterSyntaxError(
      text,
      position,
      'invalid regular expression',
      e.hint ? `${e.message}: ${e.hint}` : e.message,
    );
  }
}

function buildTest(clause: FilterClause, formsOf: FormsOf, text: string, regexes: LinearRegex[]): ValueTest {
  const lits = clause.values;
  const eq = (v: AttrValue, l: FilterLiteral, forms: () => readonly string[]): boolean =>
    l.kind === 'number' ? numOf(v) === l.value : forms().includes(l.value);
  const neq = (v: AttrValue, l: FilterLiteral, forms: () => readonly string[]): boolean => {
    if (l.kind === 'number') {
      const n = numOf(v);
      return n !== undefined && n !== l.value;
    }
    return !forms().includes(l.value);
  };
  const lazyForms = (v: AttrValue): (() => readonly string[]) => {
    let cached: readonly string[] | undefined;
    return () => {
      cached ??= formsOf(v);
      return cached;
    };
  };
  const lit = lits[0]!;
  switch (clause.op) {
    case '=':
      return (v) => eq(v, lit, lazyForms(v));
    case '!=':
      return (v) => neq(v, lit, lazyForms(v));
    case 'IN':
      return (v) => {
        const forms = lazyForms(v);
        return lits.some((l) => eq(v, l, forms));
      };
    case 'NOT IN':
      return (v) => {
        const forms = lazyForms(v);
        return lits.every((l) => neq(v, l, forms));
      };
    case '>':
    case '>=':
    case '<':
    case '<=': {
      const bound = lit.value as number;
      const op = clause.op;
      return (v) => {
        const n = numOf(v);
        if (n === undefined) return false;
        return op === '>' ? n > bound : op === '>=' ? n >= bound : op === '<' ? n < bound : n <= bound;
      };
    }
    case 'LIKE':
    case 'ILIKE': {
      const fold = clause.op === 'ILIKE';
      const raw = lit.value as string;
      const pat = compileLike(fold ? raw.toLowerCase() : raw, lit, text);
      return fold
        ? (v) => formsOf(v).some((f) => likeMatch(pat, f.toLowerCase()))
        : (v) => formsOf(v).some((f) => likeMatch(pat, f));
    }
    case 'RLIKE': {
      const re = compileRlike(lit, text);
      regexes.push(re);
      return (v) => formsOf(v).some((f) => re.test(f));
    }
    case 'IS NULL':
    case 'IS NOT NULL':
      // Handled by the callers, which see whether the value exists.
      return () => false;
  }
}

const SPAN_STATUS = ['UNSET', 'OK', 'ERROR'];

const contentCache = new WeakMap<SpanData, string>();

/** The text `span.content` / `trace.text` search: the span's name, attributes and events as JSON. */
function spanContent(span: SpanData): string {
  let s = contentCache.get(span);
  if (s === undefined) {
    s = JSON.stringify(
      {
        name: span.name,
        attributes: span.attributes,
        events: span.events.map((e) => ({ name: e.name, attributes: e.attributes })),
      },
      jsonReplacer,
    );
    contentCache.set(span, s);
  }
  return s;
}

function own(record: Record<string, string>, key: string): string | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Trace-level value of a clause's key, or undefined when the trace has none. */
type TraceGetter = (view: TraceView) => AttrValue | undefined;
/** Value of a clause's key on span i, or undefined when that span has none. */
type SpanGetter = (view: TraceView, i: number) => AttrValue | undefined;

const asIs: FormsOf = (v) => [typeof v === 'string' ? v : String(v)];

function compileClause(clause: FilterClause, text: string, regexes: LinearRegex[]): Predicate {
  const f = clause.field;
  let traceGet: TraceGetter | undefined;
  let spanGet: SpanGetter | undefined;
  let formsOf: FormsOf = asIs;
  switch (f.scope) {
    case 'trace':
      switch (f.key) {
        case 'status':
          traceGet = (v) => v.status;
          break;
        case 'name':
          traceGet = (v) => v.name;
          break;
        case 'timestamp_ms':
          traceGet = (v) => Math.floor(v.startTimeMs);
          break;
        case 'execution_time_ms':
          traceGet = (v) => Math.floor(v.executionTimeMs);
          break;
        case 'end_time_ms':
          traceGet = (v) => Math.floor(v.startTimeMs) + Math.floor(v.executionTimeMs);
          break;
        case 'request_id':
          traceGet = (v) => v.traceId;
          formsOf = (v) => [String(v), `tr-${String(v)}`];
          break;
        case 'text':
          spanGet = (v, i) => spanContent(v.spans[i]!);
          break;
      }
      break;
    case 'tag': {
      const key = f.key;
      traceGet = (v) => own(v.tags, key) ?? (key === 'mlflow.traceName' ? v.name : undefined);
      break;
    }
    case 'metadata': {
      const key = f.key;
      traceGet = (v) =>
        own(v.metadata, key) ??
        (key === 'mlflow.trace.session' ? v.sessionId : key === 'mlflow.trace.user' ? v.userId : undefined);
      break;
    }
    case 'span':
      switch (f.key) {
        case 'name':
          spanGet = (v, i) => v.spans[i]!.name;
          break;
        case 'type':
          spanGet = (v, i) => v.spanTypes[i] ?? 'UNKNOWN';
          break;
        case 'status':
          spanGet = (v, i) => SPAN_STATUS[v.spans[i]!.status.code] ?? 'UNSET';
          break;
        case 'content':
          spanGet = (v, i) => spanContent(v.spans[i]!);
          break;
      }
      break;
    case 'span.attributes': {
      const key = f.key;
      spanGet = (v, i) => {
        const attrs = v.spans[i]!.attributes;
        return Object.hasOwn(attrs, key) ? attrs[key] : undefined;
      };
      formsOf = attrForms;
      break;
    }
  }
  const op = clause.op;
  const test = buildTest(clause, formsOf, text, regexes);
  if (traceGet) {
    const get = traceGet;
    if (op === 'IS NULL') return (view) => get(view) == null;
    if (op === 'IS NOT NULL') return (view) => get(view) != null;
    return (view) => {
      const value = get(view);
      return value != null && test(value);
    };
  }
  const get = spanGet!;
  const anySpan = (view: TraceView, pred: (value: AttrValue) => boolean): boolean => {
    const n = view.spans.length;
    for (let i = 0; i < n; i++) {
      const value = get(view, i);
      if (value != null && pred(value)) return true;
    }
    return false;
  };
  const present = (): boolean => true;
  if (op === 'IS NULL') return (view) => !anySpan(view, present);
  if (op === 'IS NOT NULL') return (view) => anySpan(view, present);
  return (view) => anySpan(view, test);
}

const MATCH_ALL = (): boolean => true;

/**
 * Parses a filter string once into an evaluator. Empty or blank text matches every trace.
 * Throws FilterSyntaxError (code INVALID_FILTER, `position` = 0-based offset) for bad text.
 */
export function compileFilter(text: string): CompiledFilter {
  const clauses = parseFilter(text);
  const regexes: LinearRegex[] = [];
  const preds = clauses.map((c) => compileClause(c, text, regexes));
  let matches: (view: TraceView) => boolean;
  if (preds.length === 0) matches = MATCH_ALL;
  else if (preds.length === 1) matches = preds[0]!;
  else
    matches = (view) => {
      for (const p of preds) if (!p(view)) return false;
      return true;
    };
  const regexSteps = (): number => regexes.reduce((sum, re) => sum + re.steps, 0);
  return { text, clauses, matches, regexSteps };
}
