import { describe, expect, it } from 'vitest';
import type { TraceView } from '../../src/genai/types.ts';
import { compileFilter, FilterSyntaxError, MAX_FILTER_LENGTH } from '../../src/select/index.ts';
import { ScorecarError } from '../../src/util/errors.ts';
import { deepFreeze } from '../../src/registry/rules.ts';
import { makeView } from '../support/views.ts';

// Three synthetic traces; every valid case states whether it matches each of them.
const CHAT = makeView({
  traceId: '0af7651916cd43dd8448eb211c80319c',
  name: 'chat',
  status: 'OK',
  startTimeMs: 1_700_000_000_000.7,
  executionTimeMs: 1500.9,
  tags: { env: 'prod', team: 'search', 'ab.bucket': 'B' },
  metadata: {
    'mlflow.user': 'alice@example.com',
    'mlflow.trace.session': 's-1',
    retries: '3',
    'mlflow.sourceRun': 'run-42',
  },
  spans: [
    {
      name: 'chat',
      type: 'CHAIN',
      status: 'OK',
      attributes: { 'mlflow.spanInputs': '{"question":"What is the refund policy?"}' },
    },
    {
      name: 'retrieve',
      type: 'RETRIEVER',
      attributes: { 'retrieval.k': 5, 'db.system': 'qdrant', score: '0.87' },
    },
    {
      name: 'llm',
      type: 'LLM',
      attributes: {
        'gen_ai.request.model': 'gpt-4.1-mini',
        'gen_ai.usage.input_tokens': 120,
        'mlflow.spanType': '"LLM"',
        stream: false,
        'gen_ai.response.finish_reasons': ['stop'],
        note: "it's 50% off",
        path: 'C:\\tmp',
      },
    },
  ],
});

const AGENT = makeView({
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  name: 'agent_run',
  status: 'ERROR',
  startTimeMs: 1_700_000_100_000,
  executionTimeMs: 250,
  tags: { env: 'staging' },
  sessionId: 'sess-9',
  userId: 'bob',
  spans: [
    { name: 'agent_run', type: 'AGENT', status: 'ERROR', statusMessage: 'boom' },
    {
      name: 'tool:search',
      type: 'TOOL',
      attributes: { 'tool.name': 'web_search', 'input.value': 'Refund policy?' },
    },
    {
      name: 'llm',
      type: 'CHAT_MODEL',
      attributes: { 'gen_ai.request.model': 'claude-sonnet', 'gen_ai.usage.input_tokens': '2048' },
    },
  ],
});

const PING = makeView({
  traceId: '00000000000000000000000000000abc',
  name: 'ping',
  startTimeMs: 1_699_999_999_000,
  executionTimeMs: 5,
  spans: [{ name: 'ping' }],
});

const VIEWS: readonly TraceView[] = [CHAT, AGENT, PING];

// [filter, matches CHAT, matches AGENT, matches PING]
const VALID: readonly [string, boolean, boolean, boolean][] = [
  ['', true, true, true],
  ['   ', true, true, true],
  ["trace.status = 'OK'", true, false, true],
  ["trace.status = 'ERROR'", false, true, false],
  ["trace.status != 'OK'", false, true, false],
  ["trace.status = 'IN_PROGRESS'", false, false, false],
  ["trace.status IN ('OK', 'ERROR')", true, true, true],
  ["trace.status NOT IN ('ERROR')", true, false, true],
  ['attributes.status = "ERROR"', false, true, false],
  ["status = 'OK'", true, false, true],
  ["trace.status like 'E%'", false, true, false],
  ["trace.name = 'chat'", true, false, false],
  ["name LIKE 'a%'", false, true, false],
  ["trace.name ILIKE 'CHAT'", true, false, false],
  ["trace.name LIKE 'CHAT'", false, false, false],
  ["trace.name LIKE '_ing'", false, false, true],
  ["trace.name RLIKE '^(chat|ping)$'", true, false, true],
  ['trace.execution_time_ms > 500', true, false, false],
  ['trace.execution_time_ms = 1500', true, false, false],
  ['trace.execution_time_ms <= 250', false, true, true],
  ['execution_time >= 5', true, true, true],
  ['trace.execution_time_ms > -1', true, true, true],
  ['trace.timestamp_ms < 1700000000000', false, false, true],
  ['trace.timestamp_ms >= 1700000000000 AND trace.timestamp_ms < 1.7000001e12', true, false, false],
  ['trace.end_time_ms = 1700000001500', true, false, false],
  ["trace.request_id = 'tr-0af7651916cd43dd8448eb211c80319c'", true, false, false],
  ["request_id IN ('4bf92f3577b34da6a3ce929d0e0e4736')", false, true, false],
  ["tag.env = 'prod'", true, false, false],
  ["tags.env != 'prod'", false, true, false],
  ['tag.env IS NULL', false, false, true],
  ['tag.env is not null', true, true, false],
  ["tag.`ab.bucket` = 'B'", true, false, false],
  ["tag.ab.bucket = 'B'", true, false, false],
  ['tags."ab.bucket" = \'B\'', true, false, false],
  ["tag.env IN ('prod', 'staging')", true, true, false],
  ["tag.env NOT IN ('prod')", false, true, false],
  ["tag.env LIKE 'pro%'", true, false, false],
  ["tag.`mlflow.traceName` = 'agent_run'", false, true, false],
  ["metadata.`mlflow.user` = 'alice@example.com'", true, false, false],
  ["request_metadata.`mlflow.user` ILIKE '%@EXAMPLE.COM'", true, false, false],
  ["metadata.`mlflow.trace.session` = 'sess-9'", false, true, false],
  ["metadata.`mlflow.trace.user` = 'bob'", false, true, false],
  ['metadata.retries > 2', true, false, false],
  ['metadata.retries = 3', true, false, false],
  ["run_id = 'run-42'", true, false, false],
  ["span.name = 'retrieve'", true, false, false],
  ["span.name = 'llm'", true, true, false],
  ["span.name != 'chat'", true, true, true],
  ["span.name NOT IN ('ping')", true, true, false],
  ["span.name LIKE 'tool:%'", false, true, false],
  ["span.name IN('llm','chat')", true, true, false],
  ["span.type = 'RETRIEVER'", true, false, false],
  ["span.type IN ('LLM', 'CHAT_MODEL')", true, true, false],
  ["span.type = 'UNKNOWN'", false, false, true],
  ["span.status = 'ERROR'", false, true, false],
  ["span.status = 'UNSET'", true, true, true],
  ["span.status in ('OK')", true, false, false],
  ["span.attributes.`gen_ai.request.model` = 'gpt-4.1-mini'", true, false, false],
  ["span.attributes.gen_ai.request.model LIKE 'claude%'", false, true, false],
  ['span.attributes.`gen_ai.usage.input_tokens` > 1000', false, true, false],
  ['span.attributes.`gen_ai.usage.input_tokens` = 120', true, false, false],
  ["span.attributes.`gen_ai.usage.input_tokens` = '120'", true, false, false],
  ["span.attributes.`mlflow.spanType` = 'LLM'", true, false, false],
  ['span.attributes.`mlflow.spanType` = \'"LLM"\'', true, false, false],
  ["span.attributes.stream = 'false'", true, false, false],
  ["span.attributes.`gen_ai.response.finish_reasons` LIKE '%stop%'", true, false, false],
  ["span.attributes.note = 'it''s 50% off'", true, false, false],
  ["span.attributes.note = 'it\\'s 50% off'", true, false, false],
  ["span.attributes.note LIKE '%50\\% off'", true, false, false],
  ["span.attributes.note LIKE '%50\\%'", false, false, false],
  ["span.attributes.path = 'C:\\\\tmp'", true, false, false],
  ['span.attributes.`tool.name` IS NOT NULL', false, true, false],
  ['span.attributes.`tool.name` IS NULL', true, false, true],
  ["span.attributes.missing != 'x'", false, false, false],
  ['span.attributes.score >= 0.5', true, false, false],
  ['span.attributes.`retrieval.k` IN (3, 5)', true, false, false],
  ["span.attributes.`db.system` RLIKE 'qd.*t'", true, false, false],
  ["span.name RLIKE '^tool:\\w+$'", false, true, false],
  ["trace.name RLIKE 'CHAT'", false, false, false],
  ["trace.name RLIKE '^(?:chat|agent_run)$'", true, true, false],
  ["span.attributes.`gen_ai.request.model` RLIKE '^gpt-4(\\.1)?-mini$'", true, false, false],
  ["span.attributes.`mlflow.spanType` RLIKE '^LLM$'", true, false, false],
  ["span.attributes.`retrieval.k` RLIKE '^[0-9]{1,2}$'", true, false, false],
  ["span.attributes.note RLIKE 'it''s \\d+%'", true, false, false],
  ["trace.text ILIKE '%refund policy%'", true, true, false],
  ["span.content LIKE '%Refund%'", false, true, false],
  ["trace.status = 'OK' and tag.env = 'prod' AnD span.name = 'retrieve'", true, false, false],
  [
    "trace.status = 'OK' AND tag.env = 'prod' AND span.name = 'retrieve' AND trace.execution_time_ms > 500 AND metadata.`mlflow.user` = 'alice@example.com'",
    true,
    false,
    false,
  ],
  ["  trace.name='ping'  ", false, false, true],
  ["tag.team IN ('search') AND span.attributes.`retrieval.k` < 10", true, false, false],
];

// [filter, error position, part of the message]
const INVALID: readonly [string, number, string][] = [
  ["trace.status = 'OK' OR trace.status = 'ERROR'", 20, 'only AND is supported'],
  ["tag.env = 'a' AND tag.team = 'b' OR tag.x = 'c'", 33, "unexpected token 'OR'"],
  ["tag.env = 'a' AND OR tag.x = 'b'", 18, "unexpected token 'OR'"],
  ["foo.bar = 'x'", 0, "unknown key prefix 'foo'"],
  ["trace.foo = 'x'", 6, "unknown trace attribute 'foo'"],
  ["attributes.`gen_ai.request.model` = 'x'", 11, 'span.attributes.gen_ai.request.model'],
  ['trace.status = OK', 15, "quote string values: 'OK'"],
  ["trace.status = 'ok'", 15, 'expected one of OK, ERROR, IN_PROGRESS'],
  ["trace.status > 'OK'", 13, 'operator > is not supported for trace.status'],
  ["trace.execution_time_ms > '500'", 26, 'numeric literal'],
  ['trace.name > 5', 11, 'operator > is not supported'],
  ['trace.name = 5', 13, 'quote the value'],
  ["trace.name IN ('a', 1)", 20, 'quote the value'],
  ["tag.env = 'prod' AND", 20, 'expected a condition after AND'],
  ["tag.env = 'prod", 10, 'unterminated string'],
  ['tag.env', 7, 'expected an operator after tag.env'],
  ['tag.env =', 9, 'expected a value after ='],
  ["tag.env == 'x'", 8, "use '=' for equality"],
  ["tag.env <> 'x'", 8, "use '!='"],
  ["tag.env > 'x'", 10, '> compares numbers'],
  ["span.name > 'a'", 10, 'operator > is not supported for span.name'],
  ["span.attributes. = 'x'", 16, 'expected a key name after the dot'],
  ["span.attributes = 'x'", 15, 'missing span attribute name'],
  ["span.foo = 'x'", 5, "unknown span field 'foo'"],
  ["span.name.x = 'a'", 10, "unknown span field 'name.x'"],
  ["feedback.correctness = 'yes'", 0, 'before it has any assessments'],
  ["span.status = 'FAILED'", 14, 'expected one of UNSET, OK, ERROR'],
  ['tag.env IN ()', 12, 'empty IN list'],
  ["tag.env IN ('a',)", 16, "unexpected character ')'"],
  ["tag.env IN 'a'", 11, 'needs a parenthesised list'],
  ["tag.env = ('a')", 10, 'a list is only allowed after IN and NOT IN'],
  ["(tag.env = 'a')", 0, 'parentheses are only allowed around IN lists'],
  ["NOT tag.env = 'a'", 0, 'NOT is only supported as NOT IN and IS NOT NULL'],
  ["tag.env NOT LIKE 'a'", 12, 'NOT is only supported as NOT IN and IS NOT NULL'],
  ["tag.env IS 'a'", 11, 'expected NULL or NOT NULL after IS'],
  ["tag.env IS NOT 'a'", 15, 'expected NULL after IS NOT'],
  ['trace.timestamp_ms IS NULL', 19, 'operator IS NULL is not supported'],
  ['trace.status IS NULL', 13, 'operator IS NULL is not supported'],
  ["trace.text = 'x'", 11, 'LIKE, ILIKE only'],
  ["span.content = 'x'", 13, 'LIKE, ILIKE only'],
  ['span.name LIKE 5', 15, 'compares strings'],
  ['tag.env LIKE 5', 13, 'LIKE needs a quoted pattern'],
  ["tag.env LIKE 'abc\\\\'", 13, 'must not end with an escape character'],
  ["tag.env LIKE 'abc\\'", 13, 'unterminated string'],
  ["span.name RLIKE '('", 17, "invalid regular expression at position 17: unterminated group '('"],
  ["span.name RLIKE '(a)\\1'", 20, 'RLIKE: backreferences are not supported'],
  ["tag.env = 'a' tag.team = 'b'", 14, 'expected AND or the end of the filter'],
  ['trace.execution_time_ms > 5ms', 26, "invalid number '5ms'"],
  ["client_request_id = 'x'", 0, "'client_request_id' filters are not supported"],
  ["tag.`env = 'x'", 4, 'unterminated backtick-quoted key'],
  ["= 'x'", 0, "unexpected character '='"],
  ["'x' = tag.env", 0, 'a condition starts with a key'],
  ["trace.status = 'OK' || tag.env = 'a'", 20, "unexpected character '|'"],
  ['trace.execution_time_ms > -5ms', 26, "invalid number '-5ms'"],
  ["tag.env IN 'a'", 11, 'unexpected string'],
  ["span.attributes.x LIKE 'a' extra", 27, "unexpected token 'extra'"],
  ["metadata. = 'x'", 9, 'expected a key name after the dot'],
  ['tag.x > 1e999', 8, 'out of range'],
];

describe('compileFilter: table over synthetic trace views', () => {
  it('has at least 60 cases', () => {
    expect(VALID.length + INVALID.length).toBeGreaterThanOrEqual(60);
  });

  it.each(VALID)('%s -> chat %s, agent %s, ping %s', (text, chat, agent, ping) => {
    const f = compileFilter(text);
    expect(f.text).toBe(text);
    expect(VIEWS.map((v) => f.matches(v))).toEqual([chat, agent, ping]);
  });

  it.each(INVALID)('%s -> error at %i', (text, position, fragment) => {
    let caught: unknown;
    try {
      compileFilter(text);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(FilterSyntaxError);
    const err = caught as FilterSyntaxError;
    expect(err).toBeInstanceOf(ScorecarError);
    expect(err.code).toBe('INVALID_FILTER');
    expect(err.position).toBe(position);
    expect(err.message).toContain(`at position ${position}`);
    expect(err.message).toContain(fragment);
  });
});

describe('compileFilter details', () => {
  it('states position and reason the way the API reports them', () => {
    let caught: unknown;
    try {
      compileFilter("trace.status = 'OK' OR trace.status = 'ERROR'");
    } catch (e) {
      caught = e;
    }
    const err = caught as FilterSyntaxError;
    expect(err.message).toBe("unexpected token 'OR' at position 20: only AND is supported");
    expect(err.details).toEqual({ position: 20, filter: "trace.status = 'OK' OR trace.status = 'ERROR'" });
  });

  it('exposes the parsed clauses', () => {
    const f = compileFilter(
      "metadata.`mlflow.user` = 'x' AND span.attributes.a.b IN ('1', 2) AND run_id = 'r'",
    );
    expect(f.clauses.map((c) => [c.field, c.op, c.values.map((v) => v.value)])).toEqual([
      [{ scope: 'metadata', key: 'mlflow.user' }, '=', ['x']],
      [{ scope: 'span.attributes', key: 'a.b' }, 'IN', ['1', 2]],
      [{ scope: 'metadata', key: 'mlflow.sourceRun' }, '=', ['r']],
    ]);
    expect(compileFilter('  ').clauses).toEqual([]);
  });

  it('does not read inherited object properties as tags or attributes', () => {
    const f = compileFilter('tag.constructor IS NOT NULL');
    expect(f.matches(CHAT)).toBe(false);
    expect(compileFilter('span.attributes.toString IS NOT NULL').matches(CHAT)).toBe(false);
    expect(compileFilter('metadata.__proto__ IS NULL').matches(CHAT)).toBe(true);
  });

  it('matches LIKE patterns without catastrophic backtracking', () => {
    const long = 'a'.repeat(20_000);
    const view = makeView({ tags: { long } });
    expect(compileFilter("tag.long LIKE '%a%a%a%a%a%a%a%a%b'").matches(view)).toBe(false);
    expect(compileFilter("tag.long LIKE '%a%a%a%a%a%a%a%a%'").matches(view)).toBe(true);
    expect(compileFilter("tag.long LIKE 'a%a_'").matches(view)).toBe(true);
  });

  it('counts a surrogate pair as one character for _', () => {
    const view = makeView({ tags: { emoji: 'a😀b' } });
    expect(compileFilter("tag.emoji LIKE 'a_b'").matches(view)).toBe(true);
    expect(compileFilter("tag.emoji LIKE 'a__b'").matches(view)).toBe(false);
    expect(compileFilter("tag.emoji LIKE '%_b'").matches(view)).toBe(true);
  });

  it('compares bytes and maps through their hex and JSON forms', () => {
    const view = makeView({
      spans: [{ name: 'x', attributes: { raw: new Uint8Array([0xde, 0xad]), obj: { k: 'v', n: 1 } } }],
    });
    expect(compileFilter("span.attributes.raw = 'dead'").matches(view)).toBe(true);
    expect(compileFilter('span.attributes.obj = \'{"k":"v","n":1}\'').matches(view)).toBe(true);
    expect(compileFilter('span.attributes.obj > 0').matches(view)).toBe(false);
  });

  it('refuses over-long filter strings', () => {
    expect(() => compileFilter(`tag.a = '${'x'.repeat(MAX_FILTER_LENGTH)}'`)).toThrow(/too long/);
  });
});

// RLIKE patterns are refused at registration, at the offending construct: [filter, the construct
// as written (its first occurrence is where the error must point) or its position, message part].
const RLIKE_REFUSED: readonly [string, string | number, string][] = [
  ["span.name RLIKE '(a)\\1'", '\\1', 'RLIKE: backreferences are not supported'],
  ["span.name RLIKE '(?<w>a)\\k<w>'", '\\k', 'RLIKE: backreferences \\k<name> are not supported'],
  ["trace.name RLIKE 'chat(?=bot)'", '(?=', 'RLIKE: lookahead (?=...) is not supported'],
  ["trace.name RLIKE 'chat(?!bot)'", '(?!', 'RLIKE: lookahead (?!...) is not supported'],
  ["span.name RLIKE '(?<=tool:)search'", '(?<=', 'RLIKE: lookbehind (?<=...) is not supported'],
  ["span.name RLIKE 'x(?<!tool:)search'", '(?<!', 'RLIKE: lookbehind (?<!...) is not supported'],
  ["tag.env RLIKE '(?>pro|prod)$'", '(?>', 'RLIKE: atomic groups (?>...) are not supported'],
  ["tag.env RLIKE 'a*+b'", '+b', 'RLIKE: possessive quantifiers are not supported'],
  ["tag.env RLIKE '(?i)prod'", '(?i', 'RLIKE: inline flags and modifiers'],
  ["tag.env RLIKE 'x(?i:prod)'", '(?i', 'RLIKE is case-sensitive'],
  ["tag.env RLIKE 'a{1001}'", '{1001}', 'RLIKE: repetition count above 1000'],
  ["tag.env RLIKE '(?:a{1000}){1000}'", 26, 'RLIKE: regular expression too large'],
  ["tag.env RLIKE '\\Aprod'", '\\A', "invalid regular expression at position 15: unknown escape '\\A'"],
  ["tag.env RLIKE '[[:alpha:]]'", '[:alpha:]', 'POSIX classes'],
  ["tag.env RLIKE 'a[z-b]'", 'z-b', 'range out of order'],
  ["tag.env = 'x' AND span.name RLIKE 'it''s(?=x)'", '(?=', 'lookahead'],
  // Inside the literal, '' and \\ each stand for one character: the position still lands on
  // the construct in the filter text, not on its offset in the decoded pattern.
  [String.raw`tag.path RLIKE '^C:\\\\tmp\'(?=x)'`, '(?=', 'lookahead'],
  ['tag.env RLIKE "it""s(?=x)"', '(?=', 'lookahead'],
];

describe('RLIKE', () => {
  it.each(RLIKE_REFUSED)('%s -> refused at %s', (text, construct, fragment) => {
    const position = typeof construct === 'number' ? construct : text.indexOf(construct);
    expect(position).toBeGreaterThan(0);
    let caught: unknown;
    try {
      compileFilter(text);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(FilterSyntaxError);
    const err = caught as FilterSyntaxError;
    expect(err.code).toBe('INVALID_FILTER');
    expect(err.position).toBe(position);
    expect(err.details).toEqual({ position, filter: text });
    expect(err.message).toContain(fragment);
    expect(err.message).toContain(`at position ${position}`);
  });

  it('maps positions through the quoting of the literal', () => {
    // '' at 19-20 is one quote in the pattern, so the pattern's ( at index 4 is the filter's 22.
    expect(() => compileFilter("span.name RLIKE 'it''s(?=x)'")).toThrow(
      expect.objectContaining({ position: 22 }),
    );
    // A doubled backslash in the literal is one in the pattern: '\\\\1' is the pattern \\1 (a
    // backslash, then 1), while '\\1' is the pattern \1, a backreference written at 18-20.
    expect(() => compileFilter(String.raw`span.name RLIKE 'a\\\\1'`)).not.toThrow();
    expect(() => compileFilter(String.raw`span.name RLIKE 'a\\1'`)).toThrow(
      expect.objectContaining({ position: 18 }),
    );
  });

  it('decides ^(a+)+$ on a 30-character span name in linear work', () => {
    // V8's backtracking RegExp spent ~20 s of main thread here; the matcher counts its steps.
    const f = compileFilter("span.name RLIKE '^(a+)+$'");
    const bad = makeView({ spans: [{ name: 'chat' }, { name: `${'a'.repeat(29)}b` }] });
    expect(f.matches(bad)).toBe(false);
    const steps = f.regexSteps();
    expect(steps).toBeGreaterThanOrEqual(35); // it did read every character of both names
    expect(steps).toBeLessThanOrEqual(200);
    // Four times the input: at most four times the work (plus the states built once).
    const longer = makeView({ spans: [{ name: `${'a'.repeat(119)}b` }] });
    expect(f.matches(longer)).toBe(false);
    expect(f.regexSteps() - steps).toBeLessThanOrEqual(4 * 35);
    expect(f.matches(makeView({ spans: [{ name: 'a'.repeat(29) }] }))).toBe(true);
  });

  it('reads values as Unicode code points', () => {
    const view = makeView({ spans: [{ name: 'résumé 😀', attributes: { lang: 'Ελληνικά' } }] });
    const yes = (f: string): boolean => compileFilter(f).matches(view);
    expect(yes("span.name RLIKE '^r.sum. .$'")).toBe(true); // the emoji is one character
    expect(yes("span.name RLIKE '^r.sum. ..$'")).toBe(false);
    expect(yes("span.name RLIKE '^\\p{L}+ \\p{Emoji_Presentation}$'")).toBe(true);
    expect(yes("span.name RLIKE '[😀-😂]'")).toBe(true);
    expect(yes("span.name RLIKE '\\u{1F600}$'")).toBe(true);
    expect(yes("span.attributes.lang RLIKE '^\\p{Script=Greek}+$'")).toBe(true);
    expect(yes("span.attributes.lang RLIKE '^\\w+$'")).toBe(false); // \w is ASCII, as in RegExp
  });

  it('keeps matching after the registry deep-freezes the compiled filter', () => {
    // The registry publishes ActiveScorers deep-frozen; the matcher's DFA cache must not be
    // reachable from the filter object, or the first match would throw.
    const f = deepFreeze(compileFilter("span.name RLIKE '^(chat|llm)$' AND span.name RLIKE 'ret'"));
    expect(VIEWS.map((v) => f.matches(v))).toEqual([true, false, false]);
    expect(f.regexSteps()).toBeGreaterThan(0);
  });
});
