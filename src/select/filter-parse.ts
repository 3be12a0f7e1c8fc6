// Parser for filter strings in MLflow's trace search syntax: text -> validated clause list.
// Every refusal is a FilterSyntaxError carrying the 0-based character position of the offending
// token and the reason. Evaluation lives in filter.ts; the accepted language is documented there.
import { MAX_FILTER_LENGTH } from '../definitions/index.ts';
import { ScorecarError } from '../util/index.ts';

/** A refused filter string: where (0-based character offset) and why. */
export class FilterSyntaxError extends ScorecarError {
  readonly position: number;
  readonly reason: string;
  readonly filter: string;

  constructor(filter: string, position: number, what: string, reason?: string) {
    const message = `${what} at position ${position}${reason ? `: ${reason}` : ''}`;
    super('INVALID_FILTER', message, { details: { position, filter } });
    this.name = 'FilterSyntaxError';
    this.position = position;
    this.reason = reason ?? what;
    this.filter = filter;
  }
}

export type FilterOp =
  | '='
  | '!='
  | '>'
  | '>='
  | '<'
  | '<='
  | 'LIKE'
  | 'ILIKE'
  | 'RLIKE'
  | 'IN'
  | 'NOT IN'
  | 'IS NULL'
  | 'IS NOT NULL';

export type FilterLiteral =
  | { readonly kind: 'string'; readonly value: string; readonly position: number }
  | { readonly kind: 'number'; readonly value: number; readonly text: string; readonly position: number };

export type TraceFieldKey =
  | 'status'
  | 'name'
  | 'timestamp_ms'
  | 'execution_time_ms'
  | 'end_time_ms'
  | 'request_id'
  | 'text';

export type SpanFieldKey = 'name' | 'type' | 'status' | 'content';

export type FilterField =
  | { readonly scope: 'trace'; readonly key: TraceFieldKey }
  | { readonly scope: 'tag'; readonly key: string }
  | { readonly scope: 'metadata'; readonly key: string }
  | { readonly scope: 'span'; readonly key: SpanFieldKey }
  | { readonly scope: 'span.attributes'; readonly key: string };

export interface FilterClause {
  readonly field: FilterField;
  /** The key as written, e.g. "metadata.`mlflow.user`". */
  readonly keyText: string;
  readonly op: FilterOp;
  /** None for IS [NOT] NULL, one for a comparison, one or more for IN / NOT IN. */
  readonly values: readonly FilterLiteral[];
  /** Where the key starts. */
  readonly position: number;
  readonly opPosition: number;
}

/** Longest filter string accepted; registration input, not a query language for documents. */
export { MAX_FILTER_LENGTH };

/** Trace statuses a filter may name; IN_PROGRESS is valid MLflow but never matches a completed trace. */
export const TRACE_STATUS_VALUES: readonly string[] = ['OK', 'ERROR', 'IN_PROGRESS'];
/** Span statuses (OTel status codes by name). */
export const SPAN_STATUS_VALUES: readonly string[] = ['UNSET', 'OK', 'ERROR'];

const NUMERIC_TRACE_KEYS: ReadonlySet<string> = new Set(['timestamp_ms', 'execution_time_ms', 'end_time_ms']);

// MLflow's trace attribute keys (SearchTraceUtils.VALID_SEARCH_ATTRIBUTE_KEYS) and what each
// means here. A string = valid in MLflow but not available in scorecar (the string says why).
const TRACE_KEYS: Record<string, FilterField | string> = {
  status: { scope: 'trace', key: 'status' },
  name: { scope: 'trace', key: 'name' },
  timestamp_ms: { scope: 'trace', key: 'timestamp_ms' },
  timestamp: { scope: 'trace', key: 'timestamp_ms' },
  execution_time_ms: { scope: 'trace', key: 'execution_time_ms' },
  execution_time: { scope: 'trace', key: 'execution_time_ms' },
  end_time_ms: { scope: 'trace', key: 'end_time_ms' },
  end_time: { scope: 'trace', key: 'end_time_ms' },
  request_id: { scope: 'trace', key: 'request_id' },
  text: { scope: 'trace', key: 'text' },
  run_id: { scope: 'metadata', key: 'mlflow.sourceRun' },
  client_request_id: 'client request ids are an MLflow client feature that OTLP traces do not carry',
  prompt: 'linked prompts are recorded by the MLflow tracking server, not carried by OTLP traces',
};
const TRACE_KEY_LIST = 'status, name, timestamp_ms, execution_time_ms, end_time_ms, request_id, run_id, text';

const PREFIXES: Record<string, 'trace' | 'tag' | 'metadata' | 'span' | 'assessment'> = {
  trace: 'trace',
  attribute: 'trace',
  attributes: 'trace',
  tag: 'tag',
  tags: 'tag',
  metadata: 'metadata',
  request_metadata: 'metadata',
  span: 'span',
  feedback: 'assessment',
  expectation: 'assessment',
  issue: 'assessment',
};

interface KeySegment {
  text: string;
  position: number;
}

type FieldKind = 'numericTrace' | 'stringTrace' | 'content' | 'keyValue' | 'spanField' | 'spanAttribute';

function kindOf(field: FilterField): FieldKind {
  switch (field.scope) {
    case 'trace':
      if (NUMERIC_TRACE_KEYS.has(field.key)) return 'numericTrace';
      return field.key === 'text' ? 'content' : 'stringTrace';
    case 'tag':
    case 'metadata':
      return 'keyValue';
    case 'span':
      return field.key === 'content' ? 'content' : 'spanField';
    case 'span.attributes':
      return 'spanAttribute';
  }
}

/** Keys with free-form values accept every operator. */
const EVERY_OP: readonly FilterOp[] = ['=', '!=', '>', '>=', '<', '<=', 'LIKE', 'ILIKE', 'RLIKE', 'IN', 'NOT IN', 'IS NULL', 'IS NOT NULL'];

const ALLOWED_OPS: Record<FieldKind, readonly FilterOp[]> = {
  numericTrace: ['=', '!=', '>', '>=', '<', '<='],
  stringTrace: ['=', '!=', 'LIKE', 'ILIKE', 'RLIKE', 'IN', 'NOT IN'],
  content: ['LIKE', 'ILIKE'],
  keyValue: EVERY_OP,
  spanField: ['=', '!=', 'LIKE', 'ILIKE', 'RLIKE', 'IN', 'NOT IN'],
  spanAttribute: EVERY_OP,
};

const ORDERING_OPS: ReadonlySet<FilterOp> = new Set(['>', '>=', '<', '<=']);
const PATTERN_OPS: ReadonlySet<FilterOp> = new Set(['LIKE', 'ILIKE', 'RLIKE']);

function isWordChar(c: string): boolean {
  return /[\p{L}\p{N}_$]/u.test(c);
}

class Parser {
  private pos = 0;
  private readonly src: string;

  constructor(src: string) {
    this.src = src;
  }

  private fail(position: number, what: string, reason?: string): never {
    throw new FilterSyntaxError(this.src, position, what, reason);
  }

  private skipWs(): void {
    while (this.pos < this.src.length && /\s/.test(this.src[this.pos]!)) this.pos++;
  }

  private eof(): boolean {
    return this.pos >= this.src.length;
  }

  /** The word (letters, digits, _, $) at the cursor, without consuming it. */
  private peekWord(): string {
    let end = this.pos;
    while (end < this.src.length && isWordChar(this.src[end]!)) end++;
    return this.src.slice(this.pos, end);
  }

  /** A short rendering of what is at `at`, for messages. */
  private tokenAt(at: number): string {
    const save = this.pos;
    this.pos = at;
    const word = this.peekWord();
    this.pos = save;
    if (word) return word.length > 30 ? `${word.slice(0, 30)}…` : word;
    const m = /^(!=|>=|<=|==|<>|\S)/.exec(this.src.slice(at));
    return m ? m[0] : '';
  }

  /** "unexpected ..." for whatever sits at `at`: a word, a string, a character or the end. */
  private unexpected(at: number): string {
    if (at >= this.src.length) return 'unexpected end of filter';
    const c = this.src[at]!;
    if (c === "'" || c === '"') return 'unexpected string';
    return isWordChar(c)
      ? `unexpected token '${this.tokenAt(at)}'`
      : `unexpected character '${this.tokenAt(at)}'`;
  }

  parse(): FilterClause[] {
    const clauses: FilterClause[] = [];
    this.skipWs();
    if (this.eof()) return clauses;
    for (;;) {
      clauses.push(this.parseClause());
      this.skipWs();
      if (this.eof()) return clauses;
      const at = this.pos;
      const word = this.peekWord().toUpperCase();
      if (word === 'AND') {
        this.pos += 3;
        this.skipWs();
        if (this.eof()) this.fail(this.pos, 'unexpected end of filter', 'expected a condition after AND');
        continue;
      }
      if (word === 'OR') this.fail(at, "unexpected token 'OR'", 'only AND is supported');
      this.fail(at, this.unexpected(at), 'expected AND or the end of the filter');
    }
  }

  private parseClause(): FilterClause {
    const start = this.pos;
    const c = this.src[start]!;
    if (c === '(') this.fail(start, "unexpected '('", 'parentheses are only allowed around IN lists');
    const word = this.peekWord().toUpperCase();
    if (word === 'NOT') {
      this.fail(start, "unexpected token 'NOT'", 'NOT is only supported as NOT IN and IS NOT NULL');
    }
    if (word === 'AND' || word === 'OR') {
      this.fail(start, `unexpected token '${word}'`, "expected a condition (e.g. trace.status = 'OK')");
    }
    const segments = this.parseKey();
    const keyText = this.src.slice(start, this.pos);
    const field = this.resolveField(segments, start);
    this.skipWs();
    const opPosition = this.pos;
    const op = this.parseOperator(keyText);
    const kind = kindOf(field);
    if (!ALLOWED_OPS[kind].includes(op)) {
      this.fail(opPosition, `operator ${op} is not supported for ${keyText}`, allowedOpsReason(field, kind));
    }
    let values: FilterLiteral[] = [];
    if (op === 'IN' || op === 'NOT IN') values = this.parseList(op);
    else if (op !== 'IS NULL' && op !== 'IS NOT NULL') values = [this.parseLiteral(op)];
    for (const v of values) this.checkLiteral(field, kind, keyText, op, v);
    return { field, keyText, op, values, position: start, opPosition };
  }

  /** Dotted key: segments of bare words, `backticked` text, or (after a dot) "double-quoted" text. */
  private parseKey(): KeySegment[] {
    const segments: KeySegment[] = [];
    for (;;) {
      const at = this.pos;
      const c = this.src[at];
      if (c === '`') {
        segments.push({ text: this.parseQuoted('`', 'backtick-quoted key'), position: at });
      } else if (c === '"' && segments.length > 0) {
        segments.push({ text: this.parseQuoted('"', 'quoted key'), position: at });
      } else {
        const word = this.peekWord();
        if (!word) {
          if (this.eof())
            this.fail(
              at,
              'unexpected end of filter',
              segments.length ? 'expected a key name after the dot' : 'expected a condition',
            );
          if (segments.length) {
            const what = /\s/.test(c!) ? 'missing key name' : `unexpected character '${c}'`;
            this.fail(
              at,
              what,
              'expected a key name after the dot (use backticks for names with special characters)',
            );
          }
          if (c === "'" || c === '"')
            this.fail(at, 'unexpected string', "a condition starts with a key, e.g. tag.env = 'prod'");
          this.fail(
            at,
            `unexpected character '${c}'`,
            'expected a key such as trace.status, tag.<name>, metadata.<name> or span.name',
          );
        }
        this.pos += word.length;
        segments.push({ text: word, position: at });
      }
      if (this.src[this.pos] !== '.') return segments;
      this.pos++;
    }
  }

  private resolveField(segs: KeySegment[], start: number): FilterField {
    const first = segs[0]!;
    if (segs.length === 1) return this.traceKey(first.text, first.position);
    const prefix = Object.hasOwn(PREFIXES, first.text) ? PREFIXES[first.text] : undefined;
    const rest = segs.slice(1);
    const restText = rest.map((s) => s.text).join('.');
    const restPos = rest[0]!.position;
    switch (prefix) {
      case 'trace':
        return this.traceKey(restText, restPos);
      case 'tag':
        if (!restText) this.fail(restPos, 'empty tag name');
        return { scope: 'tag', key: restText };
      case 'metadata':
        if (!restText) this.fail(restPos, 'empty metadata key');
        return { scope: 'metadata', key: restText };
      case 'span': {
        const sub = rest[0]!.text;
        if (sub === 'attributes') {
          if (rest.length < 2)
            this.fail(this.pos, 'missing span attribute name', 'write span.attributes.<name>');
          const key = rest
            .slice(1)
            .map((s) => s.text)
            .join('.');
          if (!key) this.fail(rest[1]!.position, 'empty span attribute name');
          return { scope: 'span.attributes', key };
        }
        if (sub === 'name' || sub === 'type' || sub === 'status' || sub === 'content') {
          if (rest.length > 1) {
            this.fail(
              rest[1]!.position,
              `unknown span field '${restText}'`,
              'supported: span.name, span.type, span.status, span.content, span.attributes.<name>',
            );
          }
          return { scope: 'span', key: sub };
        }
        return this.fail(
          rest[0]!.position,
          `unknown span field '${restText}'`,
          'supported: span.name, span.type, span.status, span.content, span.attributes.<name>',
        );
      }
      case 'assessment':
        return this.fail(
          start,
          `'${first.text}' filters are not supported`,
          'a trace is filtered for scoring before it has any assessments',
        );
      default:
        return this.fail(
          start,
          `unknown key prefix '${first.text}'`,
          'expected trace., attributes., tag., tags., metadata., request_metadata. or span.',
        );
    }
  }

  private traceKey(key: string, position: number): FilterField {
    const entry = Object.hasOwn(TRACE_KEYS, key) ? TRACE_KEYS[key] : undefined;
    if (entry === undefined) {
      const hint = `valid trace keys: ${TRACE_KEY_LIST}; span attributes are written span.attributes.${key || '<name>'}`;
      this.fail(position, `unknown trace attribute '${key}'`, hint);
    }
    if (typeof entry === 'string') this.fail(position, `'${key}' filters are not supported`, entry);
    return entry;
  }

  private parseOperator(keyText: string): FilterOp {
    const at = this.pos;
    if (this.eof()) this.fail(at, 'unexpected end of filter', `expected an operator after ${keyText}`);
    const two = this.src.slice(at, at + 2);
    if (two === '==') this.fail(at, "unexpected operator '=='", "use '=' for equality");
    if (two === '<>') this.fail(at, "unexpected operator '<>'", "use '!=' for inequality");
    if (two === '!=' || two === '>=' || two === '<=') {
      this.pos += 2;
      return two;
    }
    const one = this.src[at]!;
    if (one === '=' || one === '>' || one === '<') {
      this.pos++;
      return one;
    }
    const word = this.peekWord().toUpperCase();
    switch (word) {
      case 'LIKE':
      case 'ILIKE':
      case 'RLIKE':
      case 'IN':
        this.pos += word.length;
        return word;
      case 'NOT': {
        this.pos += 3;
        this.skipWs();
        const next = this.peekWord().toUpperCase();
        if (next !== 'IN') {
          this.fail(this.pos, this.unexpected(this.pos), 'NOT is only supported as NOT IN and IS NOT NULL');
        }
        this.pos += 2;
        return 'NOT IN';
      }
      case 'IS': {
        this.pos += 2;
        this.skipWs();
        let next = this.peekWord().toUpperCase();
        let negated = false;
        if (next === 'NOT') {
          negated = true;
          this.pos += 3;
          this.skipWs();
          next = this.peekWord().toUpperCase();
        }
        if (next !== 'NULL') {
          this.fail(
            this.pos,
            this.unexpected(this.pos),
            negated ? 'expected NULL after IS NOT' : 'expected NULL or NOT NULL after IS',
          );
        }
        this.pos += 4;
        return negated ? 'IS NOT NULL' : 'IS NULL';
      }
      case 'OR':
      case 'AND':
        return this.fail(at, `unexpected token '${word}'`, `expected an operator after ${keyText}`);
      default:
        return this.fail(
          at,
          this.unexpected(at),
          'expected an operator: =, !=, >, >=, <, <=, LIKE, ILIKE, RLIKE, IN, NOT IN, IS NULL, IS NOT NULL',
        );
    }
  }

  private parseList(op: FilterOp): FilterLiteral[] {
    this.skipWs();
    if (this.src[this.pos] !== '(') {
      this.fail(this.pos, this.unexpected(this.pos), `${op} needs a parenthesised list, e.g. ('a', 'b')`);
    }
    this.pos++;
    const values: FilterLiteral[] = [];
    for (;;) {
      this.skipWs();
      if (this.src[this.pos] === ')' && values.length === 0)
        this.fail(this.pos, `empty ${op} list`, 'give at least one value');
      values.push(this.parseLiteral(op));
      this.skipWs();
      const c = this.src[this.pos];
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === ')') {
        this.pos++;
        return values;
      }
      this.fail(this.pos, this.unexpected(this.pos), `expected ',' or ')' in the ${op} list`);
    }
  }

  private parseLiteral(op: FilterOp): FilterLiteral {
    this.skipWs();
    const at = this.pos;
    if (this.eof()) this.fail(at, 'unexpected end of filter', `expected a value after ${op}`);
    const c = this.src[at]!;
    if (c === "'" || c === '"') return { kind: 'string', value: this.parseQuoted(c, 'string'), position: at };
    const num = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/.exec(this.src.slice(at));
    if (num) {
      const end = at + num[0].length;
      if (end < this.src.length && isWordChar(this.src[end]!)) {
        this.fail(
          at,
          `invalid number '${/^-?[\p{L}\p{N}_$.]*/u.exec(this.src.slice(at))![0]}'`,
          'quote string values',
        );
      }
      this.pos = end;
      return { kind: 'number', value: Number(num[0]), text: num[0], position: at };
    }
    if (c === '(')
      this.fail(at, "unexpected '('", `a list is only allowed after IN and NOT IN, not after ${op}`);
    const word = this.peekWord();
    if (word)
      this.fail(
        at,
        `unexpected token '${this.tokenAt(at)}'`,
        `expected a quoted string or a number; quote string values: '${word}'`,
      );
    return this.fail(at, `unexpected character '${c}'`, 'expected a quoted string or a number');
  }

  /** A quoted run starting at the cursor (rules at scanQuoted). */
  private parseQuoted(quote: string, what: string): string {
    const open = this.pos;
    const r = scanQuoted(this.src, open);
    if (!r) this.fail(open, `unterminated ${what}`, `missing closing ${quote}`);
    this.pos = r.end;
    return r.value;
  }

  private checkLiteral(
    field: FilterField,
    kind: FieldKind,
    keyText: string,
    op: FilterOp,
    v: FilterLiteral,
  ): void {
    if (v.kind === 'number') {
      if (kind === 'stringTrace' || kind === 'spanField' || kind === 'content') {
        this.fail(v.position, `unexpected number ${v.text}`, `${keyText} compares strings: quote the value`);
      }
      if (PATTERN_OPS.has(op))
        this.fail(v.position, `unexpected number ${v.text}`, `${op} needs a quoted pattern`);
      if (!Number.isFinite(v.value)) this.fail(v.position, `number ${v.text} is out of range`);
      return;
    }
    if (kind === 'numericTrace') {
      this.fail(
        v.position,
        'unexpected string',
        `${keyText} is a number of milliseconds: compare it with a numeric literal`,
      );
    }
    if (ORDERING_OPS.has(op)) {
      this.fail(v.position, 'unexpected string', `${op} compares numbers: use a numeric literal`);
    }
    if (op === '=' || op === '!=' || op === 'IN' || op === 'NOT IN') {
      let valid: readonly string[] | undefined;
      if (field.scope === 'trace' && field.key === 'status') valid = TRACE_STATUS_VALUES;
      if (field.scope === 'span' && field.key === 'status') valid = SPAN_STATUS_VALUES;
      if (valid && !valid.includes(v.value)) {
        this.fail(v.position, `invalid ${keyText} value '${v.value}'`, `expected one of ${valid.join(', ')}`);
      }
    }
  }
}

/**
 * Decodes the quoted run whose opening quote is at `open`. Inside, the quote character is written
 * doubled or backslash-escaped, and a doubled backslash stands for one; any other backslash is
 * kept, so LIKE patterns can escape % and _ with it and RLIKE patterns keep their escapes.
 * `offsets`, when given, receives the source offset of every decoded code unit and then that of
 * the closing quote, so a problem found inside the value (an RLIKE pattern) can be reported at
 * its place in the filter string. Undefined when the quote is never closed.
 */
export function scanQuoted(src: string, open: number, offsets?: number[]): { value: string; end: number } | undefined {
  const quote = src[open];
  let out = '';
  let i = open + 1;
  for (;;) {
    if (i >= src.length) return undefined;
    const ch = src[i]!;
    if (ch === quote) {
      if (src[i + 1] === quote) {
        offsets?.push(i);
        out += quote;
        i += 2;
        continue;
      }
      offsets?.push(i);
      return { value: out, end: i + 1 };
    }
    if (ch === '\\' && (src[i + 1] === quote || src[i + 1] === '\\')) {
      offsets?.push(i);
      out += src[i + 1];
      i += 2;
      continue;
    }
    offsets?.push(i);
    out += ch;
    i++;
  }
}

function allowedOpsReason(field: FilterField, kind: FieldKind): string {
  const ops = ALLOWED_OPS[kind].join(', ');
  if (kind === 'numericTrace') return `${ops} only (numeric key)`;
  if (kind === 'content') return `${ops} only (full-text match)`;
  if (field.scope === 'trace' || field.scope === 'span') return `${ops} only (string key)`;
  return `supported: ${ops}`;
}

/** Parses and validates a filter string; an empty or blank string gives no clauses. */
export function parseFilter(text: string): FilterClause[] {
  if (text.length > MAX_FILTER_LENGTH) {
    throw new FilterSyntaxError(
      text.slice(0, 200),
      MAX_FILTER_LENGTH,
      'filter string too long',
      `at most ${MAX_FILTER_LENGTH} characters`,
    );
  }
  return new Parser(text).parse();
}
