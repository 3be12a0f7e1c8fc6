// Lazy OTLP/protobuf wire scanner for ExportTraceServiceRequest and ExportLogsServiceRequest. It
// finds span (log record) boundaries, trace ids, span ids and whether a span has a parent without
// decoding attributes, so the hot path (receive -> forward -> buffer) never builds span objects.
// Full decode happens later, once per completed trace, in decode.ts.
import { ScorecarError } from '../util/index.ts';

/** Byte range [start, end) in the request buffer; start = -1 when the field is absent. */
export interface Range {
  start: number;
  end: number;
}

/**
 * Spans of one ScopeSpans, flattened 4 numbers per span: [spanStart, spanEnd, traceIdOffset,
 * spanIdOffset]. A span whose ids are missing or malformed has traceIdOffset = -1; one with a
 * parent span id has spanIdOffset stored negated minus one (see spanHasParent) so the scan
 * allocates a single array per scope.
 */
export interface ScannedScope {
  scope: Range;
  schemaUrl: Range;
  spans: number[];
}

export interface ScannedResource {
  resource: Range;
  schemaUrl: Range;
  scopes: ScannedScope[];
}

export interface ScanResult {
  resources: ScannedResource[];
  spanCount: number;
  rejected: number;
  /** Why the first rejected span was rejected, for partial_success.error_message. */
  rejectReason: string;
  /**
   * Set by the receiver when the scanned buffer is a transient copy: the buffers the request's
   * bytes live in, in order (their concatenation is the scanned buffer). Offsets stay relative to
   * the scanned buffer; whoever keeps spans must keep them from these buffers, not the scanned one.
   */
  home?: readonly Buffer[];
}

export const SPAN_STRIDE = 4;

export function spanStart(s: number[], i: number): number {
  return s[i]!;
}
export function spanEnd(s: number[], i: number): number {
  return s[i + 1]!;
}
/** Offset of the 16-byte trace id, or -1 for a rejected span. */
export function spanTraceIdOffset(s: number[], i: number): number {
  return s[i + 2]!;
}
export function spanIdOffset(s: number[], i: number): number {
  const v = s[i + 3]!;
  return v < 0 ? -v - 1 : v;
}
export function spanHasParent(s: number[], i: number): boolean {
  return s[i + 3]! < 0;
}

export class WireError extends ScorecarError {
  constructor(message: string, offset: number) {
    super('INVALID_PROTOBUF', `${message} at byte ${offset}`, { details: { offset } });
  }
}

const ABSENT: Range = Object.freeze({ start: -1, end: -1 }) as Range;

// The cursor is module state rather than an object field: this keeps the inner loops free of
// property loads on a reader object, which measurably matters at millions of fields per second.
let pos = 0;

function readVarint32(buf: Uint8Array, limit: number): number {
  // Lengths and tags fit in 32 bits; longer varints are only ever skipped.
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 5; i++) {
    if (pos >= limit) throw new WireError('truncated varint', pos);
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if (b < 0x80) return result;
    mul *= 128;
  }
  throw new WireError('varint too long for a tag or length', pos);
}

function skipVarint(buf: Uint8Array, limit: number): void {
  for (let i = 0; i < 10; i++) {
    if (pos >= limit) throw new WireError('truncated varint', pos);
    if (buf[pos++]! < 0x80) return;
  }
  throw new WireError('malformed varint', pos);
}

/** Skips the value of a field with the given wire type; pos is just after the tag. */
function skipField(buf: Uint8Array, wireType: number, limit: number): void {
  switch (wireType) {
    case 0:
      skipVarint(buf, limit);
      return;
    case 1:
      pos += 8;
      break;
    case 2: {
      const len = readVarint32(buf, limit);
      pos += len;
      break;
    }
    case 5:
      pos += 4;
      break;
    default:
      // Groups (3, 4) are not used by OTLP; 6 and 7 do not exist.
      throw new WireError(`unsupported wire type ${wireType}`, pos);
  }
  if (pos > limit) throw new WireError('field runs past the end of its message', limit);
}

/** Reads a length prefix and checks the payload fits in the enclosing message. */
function readLen(buf: Uint8Array, limit: number): number {
  const len = readVarint32(buf, limit);
  if (pos + len > limit) throw new WireError('length-delimited field runs past the end of its message', pos);
  return len;
}

function isAllZero(buf: Uint8Array, start: number, len: number): boolean {
  for (let i = start; i < start + len; i++) if (buf[i] !== 0) return false;
  return true;
}

// The two scanners below carry their cursor in a local (a register) and read one-byte tags and
// one- or two-byte lengths inline; longer varints and other wire types go through the shared
// helpers above via the module cursor. Spans are the innermost and most numerous messages: every
// top-level field of every span is walked (that is what validates the framing), so this loop is
// the scan's cost.

function scanSpan(buf: Uint8Array, start: number, end: number, out: number[], result: ScanResult): void {
  let traceOff = -1;
  let traceLen = 0;
  let spanOff = -1;
  let spanLen = 0;
  let parentOff = -1;
  let parentLen = 0;
  let p = start;
  while (p < end) {
    let tag = buf[p]!;
    if (tag < 0x80) p++;
    else {
      pos = p;
      tag = readVarint32(buf, end);
      p = pos;
    }
    const wt = tag & 7;
    const field = tag >>> 3;
    if (field === 0) throw new WireError('field number 0', p);
    if (wt === 2) {
      if (p >= end) throw new WireError('truncated varint', p);
      let len = buf[p]!;
      if (len < 0x80) p++;
      else if (p + 1 < end && buf[p + 1]! < 0x80) {
        len = (len & 0x7f) | (buf[p + 1]! << 7);
        p += 2;
      } else {
        pos = p;
        len = readVarint32(buf, end);
        p = pos;
      }
      if (p + len > end) throw new WireError('length-delimited field runs past the end of its message', p);
      if (field === 1) {
        traceOff = p;
        traceLen = len;
      } else if (field === 2) {
        spanOff = p;
        spanLen = len;
      } else if (field === 4) {
        parentOff = p;
        parentLen = len;
      }
      p += len;
    } else if (wt === 1) {
      p += 8;
      if (p > end) throw new WireError('field runs past the end of its message', end);
    } else if (wt === 0) {
      const stop = p + 10;
      while (p < end && p < stop && buf[p]! >= 0x80) p++;
      if (p >= end) throw new WireError('truncated varint', p);
      if (p === stop) throw new WireError('malformed varint', p);
      p++;
    } else {
      pos = p;
      skipField(buf, wt, end);
      p = pos;
    }
  }
  let valid = true;
  if (traceLen !== 16 || isAllZero(buf, traceOff, 16)) {
    valid = false;
    if (result.rejected === 0) result.rejectReason = 'span with a missing or invalid trace_id (need 16 non-zero bytes)';
  } else if (spanLen !== 8 || isAllZero(buf, spanOff, 8)) {
    valid = false;
    if (result.rejected === 0) result.rejectReason = 'span with a missing or invalid span_id (need 8 non-zero bytes)';
  }
  // A parent id of any non-zero length counts as a parent; an all-zero one is treated as none,
  // as some SDKs write 8 zero bytes for a root.
  const hasParent = parentLen > 0 && !isAllZero(buf, parentOff, parentLen);
  result.spanCount++;
  if (!valid) result.rejected++;
  out.push(start, end, valid ? traceOff : -1, hasParent ? -spanOff - 1 : spanOff);
}

function scanScopeSpans(buf: Uint8Array, start: number, end: number, result: ScanResult): ScannedScope {
  const scoped: ScannedScope = { scope: ABSENT, schemaUrl: ABSENT, spans: [] };
  let p = start;
  while (p < end) {
    let tag = buf[p]!;
    if (tag < 0x80) p++;
    else {
      pos = p;
      tag = readVarint32(buf, end);
      p = pos;
    }
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 0) throw new WireError('field number 0', p);
    if (wt === 2 && field <= 3) {
      pos = p;
      const len = readLen(buf, end);
      const s = pos;
      p = s + len;
      if (field === 2) scanSpan(buf, s, p, scoped.spans, result);
      else if (field === 1) scoped.scope = { start: s, end: p };
      else scoped.schemaUrl = { start: s, end: p };
    } else {
      pos = p;
      skipField(buf, wt, end);
      p = pos;
    }
  }
  return scoped;
}

function scanResourceSpans(buf: Uint8Array, start: number, end: number, result: ScanResult): ScannedResource {
  const res: ScannedResource = { resource: ABSENT, schemaUrl: ABSENT, scopes: [] };
  pos = start;
  while (pos < end) {
    const tag = readVarint32(buf, end);
    const field = tag >>> 3;
    const wt = tag & 7;
    if (wt === 2 && field >= 1 && field <= 3) {
      const len = readLen(buf, end);
      const s = pos;
      pos += len;
      if (field === 2) {
        res.scopes.push(scanScopeSpans(buf, s, s + len, result));
        pos = s + len;
      } else if (field === 1) res.resource = { start: s, end: s + len };
      else res.schemaUrl = { start: s, end: s + len };
    } else {
      if (field === 0) throw new WireError('field number 0', pos);
      skipField(buf, wt, end);
    }
  }
  return res;
}

/** Scans an ExportTraceServiceRequest. Throws WireError on malformed framing. */
export function scanTraceRequest(buf: Uint8Array): ScanResult {
  const result: ScanResult = { resources: [], spanCount: 0, rejected: 0, rejectReason: '' };
  const end = buf.length;
  pos = 0;
  while (pos < end) {
    const tag = readVarint32(buf, end);
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 1 && wt === 2) {
      const len = readLen(buf, end);
      const s = pos;
      result.resources.push(scanResourceSpans(buf, s, s + len, result));
      pos = s + len;
    } else {
      if (field === 0) throw new WireError('field number 0', pos);
      skipField(buf, wt, end);
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Logs: ExportLogsServiceRequest, scanned like traces (every top-level field of every LogRecord
// walked, so the framing is validated) to find each record's range and its trace and span ids.
// Log records are never refused: one without a (valid) trace id is simply not joined to a trace.
// The scope and resource walkers below mirror the span ones rather than sharing them: the span
// walkers stay monomorphic (one leaf scanner each), which the span hot path depends on.

/**
 * Log records of one ScopeLogs, flattened 5 numbers per record: [start, end, traceIdOffset,
 * spanIdOffset, flags]; traceIdOffset is -1 when the record has no valid trace id (16 bytes, not
 * all zero), spanIdOffset -1 when it has no valid span id (8 bytes, not all zero); flags is the
 * record's flags field (its low 8 bits are the W3C trace flags; 0 when absent).
 */
export interface ScannedLogScope {
  scope: Range;
  schemaUrl: Range;
  logs: number[];
}

export interface ScannedLogResource {
  resource: Range;
  schemaUrl: Range;
  scopes: ScannedLogScope[];
}

export interface LogScanResult {
  resources: ScannedLogResource[];
  logCount: number;
  /** Records carrying a valid trace id: the only ones a trace buffer may keep. */
  withTraceId: number;
  /** As ScanResult.home: the buffers the request arrived in when the scanned one is a copy. */
  home?: readonly Buffer[];
}

export const LOG_STRIDE = 5;

/** Whether a scanned record's trace flags mark its trace sampled (W3C sampled bit). */
export function logSampled(l: number[], i: number): boolean {
  return (l[i + 4]! & 1) === 1;
}

function scanLogRecord(buf: Uint8Array, start: number, end: number, out: number[], result: LogScanResult): void {
  let traceOff = -1;
  let traceLen = 0;
  let spanOff = -1;
  let spanLen = 0;
  let flags = 0;
  let p = start;
  while (p < end) {
    let tag = buf[p]!;
    if (tag < 0x80) p++;
    else {
      pos = p;
      tag = readVarint32(buf, end);
      p = pos;
    }
    const wt = tag & 7;
    const field = tag >>> 3;
    if (field === 0) throw new WireError('field number 0', p);
    if (wt === 5 && field === 8) {
      if (p + 4 > end) throw new WireError('field runs past the end of its message', end);
      flags = (buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16) | (buf[p + 3]! << 24)) >>> 0;
      p += 4;
    } else if (wt === 2) {
      pos = p;
      const len = readLen(buf, end);
      p = pos;
      if (field === 9) {
        traceOff = p;
        traceLen = len;
      } else if (field === 10) {
        spanOff = p;
        spanLen = len;
      }
      p += len;
    } else {
      pos = p;
      skipField(buf, wt, end);
      p = pos;
    }
  }
  const traced = traceLen === 16 && !isAllZero(buf, traceOff, 16);
  const spanned = spanLen === 8 && !isAllZero(buf, spanOff, 8);
  result.logCount++;
  if (traced) result.withTraceId++;
  out.push(start, end, traced ? traceOff : -1, spanned ? spanOff : -1, flags);
}

function scanScopeLogs(buf: Uint8Array, start: number, end: number, result: LogScanResult): ScannedLogScope {
  const scoped: ScannedLogScope = { scope: ABSENT, schemaUrl: ABSENT, logs: [] };
  pos = start;
  while (pos < end) {
    const tag = readVarint32(buf, end);
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 0) throw new WireError('field number 0', pos);
    if (wt === 2 && field <= 3) {
      const len = readLen(buf, end);
      const s = pos;
      if (field === 2) scanLogRecord(buf, s, s + len, scoped.logs, result);
      else if (field === 1) scoped.scope = { start: s, end: s + len };
      else scoped.schemaUrl = { start: s, end: s + len };
      pos = s + len;
    } else skipField(buf, wt, end);
  }
  return scoped;
}

function scanResourceLogs(buf: Uint8Array, start: number, end: number, result: LogScanResult): ScannedLogResource {
  const res: ScannedLogResource = { resource: ABSENT, schemaUrl: ABSENT, scopes: [] };
  pos = start;
  while (pos < end) {
    const tag = readVarint32(buf, end);
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 0) throw new WireError('field number 0', pos);
    if (wt === 2 && field <= 3) {
      const len = readLen(buf, end);
      const s = pos;
      if (field === 2) res.scopes.push(scanScopeLogs(buf, s, s + len, result));
      else if (field === 1) res.resource = { start: s, end: s + len };
      else res.schemaUrl = { start: s, end: s + len };
      pos = s + len;
    } else skipField(buf, wt, end);
  }
  return res;
}

/** Scans an ExportLogsServiceRequest. Throws WireError on malformed framing. */
export function scanLogsRequest(buf: Uint8Array): LogScanResult {
  const result: LogScanResult = { resources: [], logCount: 0, withTraceId: 0 };
  const end = buf.length;
  pos = 0;
  while (pos < end) {
    const tag = readVarint32(buf, end);
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 0) throw new WireError('field number 0', pos);
    if (field === 1 && wt === 2) {
      const len = readLen(buf, end);
      const s = pos;
      result.resources.push(scanResourceLogs(buf, s, s + len, result));
      pos = s + len;
    } else skipField(buf, wt, end);
  }
  return result;
}

/**
 * Walks a logs or metrics request far enough to prove its framing is sound and counts the
 * leaf items (log records / metrics) so they can be accounted for; nothing is decoded.
 * `path` lists the field numbers of the nested repeated messages down to the counted one.
 */
export function scanEnvelope(buf: Uint8Array, path: readonly number[]): number {
  let count = 0;
  const walk = (start: number, end: number, depth: number): void => {
    pos = start;
    while (pos < end) {
      const tag = readVarint32(buf, end);
      const field = tag >>> 3;
      const wt = tag & 7;
      if (field === 0) throw new WireError('field number 0', pos);
      if (wt === 2) {
        const len = readLen(buf, end);
        const s = pos;
        if (field === path[depth]) {
          if (depth === path.length - 1) count++;
          else walk(s, s + len, depth + 1);
        }
        pos = s + len;
      } else skipField(buf, wt, end);
    }
  };
  walk(0, buf.length, 0);
  return count;
}

export const LOG_RECORD_PATH = [1, 2, 2] as const; // resource_logs.scope_logs.log_records
export const METRIC_PATH = [1, 2, 2] as const; // resource_metrics.scope_metrics.metrics

// ---------------------------------------------------------------------------------------------
// Writing: building requests from raw parts, so spans are re-framed without being re-encoded.

export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

export function writeVarint(out: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}

/** Size of a length-delimited field holding `len` bytes, tag included (field numbers < 16). */
export function lenFieldSize(len: number): number {
  return 1 + varintSize(len) + len;
}

export function writeLenHeader(out: Uint8Array, at: number, field: number, len: number): number {
  out[at++] = (field << 3) | 2;
  return writeVarint(out, at, len);
}
