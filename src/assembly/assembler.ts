// Trace assembler: groups buffered spans by trace id and decides when a trace is complete.
// Owns the completion rules (root seen + settle window, idle timeout without a root, maximum
// age), span de-duplication, the byte budget with oldest-first eviction, and the decision cache
// that recognises late spans of traces already handed on.
//
// Hot path: ingest() runs per received request over the scanner's offsets. Trace and span ids
// are kept as 16/8-character latin1 strings (cheap to make, cheap to hash), span bytes are copied
// out of the request so a long-lived trace never pins a whole request buffer, and deadlines live
// in a coarse timer wheel swept on an interval instead of one timer per trace.
import type { ResourceRef, ScopeRef } from '../otlp/parts.ts';
import { type ScanResult, SPAN_STRIDE, spanHasParent, spanIdOffset, spanTraceIdOffset } from '../otlp/wire.ts';
import type { CompleteTrace, CompletionReason, TraceConsumer } from './types.ts';

/**
 * Bytes charged per buffered span on top of its encoded size: the Uint8Array object, its slots
 * in the per-trace arrays and its id string. Measured with bench/assembler-memory.ts.
 */
export const SPAN_OVERHEAD_BYTES = 160;
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
  now?: () => number;
}

export interface AssemblerCounters {
  spansBuffered: number;
  spansDuplicate: number;
  spansLate: number;
  tracesCompleted: Record<CompletionReason, number>;
  tracesEvicted: number;
  spansEvicted: number;
  consumerErrors: number;
}

class Entry {
  readonly key: string;
  readonly spans: Uint8Array[] = [];
  readonly resources: ResourceRef[] = [];
  readonly scopes: ScopeRef[] = [];
  ids: string[] | Set<string> = [];
  bytes = TRACE_OVERHEAD_BYTES;
  wireBytes = 0;
  readonly firstSeen: number;
  lastSeen: number;
  rootAt = -1;
  /** Wheel slot the entry is filed under; entries found under any other slot are stale. */
  slot = -1;
  constructor(key: string, now: number) {
    this.key = key;
    this.firstSeen = now;
    this.lastSeen = now;
  }
  /** Adds the span id; false when it was already there (a duplicate). */
  addId(id: string): boolean {
    const ids = this.ids;
    if (Array.isArray(ids)) {
      if (ids.includes(id)) return false;
      ids.push(id);
      if (ids.length > LINEAR_DEDUP_LIMIT) this.ids = new Set(ids);
      return true;
    }
    if (ids.has(id)) return false;
    ids.add(id);
    return true;
  }
}

const latin1 = (buf: Buffer, start: number, len: number): string => buf.toString('latin1', start, start + len);

export class Assembler {
  private readonly opts: Required<AssemblerOptions>;
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
  readonly counters: AssemblerCounters = {
    spansBuffered: 0,
    spansDuplicate: 0,
    spansLate: 0,
    tracesCompleted: { root: 0, idle: 0, max_age: 0, shutdown: 0 },
    tracesEvicted: 0,
    spansEvicted: 0,
    consumerErrors: 0,
  };
  onConsumerError: (err: unknown, trace: CompleteTrace) => void = () => {};

  constructor(opts: AssemblerOptions, consumer: TraceConsumer) {
    this.opts = { tickMs: 100, now: Date.now, ...opts };
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

  /** Buffers the valid spans of a scanned ExportTraceServiceRequest. */
  ingest(buf: Buffer, scan: ScanResult, experimentHeader?: string): void {
    const now = this.opts.now();
    for (const rs of scan.resources) {
      const resource = this.internResource(buf, rs.resource, rs.schemaUrl, experimentHeader);
      for (const ss of rs.scopes) {
        const scope = this.internScope(buf, ss.scope, ss.schemaUrl);
        const s = ss.spans;
        let e: Entry | undefined;
        let lastKey = '';
        for (let i = 0; i < s.length; i += SPAN_STRIDE) {
          const tOff = spanTraceIdOffset(s, i);
          if (tOff < 0) continue; // rejected by the scanner
          const key = latin1(buf, tOff, 16);
          if (key !== lastKey || e === undefined) {
            lastKey = key;
            e = this.traces.get(key);
            if (e === undefined) {
              if (this.decided.has(key)) {
                this.counters.spansLate++;
                e = undefined;
                lastKey = '';
                continue;
              }
              e = new Entry(key, now);
              this.traces.set(key, e);
              this.bufferedBytes += TRACE_OVERHEAD_BYTES;
              this.schedule(e, this.deadline(e));
            }
          }
          if (!e.addId(latin1(buf, spanIdOffset(s, i), 8))) {
            this.counters.spansDuplicate++;
            continue;
          }
          const start = s[i]!;
          const end = s[i + 1]!;
          // Copy: the request buffer must not stay alive for as long as this trace does.
          const span = Uint8Array.prototype.slice.call(buf, start, end) as Uint8Array;
          e.spans.push(span);
          e.resources.push(resource);
          e.scopes.push(scope);
          const charged = end - start + SPAN_OVERHEAD_BYTES;
          e.bytes += charged;
          e.wireBytes += end - start;
          this.bufferedBytes += charged;
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
    if (this.bufferedBytes > this.opts.maxBytes) this.evict();
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
    e.slot = -1;
    this.remember(e.key);
  }

  private complete(e: Entry, reason: CompletionReason, now: number): void {
    this.remove(e);
    this.counters.tracesCompleted[reason]++;
    const trace: CompleteTrace = {
      traceId: Buffer.from(e.key, 'latin1').toString('hex'),
      spans: e.spans,
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
      this.counters.spansEvicted += e.spans.length;
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
