// Trace assembler: groups buffered spans by trace id and decides when a trace is complete.
// Owns the completion rules (root seen + settle window, idle timeout without a root, maximum
// age), span de-duplication, the byte budget with oldest-first eviction, and the decision cache
// that recognises late spans of traces already handed on.
//
// Hot path: ingest() runs per received request over the scanner's offsets. Trace ids are kept as
// 16-character latin1 strings (cheap to make, cheap to hash); spans stay where they arrived, in
// the request buffer (shared with the export queue, no copy, no allocation per span), referenced
// by offsets; each request buffer is charged to the byte budget once, while any trace uses it.
// A trace still buffered after `compactAfterMs` gets its spans copied into its own allocation,
// so a long-running trace never pins the requests it arrived in. Deadlines live in a coarse
// timer wheel swept on an interval instead of one timer per trace.
import type { ResourceRef, ScopeRef } from '../otlp/parts.ts';
import { type ScanResult, SPAN_STRIDE, spanHasParent, spanIdOffset, spanTraceIdOffset } from '../otlp/wire.ts';
import type { CompleteTrace, CompletionReason, TraceConsumer } from './types.ts';

/**
 * Bytes charged per buffered span on top of its encoded size: the Uint8Array object, its slots
 * in the per-trace arrays and its id string. Measured with bench/assembler-memory.ts.
 */
export const SPAN_OVERHEAD_BYTES = 64;
/** Bytes charged per request buffer or compacted copy held (the ArrayBuffer and its view). */
export const CHUNK_OVERHEAD_BYTES = 128;
/** Bytes charged per buffered trace: the entry object, its map slot and its arrays. */
export const TRACE_OVERHEAD_BYTES = 400;
/** Above this many spans a trace switches from a linear id list to a Set. */
const LINEAR_DEDUP_LIMIT = 32;
const INTERN_LIMIT = 4096;

export interface AssemblerOptions {
  settleMs: number;
  idleTimeoutMs: number;
  maxAgeMs: number;
  maxBytes: number;
  decisionCacheSize: number;
  /** Resolution of completion deadlines. */
  tickMs?: number;
  /** Copy a trace's spans out of shared request buffers once it has been buffered this long. */
  compactAfterMs?: number;
  now?: () => number;
}

export interface AssemblerCounters {
  spansBuffered: number;
  spansDuplicate: number;
  spansLate: number;
  tracesCompleted: Record<CompletionReason, number>;
  tracesEvicted: number;
  spansEvicted: number;
  tracesCompacted: number;
  consumerErrors: number;
}

/** A received request buffer, charged once while any buffered trace uses it. */
interface Hold {
  readonly bytes: number;
  refs: number;
}

class Entry {
  readonly key: string;
  /** Buffers holding this trace's spans: request buffers, or its own compacted copy. */
  chunks: Uint8Array[] = [];
  /** Request buffers this trace keeps alive (empty once compacted). */
  holds: Hold[] = [];
  /**
   * 4 numbers per span: chunk index, offset and length in that chunk, offset of its span id.
   * Numbers rather than a view object per span keep the long-lived heap small; views are made
   * once, when the trace completes.
   */
  meta: number[] = [];
  readonly resources: ResourceRef[] = [];
  readonly scopes: ScopeRef[] = [];
  /** Span ids as strings, built only once a trace grows past LINEAR_DEDUP_LIMIT spans. */
  idSet: Set<string> | undefined;
  /** Bytes charged to this trace alone (bookkeeping, and its compacted copy if any). */
  bytes = TRACE_OVERHEAD_BYTES;
  wireBytes = 0;
  readonly firstSeen: number;
  lastSeen: number;
  rootAt = -1;
  /** Wheel slot the entry is filed under; entries found under any other slot are stale. */
  slot = -1;
  /** When the entry was last queued for compaction. */
  compactQueuedAt = -1;
  constructor(key: string, now: number) {
    this.key = key;
    this.firstSeen = now;
    this.lastSeen = now;
  }
  get spanCount(): number {
    return this.meta.length >> 2;
  }
}

function eq8(a: Uint8Array, ai: number, b: Uint8Array, bi: number): boolean {
  for (let i = 0; i < 8; i++) if (a[ai + i] !== b[bi + i]) return false;
  return true;
}

const latin1 = (buf: Buffer, start: number, len: number): string => buf.toString('latin1', start, start + len);

/** Whether the 16-byte ids at a and b are equal (cheaper than making a string to compare). */
function sameId(buf: Buffer, a: number, b: number): boolean {
  if (a === b) return true;
  for (let i = 0; i < 16; i++) if (buf[a + i] !== buf[b + i]) return false;
  return true;
}

export class Assembler {
  private readonly opts: Required<AssemblerOptions>;
  // The decision cache and intern maps are bounded by count, not charged to the byte budget.
  private readonly consumer: TraceConsumer;
  private readonly traces = new Map<string, Entry>();
  /** Finished trace ids (FIFO), so their late spans are not taken for new traces. */
  private readonly decided = new Set<string>();
  private readonly wheel = new Map<number, Entry[]>();
  private lastSweptSlot: number;
  private timer: NodeJS.Timeout | undefined;
  private bufferedBytes = 0;
  private readonly resourceIntern = new Map<string, ResourceRef>();
  private readonly scopeIntern = new Map<string, ScopeRef>();
  /** Traces in the order they should be checked for compaction. */
  private compactQueue: Entry[] = [];
  private compactHead = 0;
  readonly counters: AssemblerCounters = {
    spansBuffered: 0,
    spansDuplicate: 0,
    spansLate: 0,
    tracesCompleted: { root: 0, idle: 0, max_age: 0, shutdown: 0 },
    tracesEvicted: 0,
    spansEvicted: 0,
    tracesCompacted: 0,
    consumerErrors: 0,
  };
  onConsumerError: (err: unknown, trace: CompleteTrace) => void = () => {};

  constructor(opts: AssemblerOptions, consumer: TraceConsumer) {
    this.opts = { tickMs: 100, compactAfterMs: Math.max(5_000, opts.settleMs * 2), now: Date.now, ...opts };
    this.consumer = consumer;
    this.lastSweptSlot = Math.floor(this.opts.now() / this.opts.tickMs);
  }

  /** Bytes charged for buffered traces (encoded spans plus bookkeeping). */
  get bytes(): number {
    return this.bufferedBytes;
  }
  get traceCount(): number {
    return this.traces.size;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.sweep(), this.opts.tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Buffers the valid spans of a scanned ExportTraceServiceRequest. `buf` must not be modified
   * afterwards: buffered spans point into it.
   */
  ingest(buf: Buffer, scan: ScanResult, experimentHeader?: string): void {
    const now = this.opts.now();
    const hold: Hold = { bytes: buf.length + CHUNK_OVERHEAD_BYTES, refs: 0 };
    for (const rs of scan.resources) {
      const resource = this.internResource(buf, rs.resource, rs.schemaUrl, experimentHeader);
      for (const ss of rs.scopes) {
        const scope = this.internScope(buf, ss.scope, ss.schemaUrl);
        const s = ss.spans;
        let e: Entry | undefined;
        let lastOff = -1;
        for (let i = 0; i < s.length; i += SPAN_STRIDE) {
          const tOff = spanTraceIdOffset(s, i);
          if (tOff < 0) continue; // rejected by the scanner
          if (e === undefined || lastOff < 0 || !sameId(buf, tOff, lastOff)) {
            const key = latin1(buf, tOff, 16);
            lastOff = tOff;
            e = this.traces.get(key);
            if (e === undefined) {
              if (this.decided.has(key)) {
                this.counters.spansLate++;
                lastOff = -1;
                continue;
              }
              e = new Entry(key, now);
              this.traces.set(key, e);
              this.bufferedBytes += TRACE_OVERHEAD_BYTES;
              this.schedule(e, this.deadline(e));
              this.queueCompaction(e, now);
            }
          }
          const idOff = spanIdOffset(s, i);
          if (this.isDuplicate(e, buf, idOff)) {
            this.counters.spansDuplicate++;
            continue;
          }
          const start = s[i]!;
          const len = s[i + 1]! - start;
          let ci = e.chunks.length - 1;
          if (ci < 0 || e.chunks[ci] !== buf) {
            e.chunks.push(buf);
            e.holds.push(hold);
            hold.refs++;
            ci++;
            if (e.compactQueuedAt < 0) this.queueCompaction(e, now);
          }
          e.meta.push(ci, start, len, idOff);
          e.resources.push(resource);
          e.scopes.push(scope);
          e.bytes += SPAN_OVERHEAD_BYTES;
          e.wireBytes += len;
          this.bufferedBytes += SPAN_OVERHEAD_BYTES;
          this.counters.spansBuffered++;
          e.lastSeen = now;
          if (e.rootAt < 0 && !spanHasParent(s, i)) {
            e.rootAt = now;
            const d = this.deadline(e);
            if (this.slotOf(d) < e.slot) this.schedule(e, d);
          }
        }
      }
    }
    if (hold.refs > 0) this.bufferedBytes += hold.bytes;
    if (this.bufferedBytes > this.opts.maxBytes) this.evict();
  }

  /** Whether the span id at buf[idOff] is already buffered for this trace. */
  private isDuplicate(e: Entry, buf: Buffer, idOff: number): boolean {
    const meta = e.meta;
    if (e.idSet === undefined && meta.length >= LINEAR_DEDUP_LIMIT * 4) {
      const set = new Set<string>();
      for (let j = 0; j < meta.length; j += 4) {
        const c = e.chunks[meta[j]!]!;
        set.add(Buffer.from(c.buffer, c.byteOffset + meta[j + 3]!, 8).toString('latin1'));
      }
      e.idSet = set;
    }
    if (e.idSet !== undefined) {
      const id = latin1(buf, idOff, 8);
      if (e.idSet.has(id)) return true;
      e.idSet.add(id);
      return false;
    }
    for (let j = 0; j < meta.length; j += 4) {
      if (eq8(e.chunks[meta[j]!]!, meta[j + 3]!, buf, idOff)) return true;
    }
    return false;
  }

  private queueCompaction(e: Entry, now: number): void {
    e.compactQueuedAt = now;
    this.compactQueue.push(e);
  }

  /** Copies the spans of traces buffered for longer than compactAfterMs out of shared requests. */
  private compactOld(now: number): void {
    const q = this.compactQueue;
    const limit = now - this.opts.compactAfterMs;
    while (this.compactHead < q.length && q[this.compactHead]!.compactQueuedAt <= limit) {
      const e = q[this.compactHead++]!;
      e.compactQueuedAt = -1;
      if (this.traces.get(e.key) === e && e.holds.length > 0) this.compact(e);
    }
    if (this.compactHead > 4096 && this.compactHead * 2 > q.length) {
      this.compactQueue = q.slice(this.compactHead);
      this.compactHead = 0;
    }
  }

  private compact(e: Entry): void {
    const meta = e.meta;
    let total = 0;
    for (let j = 0; j < meta.length; j += 4) total += meta[j + 2]!;
    const own = Buffer.allocUnsafeSlow(total);
    const next: number[] = new Array(meta.length);
    let at = 0;
    for (let j = 0; j < meta.length; j += 4) {
      const c = e.chunks[meta[j]!]!;
      const start = meta[j + 1]!;
      const len = meta[j + 2]!;
      own.set(c.subarray(start, start + len), at);
      next[j] = 0;
      next[j + 1] = at;
      next[j + 2] = len;
      next[j + 3] = at + meta[j + 3]! - start;
      at += len;
    }
    this.releaseHolds(e);
    e.chunks = [own];
    e.meta = next;
    const charged = total + CHUNK_OVERHEAD_BYTES;
    e.bytes += charged;
    this.bufferedBytes += charged;
    this.counters.tracesCompacted++;
  }

  private releaseHolds(e: Entry): void {
    for (const h of e.holds) {
      if (--h.refs === 0) this.bufferedBytes -= h.bytes;
    }
    e.holds = [];
  }

  /** Completes every trace whose deadline has passed. Returns how many completed. */
  sweep(now = this.opts.now()): number {
    const nowSlot = Math.floor(now / this.opts.tickMs);
    let done = 0;
    if (nowSlot - this.lastSweptSlot > 100_000) {
      // After a long pause, walk the filed slots instead of every slot number in between.
      for (const slot of [...this.wheel.keys()].sort((a, b) => a - b)) {
        if (slot > nowSlot) break;
        done += this.sweepSlot(slot, now);
      }
    } else {
      for (let slot = this.lastSweptSlot; slot <= nowSlot; slot++) done += this.sweepSlot(slot, now);
    }
    this.lastSweptSlot = nowSlot;
    this.compactOld(now);
    return done;
  }

  /** Completes everything buffered (shutdown). */
  flushAll(reason: CompletionReason = 'shutdown'): number {
    let n = 0;
    for (const e of [...this.traces.values()]) {
      this.complete(e, reason, this.opts.now());
      n++;
    }
    this.wheel.clear();
    return n;
  }

  private sweepSlot(slot: number, now: number): number {
    const list = this.wheel.get(slot);
    if (!list) return 0;
    this.wheel.delete(slot);
    let done = 0;
    for (const e of list) {
      if (e.slot !== slot || this.traces.get(e.key) !== e) continue; // stale filing
      const d = this.deadline(e);
      if (d <= now) {
        const byActivity = e.rootAt >= 0 ? e.rootAt + this.opts.settleMs : e.lastSeen + this.opts.idleTimeoutMs;
        const reason: CompletionReason =
          byActivity > e.firstSeen + this.opts.maxAgeMs ? 'max_age' : e.rootAt >= 0 ? 'root' : 'idle';
        this.complete(e, reason, now);
        done++;
      } else this.schedule(e, d);
    }
    return done;
  }

  private deadline(e: Entry): number {
    const byActivity = e.rootAt >= 0 ? e.rootAt + this.opts.settleMs : e.lastSeen + this.opts.idleTimeoutMs;
    return Math.min(byActivity, e.firstSeen + this.opts.maxAgeMs);
  }

  private slotOf(deadline: number): number {
    return Math.ceil(deadline / this.opts.tickMs);
  }

  private schedule(e: Entry, deadline: number): void {
    const slot = Math.max(this.slotOf(deadline), this.lastSweptSlot);
    e.slot = slot;
    let list = this.wheel.get(slot);
    if (!list) {
      list = [];
      this.wheel.set(slot, list);
    }
    list.push(e);
  }

  private remember(key: string): void {
    this.decided.add(key);
    if (this.decided.size > this.opts.decisionCacheSize) {
      const oldest = this.decided.values().next();
      if (!oldest.done) this.decided.delete(oldest.value);
    }
  }

  private remove(e: Entry): void {
    this.traces.delete(e.key);
    this.bufferedBytes -= e.bytes;
    this.releaseHolds(e);
    e.slot = -1;
    this.remember(e.key);
  }

  private complete(e: Entry, reason: CompletionReason, now: number): void {
    this.remove(e);
    this.counters.tracesCompleted[reason]++;
    const spans: Uint8Array[] = new Array(e.spanCount);
    for (let j = 0, n = 0; j < e.meta.length; j += 4, n++) {
      const c = e.chunks[e.meta[j]!]!;
      spans[n] = new Uint8Array(c.buffer, c.byteOffset + e.meta[j + 1]!, e.meta[j + 2]!);
    }
    const trace: CompleteTrace = {
      traceId: Buffer.from(e.key, 'latin1').toString('hex'),
      spans,
      resources: e.resources,
      scopes: e.scopes,
      reason,
      hasRoot: e.rootAt >= 0,
      firstSeenMs: e.firstSeen,
      completedMs: now,
      wireBytes: e.wireBytes,
    };
    try {
      this.consumer(trace);
    } catch (err) {
      // The next stage failing must never stop assembly of other traces.
      this.counters.consumerErrors++;
      this.onConsumerError(err, trace);
    }
  }

  private evict(): void {
    for (const e of this.traces.values()) {
      if (this.bufferedBytes <= this.opts.maxBytes) break;
      this.remove(e);
      this.counters.tracesEvicted++;
      this.counters.spansEvicted += e.spanCount;
    }
  }

  private internResource(
    buf: Buffer,
    r: { start: number; end: number },
    u: { start: number; end: number },
    header: string | undefined,
  ): ResourceRef {
    const key = `${r.start < 0 ? '' : buf.toString('latin1', r.start, r.end)}\u0000${u.start < 0 ? '' : buf.toString('latin1', u.start, u.end)}\u0000${header ?? ''}`;
    let ref = this.resourceIntern.get(key);
    if (!ref) {
      if (this.resourceIntern.size >= INTERN_LIMIT) this.resourceIntern.clear();
      ref = {
        bytes: r.start < 0 ? null : Uint8Array.prototype.slice.call(buf, r.start, r.end),
        schemaUrl: u.start < 0 ? null : Uint8Array.prototype.slice.call(buf, u.start, u.end),
        experimentHeader: header,
      };
      this.resourceIntern.set(key, ref);
    }
    return ref;
  }

  private internScope(buf: Buffer, r: { start: number; end: number }, u: { start: number; end: number }): ScopeRef {
    const key = `${r.start < 0 ? '' : buf.toString('latin1', r.start, r.end)}\u0000${u.start < 0 ? '' : buf.toString('latin1', u.start, u.end)}`;
    let ref = this.scopeIntern.get(key);
    if (!ref) {
      if (this.scopeIntern.size >= INTERN_LIMIT) this.scopeIntern.clear();
      ref = {
        bytes: r.start < 0 ? null : Uint8Array.prototype.slice.call(buf, r.start, r.end),
        schemaUrl: u.start < 0 ? null : Uint8Array.prototype.slice.call(buf, u.start, u.end),
      };
      this.scopeIntern.set(key, ref);
    }
    return ref;
  }
}
