// The RLIKE matcher (src/select/regex.ts): same answers as JavaScript's RegExp (with the u flag,
// i.e. on code points) wherever RegExp is safe to run, refusals at the right index, and work —
// counted in matcher steps, never timed — that grows linearly with the input.
import { describe, expect, it } from 'vitest';
import { compileRegex, MAX_NESTING, MAX_PROGRAM, RegexSyntaxError } from '../../src/select/regex.ts';

// [pattern, inputs]: every input is checked against new RegExp(pattern, 'u'); each row needs at
// least one matching and one non-matching input, so a matcher answering constantly fails it.
const AGREES: readonly [string, readonly string[]][] = [
  // literals, search anywhere
  ['chat', ['chat', 'my chat bot', 'cha', 'CHAT', '']],
  ['', ['', 'x']],
  // character classes
  ['^[a-c]+$', ['abc', 'abcd', '', 'cab']],
  ['[^a-z]', ['abc', 'abC', 'ab1', '']],
  ['^[\\d.]+$', ['3.14', '3,14', '..', '']],
  ['[\\w-]+@[\\w.]+', ['alice@example.com', 'alice at example', '@x']],
  ['^\\s*$', ['', '  \t', ' x ', '\u00a0\u3000', '\ufeff']],
  ['\\S\\s\\S', ['a b', 'ab', 'a\u2028b']],
  ['^\\D\\W$', ['a!', '1!', 'ab', 'a😀']],
  ['[-a]', ['-', 'a', 'b']],
  ['[a-]', ['-', 'a', 'b']],
  ['[\\b]', ['\b', 'b']],
  ['[\\-\\]\\\\]', ['-', ']', '\\', 'x']],
  ['[]', ['', 'a']],
  ['^[^]$', ['x', '\n', '', 'xy']],
  ['^.$', ['a', '\n', '\r', '\u2028', '😀', 'ab']],
  // alternation and groups
  ['^(chat|llm|tool:.*)$', ['chat', 'llm', 'tool:search', 'tool', 'chat2']],
  ['^(?:a|ab)(?:c|bcd)$', ['abcd', 'ac', 'abc', 'ab']],
  ['x(|y)z', ['xz', 'xyz', 'xyyz']],
  ['^(?<model>gpt|claude)-\\d', ['gpt-4', 'claude-3', 'llama-3']],
  // repetition
  ['^a{3}$', ['aaa', 'aa', 'aaaa']],
  ['^a{2,}$', ['a', 'aa', 'aaaaa']],
  ['^a{2,4}$', ['a', 'aa', 'aaaa', 'aaaaa']],
  ['^(ab){1,2}c$', ['abc', 'ababc', 'abababc', 'c']],
  ['^a{0}b$', ['b', 'ab']],
  ['^a*?b+?c??$', ['b', 'aabbc', 'ac']],
  ['^(a?){3}a{3}$', ['aaa', 'aaaaaa', 'aaaaaaa', 'aa']],
  ['^(a*)*$', ['', 'aaa', 'aab']],
  ['^(a|a)*b', ['aab', 'b', 'aac']],
  // anchors and word boundaries
  ['^abc', ['abcd', 'xabc']],
  ['abc$', ['xabc', 'abcx', 'abc\n']],
  ['\\bllm\\b', ['an llm call', 'llms', 'llm', 'xllm']],
  ['\\Bllm\\B', ['xllmx', 'llm', 'x llm']],
  ['^\\b', ['', 'a', ' a']],
  ['^\\B$', ['', 'a']],
  ['a\\b😀', ['a😀', 'ab']],
  ['(^|,)x(,|$)', ['x', 'a,x', 'a,x,b', 'ax', 'xb']],
  ['a|^b', ['b', 'cb', 'ca']],
  // escapes
  ['\\t\\n\\v\\f\\r', ['\t\n\v\f\r', '\t\n']],
  ['^\\x41\\u0042\\u{43}$', ['ABC', 'abc']],
  ['\\cJ', ['\n', 'J']],
  ['\\0', ['\0', '0']],
  ['^\\.\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|\\^\\$\\/$', ['.*+?()[]{}|^$/', 'x']],
  ['C:\\\\tmp', ['C:\\tmp', 'C:tmp']],
  // Unicode: code points, astral characters, properties
  ['^.{3}$', ['a😀b', 'a😀', 'abcd']],
  ['^[😀-😂]+$', ['😀😂😁', '😀😃', '']],
  ['^\\u{1F600}$', ['😀', '\ud83d']],
  ['^\\uD83D\\uDE00$', ['😀', '\ud83d']],
  ['^[^😀]$', ['😁', '😀', 'a']],
  ['é+', ['résumé', 'resume']],
  ['^\\p{L}+$', ['résumé', 'Ωμέγα', 'abc1', '']],
  ['^\\p{Lu}', ['Éa', 'éa']],
  ['\\P{ASCII}', ['abc', 'abç']],
  ['^\\p{Script=Greek}+$', ['Ωμέγα', 'Omega']],
  ['^[\\p{N}\\s]+$', ['12 ٣٤', '12a']],
  ['\\p{Emoji_Presentation}', ['ok 👍', 'ok']],
  ['^\\ud800$', ['\ud800', '\ud800\udc00']],
  // a literal prefix lets the matcher skip ahead with indexOf: overlapping and repeated starts,
  // astral prefixes, and a lone surrogate, which must not be found inside a pair
  ['abc', ['xxabxabc', 'ababab', 'abab abc']],
  ['tool:[a-z]+$', ['x tool:search', 'tool:', 'tool: tool:a', 'tool:tool:']],
  ['a+b', ['aaac aab', 'aaaa']],
  ['😀x', ['😀😀x', '😀 x']],
  ['\\uDE00', ['\uDE00', '😀', 'a\uDE00']],
  ['é\\s?$', ['café ', 'cafés', 'é\n']],
];

// The old matcher was RegExp without flags (Annex B): a lone ], { or } is a literal. Kept, and
// checked against that RegExp on ASCII values (where the u flag makes no difference).
const ANNEX_B: readonly [string, readonly string[]][] = [
  ['a]', ['a]', 'a']],
  ['x{', ['x{', 'x']],
  ['^{}$', ['{}', '{']],
  ['a{,2}', ['a{,2}', 'aa']],
  ['a{1', ['a{1', 'a']],
];

describe('LinearRegex agrees with RegExp', () => {
  it.each(AGREES)('%s', (pattern, inputs) => {
    const js = new RegExp(pattern, 'u');
    const re = compileRegex(pattern);
    const want = inputs.map((s) => js.test(s));
    expect(inputs.map((s) => re.test(s))).toEqual(want);
    if (pattern !== '' && pattern !== '[]') expect(new Set(want)).toEqual(new Set([true, false]));
  });

  it.each(ANNEX_B)('%s (Annex B literal, as RegExp without flags)', (pattern, inputs) => {
    const js = new RegExp(pattern);
    expect(inputs.map((s) => compileRegex(pattern).test(s))).toEqual(inputs.map((s) => js.test(s)));
  });

  it('agrees on thousands of generated patterns and values', () => {
    // A seeded generator (same cases every run) over a small alphabet that exercises classes,
    // astral characters, lone surrogates, line terminators and word boundaries. Values are at
    // most 7 code points, so RegExp's backtracking stays cheap on any generated pattern.
    let seed = 0x5eed;
    const rnd = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
    const ATOMS = [
      'a',
      'b',
      '.',
      '[ab]',
      '[^a]',
      '\\w',
      '\\W',
      '\\d',
      '\\s',
      '😀',
      '[😀-😂]',
      '\\u{1F601}',
      'é',
      '\\n',
      '[a-c\\d]',
      '\\p{L}',
      '\\P{L}',
      '[^\\s]',
    ];
    const QUANTIFIERS = ['', '', '', '*', '+', '?', '{0,2}', '{2}', '{1,}', '*?', '+?', '{0}'];
    const gen = (depth: number): string => {
      const r = rnd();
      if (depth <= 0 || r < 0.35) return pick(ATOMS) + pick(QUANTIFIERS);
      if (r < 0.5) return pick(['^', '$', '\\b', '\\B']);
      if (r < 0.75) {
        let s = '';
        for (let n = 1 + Math.floor(rnd() * 3); n > 0; n--) s += gen(depth - 1);
        return s;
      }
      if (r < 0.88) return `${gen(depth - 1)}|${gen(depth - 1)}`;
      return `(${rnd() < 0.5 ? '?:' : ''}${gen(depth - 1)})${pick(QUANTIFIERS)}`;
    };
    const ALPHABET = ['a', 'b', 'c', '1', '_', ' ', '\n', 'é', '😀', '😁', '\ud800'];
    let compared = 0;
    let matched = 0;
    const mismatches: string[] = [];
    for (let k = 0; k < 2500; k++) {
      const pattern = gen(3);
      const js = new RegExp(pattern, 'u');
      const re = compileRegex(pattern);
      for (let j = 0; j < 20; j++) {
        let s = '';
        for (let n = Math.floor(rnd() * 8); n > 0; n--) s += pick(ALPHABET);
        // V8 tries \B inside a surrogate pair (/\B/u.exec('1😁c').index is 2), which the
        // specification's code-point search never does; those values say nothing about us.
        if (pattern.includes('\\B') && /[\u{10000}-\u{10ffff}]/u.test(s)) continue;
        compared++;
        const want = js.test(s);
        if (want) matched++;
        if (re.test(s) !== want)
          mismatches.push(`${JSON.stringify(pattern)} on ${JSON.stringify(s)}: RegExp says ${want}`);
      }
    }
    expect(mismatches.slice(0, 10)).toEqual([]);
    expect(compared).toBeGreaterThan(40_000);
    // Both answers are well represented, so agreement is not a constant answer.
    expect(matched / compared).toBeGreaterThan(0.2);
    expect(matched / compared).toBeLessThan(0.8);
  });

  it('gives the same answers with a tiny DFA cache or none (the bounded-memory paths)', () => {
    // [ab]*a[ab]{10} needs ~2^11 DFA states: a 4-state cache is emptied and refilled constantly.
    let seed = 7;
    const values: string[] = [];
    for (let k = 0; k < 50; k++) {
      let s = '';
      for (let n = 0; n < 200; n++) {
        seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
        s += seed & 0x100 ? 'a' : 'b';
      }
      values.push(s + (k % 2 ? 'b'.repeat(11) : ''));
    }
    const pattern = 'a[ab]{10}$';
    const js = new RegExp(pattern, 'u');
    const want = values.map((s) => js.test(s));
    expect(new Set(want)).toEqual(new Set([true, false]));
    for (const maxStates of [undefined, 4, 0]) {
      expect(values.map((s) => compileRegex(pattern, { maxStates }).test(s))).toEqual(want);
    }
  });
});

// [pattern, index of the refused construct, unsupported (valid JS, not linear) or malformed, message part]
const REFUSED: readonly [string, number, boolean, string][] = [
  ['(a)\\1', 3, true, 'backreferences are not supported'],
  ['(?<x>a)\\k<x>', 7, true, 'backreferences \\k<name>'],
  ['foo(?=bar)', 3, true, 'lookahead (?=...)'],
  ['foo(?!bar)', 3, true, 'lookahead (?!...)'],
  ['(?<=a)b', 0, true, 'lookbehind (?<=...)'],
  ['x(?<!a)b', 1, true, 'lookbehind (?<!...)'],
  ['(?>a+)b', 0, true, 'atomic groups'],
  ['a++b', 2, true, 'possessive quantifiers'],
  ['a{2}+', 4, true, 'possessive quantifiers'],
  ['(?i)chat', 0, true, 'inline flags and modifiers'],
  ['x(?i:chat)', 1, true, 'inline flags and modifiers'],
  ['(?-i:a)', 0, true, 'inline flags and modifiers'],
  ['(?P=name)', 0, true, 'backreferences (?P=name)'],
  ['(?R)', 0, true, 'recursion'],
  ['(?1)', 0, true, 'recursion'],
  ['(?(1)a|b)', 0, true, 'conditionals'],
  ['a{1001}', 1, true, 'repetition count above 1000'],
  ['(?:a{1000}){1000}', 11, true, 'too large'],
  ['(?P<name>a)', 0, false, 'invalid group (?P<'],
  ['(?#note)', 0, false, 'comments'],
  ['ab(', 2, false, "unterminated group '('"],
  ['ab)', 2, false, "unmatched ')'"],
  ['x[ab', 1, false, "unterminated character class '['"],
  ['[z-a]', 1, false, 'range out of order'],
  ['[\\d-z]', 1, false, 'invalid character class range'],
  ['[[:alpha:]]', 1, false, 'POSIX classes'],
  ['*a', 0, false, 'nothing to repeat'],
  ['a|+', 2, false, 'nothing to repeat'],
  ['a**', 2, false, 'nothing to repeat'],
  ['^*', 1, false, 'nothing to repeat'],
  ['{2}', 0, false, 'nothing to repeat'],
  ['a{3,2}', 1, false, 'out of order'],
  ['\\Aabc', 0, false, "unknown escape '\\A'"],
  ['abc\\z', 3, false, "unknown escape '\\z'"],
  ['a\\01', 1, false, 'octal escapes'],
  ['[\\1]', 1, false, 'octal escapes'],
  ['\\x4', 0, false, 'invalid \\x escape'],
  ['\\u{110000}', 0, false, 'invalid \\u{...} escape'],
  ['\\uZZ', 0, false, 'invalid \\u escape'],
  ['\\c1', 0, false, 'invalid control escape'],
  ['\\p{NoSuchProperty}', 0, false, "unknown Unicode property 'NoSuchProperty'"],
  ['\\pL', 0, false, 'needs a property name in braces'],
  ['[\\B]', 1, false, '\\B is not allowed'],
  ['(?<a>x)(?<a>y)', 10, false, "duplicate group name 'a'"],
  ['abc\\', 3, false, 'ends with a backslash'],
  ['😀(?=x)', 2, true, 'lookahead'],
];

describe('refused patterns', () => {
  it.each(REFUSED)('%s -> index %i', (pattern, index, unsupported, fragment) => {
    let caught: unknown;
    try {
      compileRegex(pattern);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(RegexSyntaxError);
    const err = caught as RegexSyntaxError;
    expect([err.index, err.unsupported]).toEqual([index, unsupported]);
    expect(err.message).toContain(fragment);
  });

  it('refuses only what RegExp also cannot run safely or at all', () => {
    // Every "unsupported" construct is valid JavaScript (so a refusal is a deliberate choice,
    // not a parse difference), except the PCRE/Python-only ones, which RegExp refuses too.
    const pcreOnly = new Set([
      '(?>a+)b',
      'a++b',
      'a{2}+',
      '(?i)chat',
      '(?P=name)',
      '(?R)',
      '(?1)',
      '(?(1)a|b)',
    ]);
    for (const [pattern, , unsupported] of REFUSED) {
      if (!unsupported || pcreOnly.has(pattern)) continue;
      expect(() => new RegExp(pattern, 'u'), pattern).not.toThrow();
    }
  });
});

describe('linear time, counted in steps', () => {
  // Steps after the DFA warmed up: one per character. Steps in the worst case (cache off, every
  // character a fresh NFA step): at most programSize + 1 per character plus the end of input.
  const worstCase = (programSize: number, n: number): number => (n + 2) * (2 * programSize + 2);

  const CASES: readonly [string, (n: number) => string][] = [
    ['(a+)+$', (n) => `${'a'.repeat(n)}b`],
    ['^(a+)+$', (n) => `${'a'.repeat(n)}b`],
    ['(a|a)*b', (n) => 'a'.repeat(n)],
    ['(a*)*b', (n) => 'a'.repeat(n)],
    ['(x+x+)+y', (n) => 'x'.repeat(n)],
    ['^(\\w+\\s?)*$', (n) => `${'word '.repeat(n / 5)}!`],
  ];

  it.each(CASES)(
    '%s: steps grow linearly with the input, with and without the DFA cache',
    (pattern, input) => {
      for (const maxStates of [undefined, 0]) {
        const steps = [1_000, 2_000, 4_000, 8_000].map((n) => {
          const re = compileRegex(pattern, { maxStates });
          expect(re.test(input(n))).toBe(false);
          expect(re.steps).toBeLessThanOrEqual(worstCase(re.programSize, n));
          return re.steps;
        });
        // Doubling the input at most doubles the work (plus a constant): no exponential, no n².
        for (let k = 1; k < steps.length; k++) expect(steps[k]!).toBeLessThanOrEqual(2 * steps[k - 1]! + 64);
        // ...and at least doubles the part that depends on the input, so the count is real.
        expect(steps[3]! - steps[2]!).toBeGreaterThanOrEqual(4_000);
      }
    },
  );

  it('with the cache, a character costs one step once the states are built', () => {
    const re = compileRegex('^(a+)+$');
    expect(re.test(`${'a'.repeat(29)}b`)).toBe(false);
    const warm = re.steps;
    expect(re.test(`${'a'.repeat(100_029)}b`)).toBe(false);
    expect(re.steps - warm).toBe(100_030);
  });

  it('finishes ^(a+)+$ on a million characters within a CPU-independent step budget', () => {
    // V8's backtracking RegExp needs ~2^n steps here (20 s at n = 29).
    const re = compileRegex('^(a+)+$');
    const n = 1_000_000;
    expect(re.test(`${'a'.repeat(n)}b`)).toBe(false);
    expect(re.steps).toBeLessThanOrEqual(n + 1 + 1_000);
    expect(re.test('a'.repeat(n))).toBe(true);
  });

  it('takes groups nested up to the limit, and refuses deeper ones instead of overflowing the stack', () => {
    const nested = (d: number): string => `${'('.repeat(d)}a${')'.repeat(d)}`;
    expect(compileRegex(nested(MAX_NESTING)).test('xa')).toBe(true);
    // The refusal points at the first ( one level too deep.
    expect(() => compileRegex(`x${nested(MAX_NESTING + 1)}`)).toThrow(
      expect.objectContaining({
        index: 1 + MAX_NESTING,
        unsupported: true,
        message: 'groups nested too deeply',
      }),
    );
    // 5,000 levels fit in a 10,000-character filter; without the limit this is a RangeError.
    expect(() => compileRegex(nested(5_000))).toThrow(RegexSyntaxError);
  });

  it('bounds the program, so the per-character worst case is bounded too', () => {
    expect(compileRegex('(?:a{100}){100}').programSize).toBeLessThanOrEqual(MAX_PROGRAM);
    expect(() => compileRegex('(?:(?:a{100}){100}){3}')).toThrow(/too large/);
  });
});
