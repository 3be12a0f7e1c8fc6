// Linear-time regular expressions for RLIKE filter strings.
//
// Why not RegExp: RLIKE patterns come from whoever registers a scorer and run, on the main
// thread, over span names and attribute values that senders control. V8's backtracking engine
// needs exponential time for patterns such as ^(a+)+$ (a 29-character span name stalls the
// process for ~20 s), and its linear-time engine (the `l` flag) is only enabled by
// --enable-experimental-regexp-engine, which plain `node` (CLI, worker threads, tests) does not
// set. No published pure-JS/wasm RE2 speaks JavaScript's syntax, reports where a refused
// construct sits, or lets a test count its work, so this is a small engine of our own.
//
// How: the pattern is parsed (JavaScript syntax with `u` semantics, see below) into a tree,
// compiled into a Thompson NFA, and run as a lazily built DFA (RE2's approach): a DFA state is
// the set of NFA states alive before the next character plus what the previous character was
// (start of input, word or non-word character, for ^ and \b); a transition is computed the first
// time it is needed, by following every NFA state once, and cached. The cache is bounded; when
// it is full it is dropped and refilled, so memory stays bounded and the worst case is an NFA
// simulation: O(program size) per input character, never more. Program size is bounded at
// compile time (MAX_PROGRAM), so every accepted pattern runs in time linear in its input.
//
// Semantics (JavaScript's, as RLIKE had with RegExp and no flags, except where marked *):
//   * the subject is read as Unicode code points (a surrogate pair is one character, as with the
//     `u` flag); `.` is any code point but \n \r \u2028 \u2029; case-sensitive; ^ and $ are the
//     start and end of the whole value (no multiline); found anywhere unless anchored.
//   Supported: literals, . [...] [^...] ranges, \d \D \w \W \s \S (ASCII \d \w, Unicode \s),
//   \p{...} \P{...} (Unicode properties, from V8's own tables), \t \n \v \f \r \0 \cX \xHH \uHHHH
//   \u{H...}, escaped punctuation, | ( ) (?: ) (?<name> ), * + ? {m} {m,} {m,n} (m, n <= 1000)
//   and their lazy forms (a lazy quantifier cannot change whether a value matches), ^ $ \b \B.
//   *Annex B leniency kept from the old non-`u` RegExp: a lone ] { } is a literal character.
//   Refused (RegexSyntaxError with the index of the construct): backreferences \1 \k<name>,
//   lookahead/lookbehind, atomic groups (?>...), possessive quantifiers a*+, inline flags and
//   modifiers (?i) (?i:...), recursion and conditionals, octal escapes, unknown letter escapes
//   (\A \Z \z ...), POSIX classes [:alpha:], more than MAX_NESTING nested groups, programs over
//   MAX_PROGRAM instructions, and malformed patterns.

/** A refused pattern: `index` is the code-unit offset into the pattern of the offending construct. */
export class RegexSyntaxError extends Error {
  readonly index: number;
  /** True for a valid construct this engine refuses (it cannot run it in linear time). */
  readonly unsupported: boolean;
  readonly hint: string | undefined;

  constructor(index: number, message: string, unsupported: boolean, hint?: string) {
    super(message);
    this.name = 'RegexSyntaxError';
    this.index = index;
    this.unsupported = unsupported;
    this.hint = hint;
  }
}

/** Most NFA instructions a pattern may compile to (after expanding counted repetition). */
export const MAX_PROGRAM = 20_000;
/** Largest count in {m,n}; RE2's limit. */
export const MAX_REPEAT = 1000;
/** Deepest group nesting: parser, compiler and analyses recurse once per level. */
export const MAX_NESTING = 200;

const MAX_CP = 0x10ffff;
/** DFA transition cells one pattern may cache (a row per state, a cell per character class). */
const CACHE_CELLS = 1 << 18;

// ------------------------------------------------------------------ character sets

/** Sorted, disjoint, non-adjacent inclusive [lo, hi] pairs, flattened. */
type Ranges = readonly number[];

function normalise(pairs: number[]): number[] {
  const idx: number[] = [];
  for (let i = 0; i < pairs.length; i += 2) idx.push(i);
  idx.sort((a, b) => pairs[a]! - pairs[b]!);
  const out: number[] = [];
  for (const i of idx) {
    const lo = pairs[i]!;
    const hi = pairs[i + 1]!;
    const n = out.length;
    if (n > 0 && lo <= out[n - 1]! + 1) {
      if (hi > out[n - 1]!) out[n - 1] = hi;
    } else out.push(lo, hi);
  }
  return out;
}

function negate(r: Ranges): number[] {
  const out: number[] = [];
  let next = 0;
  for (let i = 0; i < r.length; i += 2) {
    if (r[i]! > next) out.push(next, r[i]! - 1);
    next = r[i + 1]! + 1;
  }
  if (next <= MAX_CP) out.push(next, MAX_CP);
  return out;
}

function inRanges(r: Ranges, cp: number): boolean {
  let lo = 0;
  let hi = (r.length >> 1) - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < r[2 * mid]!) hi = mid - 1;
    else if (cp > r[2 * mid + 1]!) lo = mid + 1;
    else return true;
  }
  return false;
}

const DIGIT: Ranges = [0x30, 0x39];
const WORD: Ranges = [0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a];
// ECMAScript WhiteSpace and LineTerminator (what \s is under the `u` flag).
const SPACE: Ranges = normalise([
  0x09, 0x0d, 0x20, 0x20, 0xa0, 0xa0, 0x1680, 0x1680, 0x2000, 0x200a, 0x2028, 0x2029, 0x202f, 0x202f, 0x205f,
  0x205f, 0x3000, 0x3000, 0xfeff, 0xfeff,
]);
const DOT: Ranges = negate([0x0a, 0x0a, 0x0d, 0x0d, 0x2028, 0x2029]);

function isWordCp(cp: number): boolean {
  return inRanges(WORD, cp);
}

// Unicode properties come from V8's own tables (the same ones RegExp's \p uses), read once per
// property and process by scanning every code point with a single-class pattern, which cannot
// backtrack (tens of milliseconds, at registration only).
const propertyCache = new Map<string, Ranges>();
/** Every code point but the surrogates, in order, as two texts (below and above them). */
let allCodePoints: WeakRef<readonly [string, string]> | undefined;

function codePointTexts(): readonly [string, string] {
  let texts = allCodePoints?.deref();
  if (texts === undefined) {
    const decoder = new TextDecoder('utf-16le');
    const low = new Uint16Array(0xd800);
    for (let u = 0; u < 0xd800; u++) low[u] = u;
    const high = new Uint16Array(0x2000 + 2 * 0x100000);
    let k = 0;
    for (let cp = 0xe000; cp <= 0xffff; cp++) high[k++] = cp;
    for (let v = 0; v < 0x100000; v++) {
      high[k++] = 0xd800 + (v >> 10);
      high[k++] = 0xdc00 + (v & 0x3ff);
    }
    texts = [decoder.decode(low), decoder.decode(high)];
    // Kept only while memory allows: several properties compiled together share one build.
    allCodePoints = new WeakRef(texts);
  }
  return texts;
}

function unicodeProperty(body: string): Ranges | undefined {
  const cached = propertyCache.get(body);
  if (cached) return cached;
  // Only names and name=value pairs reach RegExp, so nothing else can be injected.
  if (!/^[A-Za-z0-9_]+(?:=[A-Za-z0-9_]+)?$/.test(body)) return undefined;
  let one: RegExp;
  try {
    one = new RegExp(`^\\p{${body}}$`, 'u');
  } catch {
    return undefined;
  }
  const out: number[] = [];
  for (const text of codePointTexts()) {
    const run = new RegExp(`\\p{${body}}+`, 'gu');
    for (let m = run.exec(text); m !== null; m = run.exec(text)) {
      // The texts hold no lone surrogates, so a trailing low surrogate ends a pair.
      const unit = text.charCodeAt(run.lastIndex - 1);
      const last = unit >= 0xdc00 && unit <= 0xdfff ? text.codePointAt(run.lastIndex - 2)! : unit;
      out.push(text.codePointAt(m.index)!, last);
    }
  }
  // Surrogate code points one by one: in a text, neighbours would pair up.
  for (let cp = 0xd800; cp <= 0xdfff; cp++) if (one.test(String.fromCharCode(cp))) out.push(cp, cp);
  const ranges = normalise(out);
  propertyCache.set(body, ranges);
  return ranges;
}

// ------------------------------------------------------------------ syntax tree

const BOL = 0;
const EOL = 1;
const WORD_B = 2;
const NOT_WORD_B = 3;

type Node =
  | { readonly t: 'empty'; readonly size: number }
  | { readonly t: 'set'; readonly r: Ranges; readonly size: number }
  | { readonly t: 'cat'; readonly items: readonly Node[]; readonly size: number }
  | { readonly t: 'alt'; readonly items: readonly Node[]; readonly size: number }
  | {
      readonly t: 'rep';
      readonly node: Node;
      readonly min: number;
      readonly max: number;
      readonly size: number;
    }
  | { readonly t: 'assert'; readonly kind: number; readonly size: number };

const EMPTY: Node = { t: 'empty', size: 0 };

function setNode(r: Ranges): Node {
  return { t: 'set', r, size: 1 };
}

function isAsciiAlnum(c: string | undefined): boolean {
  return c !== undefined && /^[A-Za-z0-9]$/.test(c);
}

function isHex(c: string | undefined): boolean {
  return c !== undefined && /^[0-9A-Fa-f]$/.test(c);
}

const ESCAPE_HINTS: Record<string, string> = {
  A: 'use ^ for the start of the value',
  Z: 'use $ for the end of the value',
  z: 'use $ for the end of the value',
  Q: 'escape special characters one by one with \\',
  E: 'escape special characters one by one with \\',
  h: 'use [ \\t] or \\s',
  R: 'use (?:\\r\\n|\\n|\\r)',
};

const LINEAR_HINT = 'RLIKE runs a linear-time matcher (RE2 semantics)';

// Sticky helpers for the parser; each is a plain sequence with no nested repetition, so RegExp
// runs them in linear time.
const BRACES = /\{(\d+)(,(\d*))?\}/y;
const PROPERTY = /\{([^}]*)\}/y;
const GROUP_NAME = /([\p{ID_Start}$_][\p{ID_Continue}$\u200c\u200d]*)>/uy;

/** One atom of a character class: a code point, or a class escape such as \d. */
type ClassAtom = { cp: number; set?: undefined; at: number } | { cp?: undefined; set: Ranges; at: number };

class Parser {
  private readonly src: string;
  private i = 0;
  private readonly names = new Set<string>();
  private depth = 0;
  wordAsserts = false;

  constructor(src: string) {
    this.src = src;
  }

  private fail(at: number, message: string, hint?: string): never {
    throw new RegexSyntaxError(at, message, false, hint);
  }

  private refuse(at: number, message: string, hint = LINEAR_HINT): never {
    throw new RegexSyntaxError(at, message, true, hint);
  }

  private checkSize(size: number, at: number): number {
    if (size > MAX_PROGRAM) {
      this.refuse(
        at,
        'regular expression too large',
        `at most ${MAX_PROGRAM} instructions once {m,n} repetitions are expanded`,
      );
    }
    return size;
  }

  parse(): Node {
    const node = this.disjunction();
    if (this.i < this.src.length) this.fail(this.i, "unmatched ')'", 'escape it as \\)');
    return node;
  }

  private disjunction(): Node {
    const items = [this.alternative()];
    while (this.src[this.i] === '|') {
      this.i++;
      items.push(this.alternative());
    }
    if (items.length === 1) return items[0]!;
    const size = items.reduce((s, n) => s + n.size, items.length - 1);
    return { t: 'alt', items, size: this.checkSize(size, this.i) };
  }

  private alternative(): Node {
    const items: Node[] = [];
    let size = 0;
    for (;;) {
      const c = this.src[this.i];
      if (c === undefined || c === '|' || c === ')') break;
      const n = this.term();
      size = this.checkSize(size + n.size, this.i);
      items.push(n);
    }
    if (items.length === 0) return EMPTY;
    if (items.length === 1) return items[0]!;
    return { t: 'cat', items, size };
  }

  private term(): Node {
    const src = this.src;
    const c = src[this.i]!;
    let atom: Node;
    let quantifiable = true;
    if (c === '^' || c === '$') {
      this.i++;
      atom = { t: 'assert', kind: c === '^' ? BOL : EOL, size: 1 };
      quantifiable = false;
    } else if (c === '\\' && (src[this.i + 1] === 'b' || src[this.i + 1] === 'B')) {
      atom = { t: 'assert', kind: src[this.i + 1] === 'b' ? WORD_B : NOT_WORD_B, size: 1 };
      this.wordAsserts = true;
      this.i += 2;
      quantifiable = false;
    } else if (c === '(') {
      atom = this.group();
    } else {
      atom = this.atom();
    }
    const qAt = this.i;
    const q = this.quantifier();
    if (!q) return atom;
    if (!quantifiable) this.fail(qAt, 'nothing to repeat', 'an anchor or \\b cannot be repeated');
    const [min, max] = q;
    const s = atom.size;
    const size = max === Infinity ? min * s + s + 1 : min * s + (max - min) * (s + 1);
    return { t: 'rep', node: atom, min, max, size: this.checkSize(size, qAt) };
  }

  /** A quantifier at the cursor (consumed), or undefined. */
  private quantifier(): [number, number] | undefined {
    const src = this.src;
    const at = this.i;
    let q: [number, number] | undefined;
    const c = src[at];
    if (c === '*') q = [0, Infinity];
    else if (c === '+') q = [1, Infinity];
    else if (c === '?') q = [0, 1];
    if (q) this.i++;
    else if (c === '{') {
      const braces = this.braces(at);
      if (!braces) return undefined;
      q = [braces.min, braces.max];
      this.i = braces.end;
      if (q[0] > q[1]) this.fail(at, 'numbers out of order in {} quantifier');
      if (q[0] > MAX_REPEAT || (q[1] !== Infinity && q[1] > MAX_REPEAT)) {
        this.refuse(
          at,
          `repetition count above ${MAX_REPEAT}`,
          'RLIKE allows {m,n} with m, n <= 1000, as RE2 does',
        );
      }
    } else return undefined;
    let lazy = false;
    if (src[this.i] === '?') {
      lazy = true;
      this.i++;
    }
    const after = src[this.i];
    if (after === '+' && !lazy) {
      this.refuse(this.i, 'possessive quantifiers are not supported', `${LINEAR_HINT}; drop the +`);
    }
    if (after === '*' || after === '+' || after === '?' || (after === '{' && this.braces(this.i))) {
      this.fail(
        this.i,
        'nothing to repeat',
        'a quantifier cannot follow another; group the first, e.g. (?:a*)+',
      );
    }
    return q;
  }

  /** {m}, {m,} or {m,n} at `at`, or undefined when the brace does not start one (then it is a literal). */
  private braces(at: number): { min: number; max: number; end: number } | undefined {
    BRACES.lastIndex = at;
    const m = BRACES.exec(this.src);
    if (!m) return undefined;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
    return { min, max, end: at + m[0].length };
  }

  private atom(): Node {
    const src = this.src;
    const at = this.i;
    const c = src[at]!;
    switch (c) {
      case '.':
        this.i++;
        return setNode(DOT);
      case '[':
        return this.charClass();
      case '\\': {
        const a = this.escape(false);
        return setNode(a.set ?? [a.cp, a.cp]);
      }
      case '*':
      case '+':
      case '?':
        return this.fail(at, 'nothing to repeat', `escape it as \\${c} for a literal ${c}`);
      case '{':
        if (this.braces(at)) this.fail(at, 'nothing to repeat', 'escape it as \\{ for a literal {');
        break;
    }
    // Any other character, ] and } included (Annex B, as RegExp without the u flag took them).
    const cp = src.codePointAt(at)!;
    this.i += cp > 0xffff ? 2 : 1;
    return setNode([cp, cp]);
  }

  private group(): Node {
    const src = this.src;
    const open = this.i;
    if (this.depth >= MAX_NESTING) {
      // Refused rather than left to overflow the stack (a 10,000-character filter could nest 5,000 deep).
      this.refuse(open, 'groups nested too deeply', `at most ${MAX_NESTING} levels of ( )`);
    }
    if (src[open + 1] === '?') {
      const d = src[open + 2];
      const d2 = src[open + 3];
      if (d === ':') this.i = open + 3;
      else if (d === '=' || d === '!') this.refuse(open, `lookahead (?${d}...) is not supported`);
      else if (d === '<' && (d2 === '=' || d2 === '!'))
        this.refuse(open, `lookbehind (?<${d2}...) is not supported`);
      else if (d === '<') this.groupName(open + 3);
      else if (d === '>') this.refuse(open, 'atomic groups (?>...) are not supported');
      else if (d === 'P' && d2 === '<')
        this.fail(open, 'invalid group (?P<', 'named groups are written (?<name>...)');
      else if (d === 'P' && d2 === '=') this.refuse(open, 'backreferences (?P=name) are not supported');
      else if (d === '#') this.fail(open, 'comments (?#...) are not supported');
      else if (d === '(') this.refuse(open, 'conditionals (?(...)...) are not supported');
      else if (
        d === 'R' ||
        d === '&' ||
        d === '+' ||
        (d === 'P' && d2 === '>') ||
        (d !== undefined && /[0-9]/.test(d))
      ) {
        this.refuse(open, 'recursion is not supported');
      } else if (d === '|') this.refuse(open, 'branch reset groups (?|...) are not supported');
      else if (d !== undefined && /[a-zA-Z-]/.test(d)) {
        this.refuse(
          open,
          'inline flags and modifiers such as (?i) are not supported',
          'RLIKE is case-sensitive: write a class such as [Aa], or use ILIKE',
        );
      } else this.fail(open, 'invalid group', 'expected (?:, (?<name> or a plain (');
    } else this.i = open + 1;
    this.depth++;
    const inner = this.disjunction();
    this.depth--;
    if (src[this.i] !== ')') this.fail(open, "unterminated group '('", 'missing )');
    this.i++;
    return inner;
  }

  private groupName(at: number): void {
    GROUP_NAME.lastIndex = at;
    const m = GROUP_NAME.exec(this.src);
    if (!m) this.fail(at - 3, 'invalid group name', 'expected (?<name>...) with a name such as user_id');
    const name = m[1]!;
    if (this.names.has(name)) this.fail(at, `duplicate group name '${name}'`);
    this.names.add(name);
    this.i = at + m[0].length;
  }

  private charClass(): Node {
    const src = this.src;
    const open = this.i;
    this.i++;
    let negated = false;
    if (src[this.i] === '^') {
      negated = true;
      this.i++;
    }
    const pairs: number[] = [];
    for (;;) {
      if (this.i >= src.length) this.fail(open, "unterminated character class '['", 'missing ]');
      if (src[this.i] === ']') {
        this.i++;
        break;
      }
      if (/^\[:[A-Za-z]+:\]/.test(src.slice(this.i, this.i + 16))) {
        this.fail(
          this.i,
          'POSIX classes such as [:alpha:] are not supported',
          'use \\p{L}, \\d, \\s or a range such as a-z',
        );
      }
      const a = this.classAtom();
      if (src[this.i] === '-' && this.i + 1 < src.length && src[this.i + 1] !== ']') {
        this.i++;
        const b = this.classAtom();
        if (a.set || b.set) {
          this.fail(
            a.set ? a.at : b.at,
            'invalid character class range',
            'a range cannot start or end with a class such as \\d; escape the - as \\-',
          );
        }
        if (a.cp! > b.cp!) this.fail(a.at, 'character class range out of order');
        pairs.push(a.cp!, b.cp!);
      } else if (a.set) pairs.push(...a.set);
      else pairs.push(a.cp, a.cp);
    }
    const r = normalise(pairs);
    return setNode(negated ? negate(r) : r);
  }

  private classAtom(): ClassAtom {
    const src = this.src;
    const at = this.i;
    if (src[at] === '\\') {
      const e = src[at + 1];
      if (e === 'b') {
        this.i += 2;
        return { cp: 8, at };
      }
      if (e === '-') {
        this.i += 2;
        return { cp: 0x2d, at };
      }
      if (e === 'B') this.fail(at, '\\B is not allowed in a character class');
      return this.escape(true);
    }
    const cp = src.codePointAt(at)!;
    this.i += cp > 0xffff ? 2 : 1;
    return { cp, at };
  }

  /** A backslash escape at the cursor (not \b or \B): one code point or a class. */
  private escape(inClass: boolean): ClassAtom {
    const src = this.src;
    const at = this.i;
    const c = src[at + 1];
    if (c === undefined) this.fail(at, 'pattern ends with a backslash', 'write \\\\ for a literal backslash');
    this.i = at + 2;
    switch (c) {
      case 'd':
        return { set: DIGIT, at };
      case 'D':
        return { set: negate(DIGIT), at };
      case 'w':
        return { set: WORD, at };
      case 'W':
        return { set: negate(WORD), at };
      case 's':
        return { set: SPACE, at };
      case 'S':
        return { set: negate(SPACE), at };
      case 'p':
      case 'P': {
        PROPERTY.lastIndex = this.i;
        const m = PROPERTY.exec(src);
        if (!m)
          this.fail(at, `\\${c} needs a property name in braces`, 'for example \\p{L} or \\p{Script=Greek}');
        const r = unicodeProperty(m[1]!);
        if (!r)
          this.fail(
            at,
            `unknown Unicode property '${m[1]}'`,
            'for example \\p{L}, \\p{Lu}, \\p{N} or \\p{Script=Greek}',
          );
        this.i += m[0].length;
        return { set: c === 'p' ? r : negate(r), at };
      }
      case 't':
        return { cp: 9, at };
      case 'n':
        return { cp: 10, at };
      case 'v':
        return { cp: 11, at };
      case 'f':
        return { cp: 12, at };
      case 'r':
        return { cp: 13, at };
      case '0':
        if (/[0-9]/.test(src[this.i] ?? ''))
          this.fail(at, 'octal escapes are not supported', 'write \\xHH or \\uHHHH');
        return { cp: 0, at };
      case 'k':
        return this.refuse(at, 'backreferences \\k<name> are not supported');
      case 'c': {
        const l = src[this.i];
        if (l === undefined || !/[A-Za-z]/.test(l))
          this.fail(at, 'invalid control escape', 'expected a letter after \\c');
        this.i++;
        return { cp: l.charCodeAt(0) % 32, at };
      }
      case 'x': {
        if (!isHex(src[this.i]) || !isHex(src[this.i + 1]))
          this.fail(at, 'invalid \\x escape', 'expected two hex digits');
        const cp = Number.parseInt(src.slice(this.i, this.i + 2), 16);
        this.i += 2;
        return { cp, at };
      }
      case 'u':
        return { cp: this.unicodeEscape(at), at };
    }
    if (/[1-9]/.test(c)) {
      return inClass
        ? this.fail(at, 'octal escapes are not supported', 'write \\xHH or \\uHHHH')
        : this.refuse(at, 'backreferences are not supported');
    }
    if (isAsciiAlnum(c)) this.fail(at, `unknown escape '\\${c}'`, ESCAPE_HINTS[c]);
    // Escaped punctuation (or any other character) stands for itself.
    const cp = src.codePointAt(at + 1)!;
    this.i = at + 1 + (cp > 0xffff ? 2 : 1);
    return { cp, at };
  }

  /** \uHHHH (a surrogate pair of two escapes is one code point, as with the u flag) or \u{H...}. */
  private unicodeEscape(at: number): number {
    const src = this.src;
    if (src[this.i] === '{') {
      const m = /^\{([0-9A-Fa-f]{1,8})\}/.exec(src.slice(this.i, this.i + 10));
      const cp = m ? Number.parseInt(m[1]!, 16) : -1;
      if (!m || cp > MAX_CP)
        this.fail(at, 'invalid \\u{...} escape', 'expected a code point up to 10FFFF in hex');
      this.i += m[0].length;
      return cp;
    }
    const hex4 = (from: number): number => {
      const s = src.slice(from, from + 4);
      return /^[0-9A-Fa-f]{4}$/.test(s) ? Number.parseInt(s, 16) : -1;
    };
    const cp = hex4(this.i);
    if (cp < 0) this.fail(at, 'invalid \\u escape', 'expected four hex digits or \\u{...}');
    this.i += 4;
    if (cp >= 0xd800 && cp <= 0xdbff && src[this.i] === '\\' && src[this.i + 1] === 'u') {
      const low = hex4(this.i + 2);
      if (low >= 0xdc00 && low <= 0xdfff) {
        this.i += 6;
        return (cp - 0xd800) * 0x400 + (low - 0xdc00) + 0x10000;
      }
    }
    return cp;
  }
}

// ------------------------------------------------------------------ program

const OP_CHAR = 0;
const OP_SPLIT = 1;
const OP_ASSERT = 2;
const OP_MATCH = 3;

interface Program {
  op: number[];
  /** CHAR, ASSERT: next; SPLIT: first branch. */
  x: number[];
  /** CHAR: index into sets; SPLIT: second branch; ASSERT: kind. */
  y: number[];
  sets: Ranges[];
}

function emit(p: Program, op: number, x: number, y: number): number {
  p.op.push(op);
  p.x.push(x);
  p.y.push(y);
  return p.op.length - 1;
}

/** Emits `node` followed by `next`; returns its entry (built back to front, so no patching). */
function compileNode(p: Program, node: Node, next: number): number {
  switch (node.t) {
    case 'empty':
      return next;
    case 'set':
      p.sets.push(node.r);
      return emit(p, OP_CHAR, next, p.sets.length - 1);
    case 'assert':
      return emit(p, OP_ASSERT, next, node.kind);
    case 'cat': {
      let at = next;
      for (let k = node.items.length - 1; k >= 0; k--) at = compileNode(p, node.items[k]!, at);
      return at;
    }
    case 'alt': {
      const entries = node.items.map((it) => compileNode(p, it, next));
      let at = entries[entries.length - 1]!;
      for (let k = entries.length - 2; k >= 0; k--) at = emit(p, OP_SPLIT, entries[k]!, at);
      return at;
    }
    case 'rep': {
      let at: number;
      if (node.max === Infinity) {
        const loop = emit(p, OP_SPLIT, -1, next);
        p.x[loop] = compileNode(p, node.node, loop);
        at = loop;
      } else {
        at = next;
        for (let k = node.min; k < node.max; k++) at = emit(p, OP_SPLIT, compileNode(p, node.node, at), next);
      }
      for (let k = 0; k < node.min; k++) at = compileNode(p, node.node, at);
      return at;
    }
  }
}

/** True when every match must start at the beginning of the value (a leading ^ on every branch). */
function anchoredAtStart(node: Node): boolean {
  switch (node.t) {
    case 'assert':
      return node.kind === BOL;
    case 'cat':
      return node.items.length > 0 && anchoredAtStart(node.items[0]!);
    case 'alt':
      return node.items.every(anchoredAtStart);
    case 'rep':
      return node.min > 0 && anchoredAtStart(node.node);
    default:
      return false;
  }
}

/**
 * The text every match starts with ('' when none): the pattern's leading single characters.
 * Stops before a surrogate code point, which indexOf could find inside a pair.
 */
function literalPrefix(node: Node): string {
  const single = (n: Node): number =>
    n.t === 'set' && n.r.length === 2 && n.r[0] === n.r[1] && !(n.r[0]! >= 0xd800 && n.r[0]! <= 0xdfff)
      ? n.r[0]!
      : -1;
  let out = '';
  for (const item of node.t === 'cat' ? node.items : [node]) {
    const cp = single(item.t === 'rep' && item.min > 0 ? item.node : item);
    if (cp < 0) break;
    out += String.fromCodePoint(cp);
    if (item.t === 'rep') break;
  }
  return out;
}

// ------------------------------------------------------------------ matcher

// What the previous character was (a DFA state's context) and what the next one is.
const CTX_START = 0;
const CTX_OTHER = 1;
const CTX_WORD = 2;
const CTX_END = 0;

interface DState {
  /** NFA states alive before the next character (not yet followed through splits/assertions). */
  readonly pcs: Int32Array;
  readonly ctx: number;
  /** Transition per character class, filled in as they are needed. */
  next: Array<DState | undefined> | undefined;
  /** Whether the value may end here: -1 not computed yet. */
  end: number;
  /** The cache generation the state belongs to; rows are only filled for the current one. */
  readonly epoch: number;
  /** No match in progress: only the start of a new one is alive. */
  readonly idle: boolean;
}

const MATCH_STATE: DState = {
  pcs: new Int32Array(0),
  ctx: CTX_OTHER,
  next: undefined,
  end: 1,
  epoch: -1,
  idle: false,
};
const DEAD_STATE: DState = {
  pcs: new Int32Array(0),
  ctx: CTX_OTHER,
  next: undefined,
  end: 0,
  epoch: -1,
  idle: false,
};

export interface RegexOptions {
  /**
   * Most DFA states kept (default: what fits CACHE_CELLS transition cells). 0 turns the cache off:
   * every character is then a fresh NFA step, the worst case tests measure.
   */
  maxStates?: number;
}

/** A compiled RLIKE pattern: `test` answers whether it matches anywhere in a value. */
export class LinearRegex {
  readonly source: string;
  /** NFA instructions; a character costs at most about twice this many steps. */
  readonly programSize: number;
  /**
   * Work done so far, in steps: one per input character, plus one per NFA instruction visited
   * while computing a DFA transition. Tests use it to show matching is linear in the input
   * (O(input × programSize)) without timing anything.
   */
  steps = 0;

  private readonly op: Int32Array;
  private readonly x: Int32Array;
  private readonly y: Int32Array;
  private readonly sets: readonly Ranges[];
  private readonly startPc: number;
  private readonly anchored: boolean;
  /** Character classes: class k holds the code points in [bounds[k], bounds[k + 1]). */
  private readonly bounds: Int32Array;
  private readonly latin1: Uint16Array;
  /** Context a character of class k leaves behind / presents to assertions. */
  private readonly classCtx: Uint8Array;
  private readonly maxStates: number;
  private readonly states = new Map<string, DState>();
  private initial: DState | undefined;
  /** The idle state after a character (what a skip ahead lands in), once built. */
  private idleAfter: DState | undefined;
  /**
   * Literal text every match starts with, when skipping to it is sound: from an idle state the
   * matcher jumps to its next occurrence with indexOf instead of stepping through the DFA (the
   * skipped characters still count as steps). Off for anchored patterns, and with \b, whose
   * context a jump would lose.
   */
  private readonly prefix: string;
  private readonly mark: Int32Array;
  private gen = 0;
  private epoch = 0;
  private readonly stack: number[] = [];
  private readonly found: number[] = [];

  constructor(source: string, opts: RegexOptions = {}) {
    this.source = source;
    const parser = new Parser(source);
    const tree = parser.parse();
    const p: Program = { op: [], x: [], y: [], sets: [] };
    const match = emit(p, OP_MATCH, -1, -1);
    this.startPc = compileNode(p, tree, match);
    this.programSize = p.op.length;
    this.op = Int32Array.from(p.op);
    this.x = Int32Array.from(p.x);
    this.y = Int32Array.from(p.y);
    this.sets = p.sets;
    this.anchored = anchoredAtStart(tree);
    this.prefix = this.anchored || parser.wordAsserts ? '' : literalPrefix(tree);
    this.mark = new Int32Array(p.op.length);

    // Code points no set tells apart share a class, so a DFA row has one cell per class, not
    // per code point. With \b, word characters must also be told apart from the rest.
    const cuts = new Set<number>([0]);
    const addCuts = (r: Ranges): void => {
      for (let k = 0; k < r.length; k += 2) {
        cuts.add(r[k]!);
        if (r[k + 1]! < MAX_CP) cuts.add(r[k + 1]! + 1);
      }
    };
    for (const r of p.sets) addCuts(r);
    if (parser.wordAsserts) addCuts(WORD);
    this.bounds = Int32Array.from([...cuts].sort((a, b) => a - b));
    const n = this.bounds.length;
    this.classCtx = new Uint8Array(n);
    for (let k = 0; k < n; k++) {
      this.classCtx[k] = parser.wordAsserts && isWordCp(this.bounds[k]!) ? CTX_WORD : CTX_OTHER;
    }
    this.latin1 = new Uint16Array(256);
    for (let cp = 0; cp < 256; cp++) this.latin1[cp] = this.classOf(cp);
    this.maxStates = opts.maxStates ?? Math.max(16, Math.floor(CACHE_CELLS / n));
  }

  /** Whether the pattern matches anywhere in `s` (read as code points). */
  test(s: string): boolean {
    let st = this.initial ?? this.startState();
    const n = s.length;
    let steps = 0;
    let i = 0;
    let result: boolean | undefined;
    const prefix = this.prefix;
    while (i < n) {
      if (st.idle && prefix !== '') {
        const j = s.indexOf(prefix, i);
        if (j < 0) {
          // No match in progress and none can start: the rest is read by indexOf, not the DFA.
          steps += n - i;
          result = false;
          break;
        }
        if (j > i) {
          steps += j - i;
          i = j;
          st = this.idleAfter ?? this.idleState();
        }
      }
      let c = s.charCodeAt(i++);
      if (c >= 0xd800 && c <= 0xdbff && i < n) {
        const d = s.charCodeAt(i);
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = (c - 0xd800) * 0x400 + (d - 0xdc00) + 0x10000;
          i++;
        }
      }
      const k = c < 256 ? this.latin1[c]! : this.classOf(c);
      steps++;
      const row = st.next;
      const nx = (row === undefined ? undefined : row[k]) ?? this.transition(st, k);
      if (nx === MATCH_STATE) {
        result = true;
        break;
      }
      if (nx === DEAD_STATE) {
        result = false;
        break;
      }
      st = nx;
    }
    this.steps += steps;
    if (result !== undefined) return result;
    if (st.end < 0) st.end = this.closure(st.pcs, st.ctx, CTX_END) ? 1 : 0;
    return st.end === 1;
  }

  private classOf(cp: number): number {
    const b = this.bounds;
    let lo = 0;
    let hi = b.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (b[mid]! <= cp) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private startState(): DState {
    const st = this.intern(Int32Array.of(this.startPc), CTX_START);
    this.initial = st;
    return st;
  }

  private idleState(): DState {
    const st = this.intern(Int32Array.of(this.startPc), CTX_OTHER);
    this.idleAfter = st;
    return st;
  }

  private intern(pcs: Int32Array, ctx: number): DState {
    const idle = pcs.length === 1 && pcs[0] === this.startPc;
    if (this.maxStates === 0) return { pcs, ctx, next: undefined, end: -1, epoch: -1, idle };
    const key = `${ctx}:${pcs.join(',')}`;
    let st = this.states.get(key);
    if (st === undefined) {
      if (this.states.size >= this.maxStates) {
        // Full: start over rather than grow; the states in use are rebuilt as they are reached.
        this.states.clear();
        this.epoch++;
        this.initial = undefined;
        this.idleAfter = undefined;
      }
      st = { pcs, ctx, next: undefined, end: -1, epoch: this.epoch, idle };
      this.states.set(key, st);
    }
    return st;
  }

  /**
   * Follows splits and assertions from `pcs` (between a character of context `prev` and one of
   * context `next`), leaving the CHAR instructions reached in this.found; true when MATCH is
   * reachable. Each instruction is visited at most once.
   */
  private closure(pcs: Int32Array, prev: number, next: number): boolean {
    const { op, x, y, mark, stack, found } = this;
    found.length = 0;
    if (++this.gen === 0x7fffffff) {
      mark.fill(0);
      this.gen = 1;
    }
    const gen = this.gen;
    for (let k = pcs.length - 1; k >= 0; k--) stack.push(pcs[k]!);
    let steps = 0;
    let matched = false;
    while (stack.length > 0) {
      const pc = stack.pop()!;
      if (mark[pc] === gen) continue;
      mark[pc] = gen;
      steps++;
      switch (op[pc]) {
        case OP_CHAR:
          found.push(pc);
          break;
        case OP_SPLIT:
          stack.push(y[pc]!, x[pc]!);
          break;
        case OP_ASSERT: {
          const kind = y[pc]!;
          let ok: boolean;
          if (kind === BOL) ok = prev === CTX_START;
          else if (kind === EOL) ok = next === CTX_END;
          else {
            const boundary = (prev === CTX_WORD) !== (next === CTX_WORD);
            ok = kind === WORD_B ? boundary : !boundary;
          }
          if (ok) stack.push(x[pc]!);
          break;
        }
        case OP_MATCH:
          matched = true;
          break;
      }
      if (matched) break;
    }
    stack.length = 0;
    this.steps += steps;
    return matched;
  }

  /** The state after a character of class k (computed, and cached unless the cache is off). */
  private transition(st: DState, k: number): DState {
    let nx: DState;
    if (this.closure(st.pcs, st.ctx, this.classCtx[k]!)) nx = MATCH_STATE;
    else {
      const cp = this.bounds[k]!;
      const { found, x, y, sets } = this;
      const targets: number[] = [];
      for (const pc of found) if (inRanges(sets[y[pc]!]!, cp)) targets.push(x[pc]!);
      this.steps += found.length;
      // Unanchored search: a match may also start after this character.
      if (!this.anchored) targets.push(this.startPc);
      if (targets.length === 0) nx = DEAD_STATE;
      else {
        targets.sort((a, b) => a - b);
        let w = 1;
        for (let r = 1; r < targets.length; r++)
          if (targets[r] !== targets[w - 1]) targets[w++] = targets[r]!;
        targets.length = w;
        nx = this.intern(Int32Array.from(targets), this.classCtx[k]!);
      }
    }
    // Only cached while `st` is still in the cache (intern may just have emptied it).
    if (st.epoch === this.epoch) {
      st.next ??= new Array<DState | undefined>(this.bounds.length);
      st.next[k] = nx;
    }
    return nx;
  }
}

/** Compiles an RLIKE pattern; throws RegexSyntaxError (with the index of the problem) when refused. */
export function compileRegex(source: string, opts?: RegexOptions): LinearRegex {
  return new LinearRegex(source, opts);
}
