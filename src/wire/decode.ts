// Decode of buffered spans and log records into plain objects, done once per completed trace
// (never on the receive path), with limits, as the OpenTelemetry SDKs' SpanLimits and
// LogRecordLimits bound what a span may carry: attributes per span (log record, resource,
// scope), events and links per span, attributes per event and link, the length of a string or
// bytes value, the items of an array or map value and how deeply values nest, and in all how
// many values one trace's decode may produce. What lies past a limit is skipped by its length
// without being decoded, and counted, so the work of a decode follows the limits, not the input:
// a span with a million attributes costs one length read per attribute past the limit.
//
// Hand-written rather than protobufjs reflection: reflection decodes everything first (and stops
// at 100 levels of message nesting, i.e. about 33 levels of nested map values, losing the whole
// span), and builds every value twice. Attribute values become plain JS values; int64 values
// become numbers (exact up to 2^53, which covers token counts, sizes and epoch milliseconds).
// A value nested deeper than the limit becomes the marker string DEPTH_MARKER; a string longer
// than the limit is cut at a character boundary.
import type { ResourceRef, ScopeRef } from './reframe.ts';
import { WireError } from './scan.ts';

export type AttrValue = string | number | boolean | Uint8Array | null | AttrValue[] | { [k: string]: AttrValue };
export type Attributes = Record<string, AttrValue>;

export interface SpanEventData {
  name: string;
  timeUnixNano: bigint;
  attributes: Attributes;
  /** Attributes the sender dropped plus those cut by the view limits (absent = 0). */
  droppedAttributesCount?: number;
}

export interface SpanLinkData {
  traceId: string;
  spanId: string;
  attributes: Attributes;
  /** Attributes the sender dropped plus those cut by the view limits (absent = 0). */
  droppedAttributesCount?: number;
}

export const STATUS_UNSET = 0;
export const STATUS_OK = 1;
export const STATUS_ERROR = 2;

export interface ScopeData {
  name: string;
  version: string;
  attributes: Attributes;
}

export interface SpanData {
  traceId: string; // lowercase hex
  spanId: string;
  parentSpanId: string; // '' for a root span
  traceState: string;
  flags: number;
  name: string;
  kind: number; // OTLP SpanKind value
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  startTimeMs: number;
  endTimeMs: number;
  attributes: Attributes;
  events: SpanEventData[];
  links: SpanLinkData[];
  status: { code: number; message: string };
  /** Attributes of the span's resource; the same object for spans that shared a resource. */
  resource: Attributes;
  scope: ScopeData;
  /** Experiment header of the request that carried this span, if any. */
  experimentHeader: string | undefined;
  /**
   * As OTLP's dropped_*_count: what the sender dropped plus what the view limits cut (the
   * decoder always sets them; absent = 0 for views built by hand).
   */
  droppedAttributesCount?: number;
  droppedEventsCount?: number;
  droppedLinksCount?: number;
  /**
   * Log records of the trace that name this span (set by the GenAI view, which joins them;
   * absent when there are none), ordered by time.
   */
  logs?: LogRecordData[];
}

export interface LogRecordData {
  traceId: string; // lowercase hex
  spanId: string; // '' when the record names no span
  timeUnixNano: bigint;
  observedTimeUnixNano: bigint;
  severityNumber: number;
  severityText: string;
  /** The record's event_name field ('' when unset; older SDKs put it in an `event.name` attribute). */
  eventName: string;
  /** The body as a plain value (a kvlist body becomes an object); null when absent. */
  body: AttrValue;
  attributes: Attributes;
  resource: Attributes;
  scope: ScopeData;
  /** Attributes the sender dropped plus those cut by the view limits (absent = 0). */
  droppedAttributesCount?: number;
}

// ------------------------------------------------------------------ limits and cuts

/**
 * Bounds of one trace's decode (config `genai.viewLimits`). Counts are of items; lengths are
 * bytes of the encoded value (UTF-8 for strings).
 */
export interface ViewLimits {
  /** Spans decoded per trace (parentless spans first, then in arrival order). */
  spansPerTrace: number;
  /** Log records decoded per trace, in arrival order. */
  logRecordsPerTrace: number;
  /** Values decoded per trace in all: every attribute value, array item and map entry, at any depth. */
  valuesPerTrace: number;
  /** Attributes of one span, log record, resource or scope. */
  attributeCount: number;
  /** Bytes of one string or bytes value (also attribute keys, span and event names). */
  attributeValueLength: number;
  /** Items of one array value, entries of one map (kvlist) value. */
  arrayItems: number;
  /** Levels of arrays and maps nested inside one value; deeper ones become DEPTH_MARKER. */
  valueDepth: number;
  eventsPerSpan: number;
  linksPerSpan: number;
  /** Attributes of one span event or link. */
  attributesPerEvent: number;
}

/**
 * Generous, bounded defaults: the OpenTelemetry SDK defaults (128 attributes, events and links,
 * unlimited value length) are what instrumented apps usually send at most, but flattened GenAI
 * conventions (OpenInference llm.input_messages.N.*, retrieval.documents.N.*) and long
 * conversations as events go past 128, so attributes and events get 1,024. Measured costs at
 * these limits are in src/genai/view.ts.
 */
export const DEFAULT_VIEW_LIMITS: Readonly<ViewLimits> = Object.freeze({
  spansPerTrace: 10_000,
  logRecordsPerTrace: 10_000,
  valuesPerTrace: 100_000,
  attributeCount: 1024,
  attributeValueLength: 256 * 1024,
  arrayItems: 1024,
  valueDepth: 32,
  eventsPerSpan: 1024,
  linksPerSpan: 128,
  attributesPerEvent: 128,
});

/** What the limits cut from one trace's view, by kind of item. */
export interface ViewCuts {
  spans: number;
  logRecords: number;
  /** Attributes of spans, events, links, log records, resources and scopes (count limits and the values budget). */
  attributes: number;
  events: number;
  links: number;
  /** Items of array values and entries of map values. */
  arrayItems: number;
  /** String and bytes values (and keys, names) cut to attributeValueLength. */
  truncatedValues: number;
  /** Values nested deeper than valueDepth, replaced by DEPTH_MARKER. */
  depth: number;
}

export const VIEW_CUT_KINDS: readonly (keyof ViewCuts)[] = [
  'spans',
  'logRecords',
  'attributes',
  'events',
  'links',
  'arrayItems',
  'truncatedValues',
  'depth',
];

export function noCuts(): ViewCuts {
  return { spans: 0, logRecords: 0, attributes: 0, events: 0, links: 0, arrayItems: 0, truncatedValues: 0, depth: 0 };
}

/** What a value nested deeper than the depth limit is replaced by. */
export const DEPTH_MARKER = '[depth limit]';

// Rough V8 sizes, for the decoded-size estimate the memory accounting uses (view.ts scales it to
// the whole view; VIEW_BYTES_PER_DECODED_BYTE says how it compares with the heap).
const SIZE = { string: 24, number: 16, slot: 16, object: 64, array: 32, bytes: 96, span: 480, event: 96, log: 320 };

// ------------------------------------------------------------------ the reader

// The cursor is module state, as in scan.ts: the decode is synchronous and never re-entered.
let buf: Uint8Array = new Uint8Array(0);
let pos = 0;

function varint(limit: number): number {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 8; i++) {
    if (pos >= limit) throw new WireError('truncated varint', pos);
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if (b < 0x80) return result;
    mul *= 128;
  }
  throw new WireError('varint too long for a tag or length', pos);
}

/** An int64 varint as a number (two's complement for negative values; exact up to 2^53). */
function int64(limit: number): number {
  let lo = 0;
  let hi = 0;
  let shift = 0;
  for (let i = 0; i < 10; i++) {
    if (pos >= limit) throw new WireError('truncated varint', pos);
    const b = buf[pos++]!;
    if (shift < 28) lo |= (b & 0x7f) << shift;
    else if (shift === 28) {
      lo |= (b & 0x0f) << 28;
      hi |= (b & 0x7f) >>> 4;
    } else hi |= (b & 0x7f) << (shift - 32);
    if (b < 0x80) {
      lo >>>= 0;
      hi >>>= 0;
      if (hi >>> 31) {
        // Negative: -(~value + 1).
        lo = (~lo + 1) >>> 0;
        hi = ~hi >>> 0;
        if (lo === 0) hi = (hi + 1) >>> 0;
        return -(lo + hi * 4294967296);
      }
      return lo + hi * 4294967296;
    }
    shift += 7;
  }
  throw new WireError('malformed varint', pos);
}

function skipVarint(limit: number): void {
  for (let i = 0; i < 10; i++) {
    if (pos >= limit) throw new WireError('truncated varint', pos);
    if (buf[pos++]! < 0x80) return;
  }
  throw new WireError('malformed varint', pos);
}

function u32le(at: number): number {
  return (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0;
}

function fixed64(limit: number): bigint {
  if (pos + 8 > limit) throw new WireError('truncated fixed64', pos);
  const lo = u32le(pos);
  const hi = u32le(pos + 4);
  pos += 8;
  return hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) | BigInt(lo);
}

function fixed32(limit: number): number {
  if (pos + 4 > limit) throw new WireError('truncated fixed32', pos);
  const v = u32le(pos);
  pos += 4;
  return v;
}

const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);

function double(limit: number): number {
  if (pos + 8 > limit) throw new WireError('truncated double', pos);
  for (let i = 0; i < 8; i++) f64Bytes[i] = buf[pos + i]!;
  pos += 8;
  return f64[0]!;
}

/** The end of a length-delimited field whose length is at pos; pos moves to its first byte. */
function lengthEnd(limit: number): number {
  const len = varint(limit);
  const end = pos + len;
  if (end > limit) throw new WireError('field runs past the end of its message', pos);
  return end;
}

/**
 * Skips consecutive length-delimited fields with this one-byte tag (a repeated field's run) and
 * returns how many: the cost of what lies past a limit is one length read per item.
 */
function skipRun(tag: number, limit: number): number {
  let n = 0;
  while (pos < limit && buf[pos] === tag) {
    pos++;
    pos = lengthEnd(limit);
    n++;
  }
  return n;
}

function skip(wireType: number, limit: number): void {
  switch (wireType) {
    case 0:
      skipVarint(limit);
      return;
    case 1:
      pos += 8;
      break;
    case 2:
      pos = lengthEnd(limit);
      return;
    case 5:
      pos += 4;
      break;
    default:
      throw new WireError(`unsupported wire type ${wireType}`, pos);
  }
  if (pos > limit) throw new WireError('field runs past the end of its message', pos);
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Hex of an id; '' when empty or all zero bytes when `zeroIsEmpty`. */
function hexId(start: number, end: number, zeroIsEmpty: boolean): string {
  if (end <= start) return '';
  let s = '';
  let any = false;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (b !== 0) any = true;
    s += HEX[b];
  }
  return zeroIsEmpty && !any ? '' : s;
}

// ------------------------------------------------------------------ the decoder

/** What a decode of one trace has built so far. */
export interface DecodeWork {
  /** Values decoded (attribute values, array items and map entries at any depth). */
  values: number;
  /** Estimated bytes of the decoded objects on the heap. */
  bytes: number;
}

/**
 * Decodes the spans and log records of one trace under one set of limits, counting what it
 * cut (`cuts`) and what it built (`work`). Resources and scopes are decoded once per ResourceRef
 * / ScopeRef and shared; their cuts count towards every trace that uses them.
 */
export class ViewDecoder {
  readonly limits: Readonly<ViewLimits>;
  private c: ViewCuts = noCuts();
  private w: DecodeWork = { values: 0, bytes: 0 };
  private readonly seenShared = new Set<object>();

  constructor(limits: Readonly<ViewLimits> = DEFAULT_VIEW_LIMITS) {
    this.limits = limits;
  }

  /** What the limits cut so far (live counters). */
  get cuts(): Readonly<ViewCuts> {
    return this.c;
  }

  /** What was decoded so far (live counters). */
  get work(): Readonly<DecodeWork> {
    return this.w;
  }

  /** Whether anything was cut so far. */
  get truncated(): boolean {
    for (const k of VIEW_CUT_KINDS) if (this.c[k] > 0) return true;
    return false;
  }

  /** Counts items the caller cut itself (spans and log records past their per-trace limits). */
  cut(kind: keyof ViewCuts, n = 1): void {
    this.c[kind] += n;
  }

  // ---------------------------------------------------------------- values

  private string(end: number): string {
    let stop = end;
    if (end - pos > this.limits.attributeValueLength) {
      stop = pos + this.limits.attributeValueLength;
      // Back to a character boundary: never split a UTF-8 sequence.
      while (stop > pos && (buf[stop]! & 0xc0) === 0x80) stop--;
      this.c.truncatedValues++;
    }
    const s = utf8(pos, stop);
    this.w.bytes += SIZE.string + (stop - pos);
    pos = end;
    return s;
  }

  private bytesValue(end: number): Uint8Array {
    let stop = end;
    if (end - pos > this.limits.attributeValueLength) {
      stop = pos + this.limits.attributeValueLength;
      this.c.truncatedValues++;
    }
    // A copy: a view must not pin the request buffer the span arrived in.
    const out = new Uint8Array(buf.subarray(pos, stop));
    this.w.bytes += SIZE.bytes + out.length;
    pos = end;
    return out;
  }

  /** Whether the trace's values budget has room for one more value. */
  private budget(): boolean {
    return this.w.values < this.limits.valuesPerTrace;
  }

  /** An AnyValue message in [pos, end) at nesting `depth` (an attribute's own value is 0). */
  private anyValue(end: number, depth: number): AttrValue {
    this.w.values++;
    // A oneof: the last member on the wire wins. Find it first, then decode only that one.
    let field = 0;
    let at = -1;
    let stop = -1;
    while (pos < end) {
      const tag = varint(end);
      const f = tag >>> 3;
      const wt = tag & 7;
      if (wt === 2 && (f === 1 || f === 5 || f === 6 || f === 7)) {
        const e = lengthEnd(end);
        field = f;
        at = pos;
        stop = e;
        pos = e;
      } else if (wt === 0 && (f === 2 || f === 3)) {
        field = f;
        at = pos;
        skipVarint(end);
      } else if (wt === 1 && f === 4) {
        field = f;
        at = pos;
        pos += 8;
        if (pos > end) throw new WireError('truncated double', pos);
      } else skip(wt, end);
    }
    if (field === 0) return null;
    pos = at;
    let v: AttrValue;
    switch (field) {
      case 1:
        v = this.string(stop);
        break;
      case 2:
        v = int64(end) !== 0;
        this.w.bytes += SIZE.slot;
        break;
      case 3:
        v = int64(end);
        this.w.bytes += SIZE.number;
        break;
      case 4:
        v = double(end);
        this.w.bytes += SIZE.number;
        break;
      case 7:
        v = this.bytesValue(stop);
        break;
      default:
        if (depth >= this.limits.valueDepth) {
          this.c.depth++;
          this.w.bytes += SIZE.string;
          v = DEPTH_MARKER;
        } else v = field === 5 ? this.arrayValue(stop, depth + 1) : this.kvlistValue(stop, depth + 1);
    }
    pos = end;
    return v;
  }

  /** ArrayValue { repeated AnyValue values = 1 }. */
  private arrayValue(end: number, depth: number): AttrValue[] {
    const out: AttrValue[] = [];
    this.w.bytes += SIZE.array;
    while (pos < end) {
      const tag = varint(end);
      if (tag !== 10) {
        skip(tag & 7, end);
        continue;
      }
      const e = lengthEnd(end);
      if (out.length < this.limits.arrayItems && this.budget()) {
        out.push(this.anyValue(e, depth));
        this.w.bytes += 8;
        pos = e;
      } else {
        pos = e;
        this.c.arrayItems += 1 + skipRun(10, end);
      }
    }
    return out;
  }

  /** KeyValueList { repeated KeyValue values = 1 }. */
  private kvlistValue(end: number, depth: number): Attributes {
    const out: Attributes = {};
    this.w.bytes += SIZE.object;
    let n = 0;
    while (pos < end) {
      const tag = varint(end);
      if (tag !== 10) {
        skip(tag & 7, end);
        continue;
      }
      const e = lengthEnd(end);
      if (n < this.limits.arrayItems && this.budget()) {
        this.keyValue(e, out, depth);
        n++;
        pos = e;
      } else {
        pos = e;
        this.c.arrayItems += 1 + skipRun(10, end);
      }
    }
    return out;
  }

  /** KeyValue { string key = 1; AnyValue value = 2 } into `out` (a later duplicate key wins). */
  private keyValue(end: number, out: Attributes, depth: number): void {
    let key = '';
    let valueAt = -1;
    let valueEnd = -1;
    while (pos < end) {
      const tag = varint(end);
      if (tag === 10) {
        const e = lengthEnd(end);
        key = this.string(e);
      } else if (tag === 18) {
        valueEnd = lengthEnd(end);
        valueAt = pos;
        pos = valueEnd;
      } else skip(tag & 7, end);
    }
    let v: AttrValue = null;
    if (valueAt >= 0) {
      pos = valueAt;
      v = this.anyValue(valueEnd, depth);
    } else this.w.values++;
    this.w.bytes += SIZE.slot + SIZE.string;
    out[key] = v;
    pos = end;
  }

  /**
   * One repeated `attributes` field element at [pos, end) of an item that has decoded `n` so
   * far: decoded, or skipped and counted when the item's limit or the trace's budget is reached.
   * Returns the new count (unchanged when the attribute was cut).
   */
  private attribute(end: number, out: Attributes, n: number, max: number): number {
    if (n < max && this.budget()) {
      this.keyValue(end, out, 0);
      n++;
    } else this.c.attributes++;
    pos = end;
    return n;
  }

  // ---------------------------------------------------------------- messages

  /** Attributes of an encoded Resource, decoded once per ResourceRef (and per limits). */
  resource(ref: ResourceRef): Attributes {
    const got = this.shared(resourceCache, ref, () => {
      const attrs: Attributes = {};
      if (!ref.bytes) return attrs;
      this.enter(ref.bytes);
      const end = ref.bytes.length;
      let n = 0;
      while (pos < end) {
        const tag = varint(end);
        if (tag === 10) n = this.attribute(lengthEnd(end), attrs, n, this.limits.attributeCount);
        else skip(tag & 7, end);
      }
      return attrs;
    });
    return got;
  }

  /** An encoded InstrumentationScope, decoded once per ScopeRef (and per limits). */
  scope(ref: ScopeRef): ScopeData {
    return this.shared(scopeCache, ref, () => {
      const s: ScopeData = { name: '', version: '', attributes: {} };
      if (!ref.bytes) return s;
      this.enter(ref.bytes);
      const end = ref.bytes.length;
      let n = 0;
      while (pos < end) {
        const tag = varint(end);
        if (tag === 10) s.name = this.string(lengthEnd(end));
        else if (tag === 18) s.version = this.string(lengthEnd(end));
        else if (tag === 26) n = this.attribute(lengthEnd(end), s.attributes, n, this.limits.attributeCount);
        else skip(tag & 7, end);
      }
      return s;
    });
  }

  /**
   * A resource's or scope's decode, cached per ref: the cuts it made are kept with it and added
   * to every trace decoder that uses it (once per trace), so each view reports them.
   */
  private shared<K extends object, V>(cache: WeakMap<K, SharedEntry<V>>, ref: K, decode: () => V): V {
    let entry = cache.get(ref);
    if (entry === undefined || entry.limits !== this.limits) {
      // Decoded against counters of its own: the entry keeps the cuts of this ref alone, and
      // what the trace has used of its values budget does not shape what is cached.
      const outer = { c: this.c, w: this.w };
      this.c = noCuts();
      this.w = { values: 0, bytes: 0 };
      try {
        entry = { limits: this.limits, value: decode(), cuts: this.c };
      } finally {
        this.c = outer.c;
        this.w = outer.w;
      }
      cache.set(ref, entry);
    }
    if (!this.seenShared.has(entry)) {
      this.seenShared.add(entry);
      for (const k of VIEW_CUT_KINDS) this.c[k] += entry.cuts[k];
    }
    return entry.value;
  }

  private enter(bytes: Uint8Array): void {
    buf = bytes;
    pos = 0;
  }

  /** One encoded Span message. Throws a WireError when the bytes are not a valid Span. */
  span(bytes: Uint8Array, resource: ResourceRef, scope: ScopeRef): SpanData {
    const resourceAttrs = this.resource(resource);
    const scopeData = this.scope(scope);
    this.enter(bytes);
    const end = bytes.length;
    const L = this.limits;
    let traceId = '';
    let spanId = '';
    let parentSpanId = '';
    let traceState = '';
    let flags = 0;
    let name = '';
    let kind = 0;
    let start = 0n;
    let stop = 0n;
    const attributes: Attributes = {};
    let nAttrs = 0;
    let droppedAttributes = 0;
    const events: SpanEventData[] = [];
    let droppedEvents = 0;
    const links: SpanLinkData[] = [];
    let droppedLinks = 0;
    const status = { code: 0, message: '' };
    while (pos < end) {
      const tag = varint(end);
      switch (tag) {
        case 10: {
          const e = lengthEnd(end);
          traceId = hexId(pos, e, false);
          pos = e;
          break;
        }
        case 18: {
          const e = lengthEnd(end);
          spanId = hexId(pos, e, false);
          pos = e;
          break;
        }
        case 26:
          traceState = this.string(lengthEnd(end));
          break;
        case 34: {
          const e = lengthEnd(end);
          parentSpanId = hexId(pos, e, true);
          pos = e;
          break;
        }
        case 42:
          name = this.string(lengthEnd(end));
          break;
        case 48:
          kind = int64(end);
          break;
        case 57:
          start = fixed64(end);
          break;
        case 65:
          stop = fixed64(end);
          break;
        case 74: {
          const n = nAttrs;
          nAttrs = this.attribute(lengthEnd(end), attributes, n, L.attributeCount);
          if (nAttrs === n) {
            droppedAttributes++;
            // Past the limit: skip the run of attributes that usually follows in one tight loop.
            const skipped = skipRun(74, end);
            droppedAttributes += skipped;
            this.c.attributes += skipped;
          }
          break;
        }
        case 80:
          droppedAttributes += varint(end);
          break;
        case 90: {
          const e = lengthEnd(end);
          if (events.length < L.eventsPerSpan) {
            events.push(this.event(e));
            this.w.bytes += SIZE.event;
          } else {
            this.c.events++;
            droppedEvents++;
          }
          pos = e;
          break;
        }
        case 96:
          droppedEvents += varint(end);
          break;
        case 106: {
          const e = lengthEnd(end);
          if (links.length < L.linksPerSpan) {
            links.push(this.link(e));
            this.w.bytes += SIZE.event;
          } else {
            this.c.links++;
            droppedLinks++;
          }
          pos = e;
          break;
        }
        case 112:
          droppedLinks += varint(end);
          break;
        case 122:
          this.status(lengthEnd(end), status);
          break;
        case 133:
          flags = fixed32(end);
          break;
        default:
          skip(tag & 7, end);
      }
    }
    this.w.bytes += SIZE.span;
    return {
      traceId,
      spanId,
      parentSpanId,
      traceState,
      flags,
      name,
      kind,
      startTimeUnixNano: start,
      endTimeUnixNano: stop,
      startTimeMs: nsToMs(start),
      endTimeMs: nsToMs(stop),
      attributes,
      events,
      links,
      status,
      resource: resourceAttrs,
      scope: scopeData,
      experimentHeader: resource.experimentHeader,
      droppedAttributesCount: droppedAttributes,
      droppedEventsCount: droppedEvents,
      droppedLinksCount: droppedLinks,
    };
  }

  /**
   * A span's ids, start time and only the attributes named in `keys` (each compared as encoded
   * bytes; every other attribute is skipped by its length, neither decoded nor counted as cut):
   * what choosing a root and reading a `span:` experiment rule need, at the cost of one length
   * read per field.
   */
  spanHead(bytes: Uint8Array, keys: readonly Uint8Array[]): SpanHead {
    this.enter(bytes);
    const end = bytes.length;
    const head: SpanHead = { spanId: '', parentSpanId: '', startTimeUnixNano: 0n, attributes: {} };
    let n = 0;
    while (pos < end) {
      const tag = varint(end);
      if (tag === 18 || tag === 34) {
        const e = lengthEnd(end);
        if (tag === 18) head.spanId = hexId(pos, e, false);
        else head.parentSpanId = hexId(pos, e, true);
        pos = e;
      } else if (tag === 57) head.startTimeUnixNano = fixed64(end);
      else if (tag === 74) {
        const e = lengthEnd(end);
        if (keys.length > 0 && keyIsOneOf(pos, e, keys)) n = this.attribute(e, head.attributes, n, this.limits.attributeCount);
        pos = e;
      } else skip(tag & 7, end);
    }
    return head;
  }

  private status(end: number, out: { code: number; message: string }): void {
    while (pos < end) {
      const tag = varint(end);
      if (tag === 18) out.message = this.string(lengthEnd(end));
      else if (tag === 24) out.code = int64(end);
      else skip(tag & 7, end);
    }
  }

  /** Span.Event { fixed64 time = 1; string name = 2; repeated KeyValue attributes = 3; uint32 dropped = 4 }. */
  private event(end: number): SpanEventData {
    const e: SpanEventData = { name: '', timeUnixNano: 0n, attributes: {}, droppedAttributesCount: 0 };
    let n = 0;
    let dropped = 0;
    while (pos < end) {
      const tag = varint(end);
      if (tag === 9) e.timeUnixNano = fixed64(end);
      else if (tag === 18) e.name = this.string(lengthEnd(end));
      else if (tag === 26) {
        const m = this.attribute(lengthEnd(end), e.attributes, n, this.limits.attributesPerEvent);
        if (m === n) dropped++;
        n = m;
      } else if (tag === 32) dropped += varint(end);
      else skip(tag & 7, end);
    }
    e.droppedAttributesCount = dropped;
    return e;
  }

  /** Span.Link { bytes trace_id = 1; bytes span_id = 2; ...; repeated KeyValue attributes = 4; uint32 dropped = 5 }. */
  private link(end: number): SpanLinkData {
    const l: SpanLinkData = { traceId: '', spanId: '', attributes: {}, droppedAttributesCount: 0 };
    let n = 0;
    let dropped = 0;
    while (pos < end) {
      const tag = varint(end);
      if (tag === 10 || tag === 18) {
        const e = lengthEnd(end);
        const id = hexId(pos, e, false);
        if (tag === 10) l.traceId = id;
        else l.spanId = id;
        pos = e;
      } else if (tag === 34) {
        const m = this.attribute(lengthEnd(end), l.attributes, n, this.limits.attributesPerEvent);
        if (m === n) dropped++;
        n = m;
      } else if (tag === 40) dropped += varint(end);
      else skip(tag & 7, end);
    }
    l.droppedAttributesCount = dropped;
    return l;
  }

  /** One encoded LogRecord message. Throws a WireError when the bytes are not a valid LogRecord. */
  logRecord(bytes: Uint8Array, resource: ResourceRef, scope: ScopeRef): LogRecordData {
    const resourceAttrs = this.resource(resource);
    const scopeData = this.scope(scope);
    this.enter(bytes);
    const end = bytes.length;
    const rec: LogRecordData = {
      traceId: '',
      spanId: '',
      timeUnixNano: 0n,
      observedTimeUnixNano: 0n,
      severityNumber: 0,
      severityText: '',
      eventName: '',
      body: null,
      attributes: {},
      resource: resourceAttrs,
      scope: scopeData,
      droppedAttributesCount: 0,
    };
    let n = 0;
    let dropped = 0;
    let bodyAt = -1;
    let bodyEnd = -1;
    while (pos < end) {
      const tag = varint(end);
      switch (tag) {
        case 9:
          rec.timeUnixNano = fixed64(end);
          break;
        case 89:
          rec.observedTimeUnixNano = fixed64(end);
          break;
        case 16:
          rec.severityNumber = int64(end);
          break;
        case 26:
          rec.severityText = this.string(lengthEnd(end));
          break;
        case 42:
          bodyEnd = lengthEnd(end);
          bodyAt = pos;
          pos = bodyEnd;
          break;
        case 50: {
          const m = this.attribute(lengthEnd(end), rec.attributes, n, this.limits.attributeCount);
          if (m === n) dropped++;
          n = m;
          break;
        }
        case 56:
          dropped += varint(end);
          break;
        case 74: {
          const e = lengthEnd(end);
          rec.traceId = hexId(pos, e, false);
          pos = e;
          break;
        }
        case 82: {
          const e = lengthEnd(end);
          rec.spanId = hexId(pos, e, true);
          pos = e;
          break;
        }
        case 98:
          rec.eventName = this.string(lengthEnd(end));
          break;
        default:
          skip(tag & 7, end);
      }
    }
    if (bodyAt >= 0) {
      pos = bodyAt;
      // The body counts against the values budget like an attribute value.
      if (this.budget()) rec.body = this.anyValue(bodyEnd, 0);
      else {
        this.c.attributes++;
        dropped++;
      }
    }
    rec.droppedAttributesCount = dropped;
    this.w.bytes += SIZE.log;
    return rec;
  }
}

/** What spanHead reads of a span. */
export interface SpanHead {
  spanId: string;
  parentSpanId: string;
  startTimeUnixNano: bigint;
  attributes: Attributes;
}

/** Whether the KeyValue at [start, end) has one of these keys (UTF-8 bytes); pos is left alone. */
function keyIsOneOf(start: number, end: number, keys: readonly Uint8Array[]): boolean {
  const saved = pos;
  pos = start;
  try {
    while (pos < end) {
      const tag = varint(end);
      if (tag !== 10) {
        skip(tag & 7, end);
        continue;
      }
      const e = lengthEnd(end);
      const len = e - pos;
      for (const k of keys) {
        if (k.length !== len) continue;
        let same = true;
        for (let i = 0; i < len && same; i++) same = buf[pos + i] === k[i];
        if (same) return true;
      }
      return false;
    }
    return false;
  } finally {
    pos = saved;
  }
}

interface SharedEntry<V> {
  limits: Readonly<ViewLimits>;
  value: V;
  cuts: ViewCuts;
}

const resourceCache = new WeakMap<ResourceRef, SharedEntry<Attributes>>();
const scopeCache = new WeakMap<ScopeRef, SharedEntry<ScopeData>>();

const decoder = new TextDecoder();

function utf8(start: number, end: number): string {
  const n = end - start;
  if (n <= 0) return '';
  if (n <= 24) {
    // Short ASCII strings (keys, names, ids) are faster built by hand than through a decoder.
    let s = '';
    for (let i = start; i < end; i++) {
      const b = buf[i]!;
      if (b >= 0x80) return decoder.decode(buf.subarray(start, end));
      s += String.fromCharCode(b);
    }
    return s;
  }
  return decoder.decode(buf.subarray(start, end));
}

const NS_PER_MS = 1_000_000n;
const nsToMs = (ns: bigint): number => Number(ns / NS_PER_MS) + Number(ns % NS_PER_MS) / 1e6;

// ------------------------------------------------------------------ one-off decodes

/** Attributes of an encoded Resource (default limits), decoded once per ResourceRef. */
export function decodeResource(ref: ResourceRef): Attributes {
  return new ViewDecoder().resource(ref);
}

/** An encoded InstrumentationScope (default limits), decoded once per ScopeRef. */
export function decodeScope(ref: ScopeRef): ScopeData {
  return new ViewDecoder().scope(ref);
}

/** One span under the given limits (default DEFAULT_VIEW_LIMITS). */
export function decodeSpan(
  bytes: Uint8Array,
  resource: ResourceRef,
  scope: ScopeRef,
  limits: Readonly<ViewLimits> = DEFAULT_VIEW_LIMITS,
): SpanData {
  return new ViewDecoder(limits).span(bytes, resource, scope);
}

/** A span's ids, start time and the attributes named in `keys` only (see ViewDecoder.spanHead). */
export function decodeSpanHead(
  bytes: Uint8Array,
  keys: readonly string[],
  limits: Readonly<ViewLimits> = DEFAULT_VIEW_LIMITS,
): SpanHead {
  return new ViewDecoder(limits).spanHead(
    bytes,
    keys.map((k) => new TextEncoder().encode(k)),
  );
}

/** One log record under the given limits (default DEFAULT_VIEW_LIMITS). */
export function decodeLogRecord(
  bytes: Uint8Array,
  resource: ResourceRef,
  scope: ScopeRef,
  limits: Readonly<ViewLimits> = DEFAULT_VIEW_LIMITS,
): LogRecordData {
  return new ViewDecoder(limits).logRecord(bytes, resource, scope);
}
