// Trace assembler: groups buffered spans, and the log records that carry their trace id, by trace
// id and decides when a trace is complete. Owns the completion rules (root seen + settle window,
// idle timeout without a root, maximum age), span de-duplication, the byte budget with
// oldest-first eviction, and the decision cache that recognises late spans (and late log records)
// of traces already handed on.
//
// Log records (the GenAI semantic conventions put message content in log events, correlated by
// trace and span id) are joined to their trace here so the GenAI view can read them. A log record
// is treated like a span that can never be a root: it opens its trace's entry when none exists
// (logs are often exported before the spans they belong to), subject to the same interest gate,
// but only when its trace flags say the trace was sampled: the spans of a trace an upstream head
// sampler dropped never come, and its log records (SDKs stamp them with the span's trace id all
// the same) would only wait out the idle timeout; a record without the sampled flag joins an
// entry that exists and is otherwise counted `unsampled`. A record counts as activity for the
// idle timeout; it is charged to the same byte budget, compacted, evicted and completed with its
// trace; one of a decided trace is counted late. A trace whose spans never arrived (only log
// records) is dropped at completion, counted, and never handed on: there is nothing to view. Log records are not de-duplicated here (they carry no id of their
// own; a re-sent request costs its bytes until the trace completes): the view drops exact
// duplicates. Spans-only traffic pays for this with three stores per new trace and a check or two
// when it completes; the log record arrays are allocated on the first log record.
//
// Hot path: ingest() runs per received request over the scanner's offsets. Spans stay where they
// arrived, in the request buffer (shared with the export queue, no copy), referenced by offsets;
// each request buffer is charged to the byte budget once, while any trace uses it. A trace still
// buffered after `compactAfterMs` gets its spans copied into its own allocation, so a
// long-running trace never pins the requests it arrived in.
//
// Memory layout, and why: at 200k+ spans/s with a 2 s settle window there are ~50k traces and
// ~500k spans buffered at any time, and request buffers (external memory) make V8 run a full
// mark-compact several times a second. Every JS object the assembler keeps per trace or per span
// would be marked on each of those collections. So the per-trace and per-span state lives in
// typed arrays (struct-of-arrays with free lists), trace ids are looked up in one open-addressing
// table keyed by their 16 bytes (no id strings) that holds buffered and decided ids alike, and the
// decision cache is a ring of ids in a typed array. Log records get the same treatment (their own
// record arrays, a second list per trace). The only JS objects held per buffered item are one
// Chunk per received buffer and the interned resource/scope refs. Deadlines live in a timer wheel
// whose slots are intrusive lists threaded through the same arrays: filing, moving and unfiling a
// trace is O(1) and a finished trace is unreachable from the assembler the moment it completes.
import { randomInt } from 'node:crypto';
import type { Component, Consumer } from '../component/index.ts';
import { errorFields, type Logger, type MetricsRegistry, silentLogger } from '../util/index.ts';
import {
  LOG_STRIDE,
  type LogScanResult,
  logSampled,
  type OtlpBatch,
  type ResourceRef,
  type ScanResult,
  type ScopeRef,
  SPAN_STRIDE,
} from '../wire/index.ts';
import type { CompleteTrace, CompletionReason, TraceInterest } from './types.ts';

/**
 * Bytes charged per buffered span on top of its encoded size: its record in the span arrays
 * plus growth slack. Checked with bench/memory.ts.
 */
export const SPAN_OVERHEAD_BYTES = 48;
/** Bytes charged per buffered log record on top of its encoded size: its record plus growth slack. */
export const LOG_OVERHEAD_BYTES = 48;
/** Bytes charged per request buffer or compacted copy held (the ArrayBuffer, its view, the Chunk). */
export const CHUNK_OVERHEAD_BYTES = 256;
/** Bytes charged per buffered trace: its row in the trace arrays and its id-table slots. */
export const TRACE_OVERHEAD_BYTES = 160;
/** Above this many spans a trace switches from a linear id scan to a Set. */
const LINEAR_DEDUP_LIMIT = 32;
const INTERN_LIMIT = 4096;
/** Slots in the timer wheel; deadlines further out are filed at the horizon and refiled. */
const WHEEL_SLOTS = 4096;
const WHEEL_MASK = WHEEL_SLOTS - 1;
const NONE = -1;

export interface AssemblerOptions {
  settleMs: number;
  idleTimeoutMs: number;
  maxAgeMs: number;
  maxBytes: number;
  decisionCacheSize: number;
  /**
   * What shutdown does with traces still buffered: hand them on (reason `shutdown`, recorded on
   * their assessments) or drop them (counted). Default complete.
   */
  onShutdown?: 'complete' | 'drop';
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
  /** Spans of traces no later stage may read (see TraceInterest): forwarded, never buffered. */
  spansNotSampled: number;
  /** Traces buffered when shutdown dropped them (assembler.onShutdown: drop). */
  tracesDroppedAtShutdown: number;
  tracesCompleted: Record<CompletionReason, number>;
  tracesEvicted: number;
  spansEvicted: number;
  tracesCompacted: number;
  consumerErrors: number;
  /** Log records with a trace id buffered with their trace. */
  logsBuffered: number;
  /** Log records of traces already decided (completed, evicted or dropped). */
  logsLate: number;
  /** Log records of traces no later stage may read: forwarded, never buffered. */
  logsNotSampled: number;
  /**
   * Log records whose trace flags do not mark the trace sampled, of traces not buffered: their
   * spans are not expected (head sampling dropped them), so they open no entry.
   */
  logsUnsampled: number;
  logsEvicted: number;
  /** Log records of traces whose spans never arrived, dropped when the trace completed. */
  logsWithoutSpans: number;
}

/** The resource and scope a run of spans arrived under. */
interface Part {
  readonly resource: ResourceRef;
  readonly scope: ScopeRef;
}

/** A buffer holding spans: a received request (shared by its traces) or a compacted copy. */
interface Chunk {
  readonly buf: Buffer;
  /** Bytes charged while any trace uses it. */
  readonly bytes: number;
  /** Traces using it. */
  refs: number;
  /** Its table index while registered. */
  id: number;
  /** The resource/scope pairs of its spans (span records hold an index into this list). */
  readonly parts: Part[];
}

// ---------------------------------------------------------------------------------------------
// Ids: 16-byte trace ids as four int32 words.

function word(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24);
}

// Per-process seeds: ids come from untrusted senders, who should not be able to pick ids that
// all land in one probe sequence.
const SEED = Array.from({ length: 4 }, () => randomInt(0x7fffffff) | 0);
const [S0, S1, S2, S3] = SEED as [number, number, number, number];

function hash4(w0: number, w1: number, w2: number, w3: number): number {
  // Ids are usually random, but not always (some SDKs put a timestamp in the first bytes): mix all.
  let h =
    Math.imul(w0 ^ S0, 0x9e3779b1) ^ Math.imul(w1 ^ S1, 0x85ebca77) ^ Math.imul(w2 ^ S2, 0xc2b2ae3d) ^ Math.imul(w3 ^ S3, 0x27d4eb2f);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return h ^ (h >>> 13);
}

/** The `ids` value of a decided id at this decision-ring position (always <= -2). */
function decidedMark(pos: number): number {
  return -2 - pos;
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function hexOf(w: Int32Array, at: number): string {
  let s = '';
  for (let k = 0; k < 4; k++) {
    const v = w[at + k]!;
    s += HEX[v & 0xff]! + HEX[(v >>> 8) & 0xff]! + HEX[(v >>> 16) & 0xff]! + HEX[(v >>> 24) & 0xff]!;
  }
  return s;
}

/**
 * Open-addressing (linear probing) map from a 16-byte id to an int other than -1. Each slot is five
 * int32s, the id's four words and the value plus one (0: empty, so a new table needs no fill and
 * its pages stay untouched until used), so a probe touches one cache line. Deletion shifts the
 * following cluster back: no tombstones, lookups stay short.
 */
class IdTable {
  private slots: Int32Array<ArrayBuffer>;
  private mask: number;
  size = 0;

  constructor(capacity: number) {
    let cap = 16;
    while (cap < capacity) cap *= 2;
    this.slots = new Int32Array(cap * 5);
    this.mask = cap - 1;
  }

  /** The slot holding this id, or -1. Slot numbers change on add and removeAt. */
  find(w0: number, w1: number, w2: number, w3: number): number {
    const slots = this.slots;
    const mask = this.mask;
    let i = hash4(w0, w1, w2, w3) & mask;
    for (;;) {
      const k = i * 5;
      if (slots[k + 4] === 0) return NONE;
      if (slots[k] === w0 && slots[k + 1] === w1 && slots[k + 2] === w2 && slots[k + 3] === w3) return i;
      i = (i + 1) & mask;
    }
  }

  value(slot: number): number {
    return this.slots[slot * 5 + 4]! - 1;
  }

  setValue(slot: number, value: number): void {
    this.slots[slot * 5 + 4] = value + 1;
  }

  /** Inserts an id known to be absent. */
  add(w0: number, w1: number, w2: number, w3: number, value: number): void {
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    const slots = this.slots;
    const mask = this.mask;
    let i = hash4(w0, w1, w2, w3) & mask;
    while (slots[i * 5 + 4] !== 0) i = (i + 1) & mask;
    const k = i * 5;
    slots[k] = w0;
    slots[k + 1] = w1;
    slots[k + 2] = w2;
    slots[k + 3] = w3;
    slots[k + 4] = value + 1;
    this.size++;
  }

  /** Empties a slot found with find(). */
  removeAt(slot: number): void {
    const slots = this.slots;
    const mask = this.mask;
    let i = slot;
    this.size--;
    // Backward-shift: move later members of the cluster into the hole when their home slot
    // does not lie cyclically between the hole and their current slot.
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const kj = j * 5;
      if (slots[kj + 4] === 0) break;
      const home = hash4(slots[kj]!, slots[kj + 1]!, slots[kj + 2]!, slots[kj + 3]!) & mask;
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (stays) continue;
      slots.copyWithin(i * 5, kj, kj + 5);
      i = j;
    }
    slots[i * 5 + 4] = 0;
  }

  private grow(): void {
    const old = this.slots;
    const cap = (this.mask + 1) * 2;
    this.slots = new Int32Array(cap * 5);
    this.mask = cap - 1;
    this.size = 0;
    for (let k = 0; k < old.length; k += 5) {
      if (old[k + 4] !== 0) this.add(old[k]!, old[k + 1]!, old[k + 2]!, old[k + 3]!, old[k + 4]! - 1);
    }
  }
}

// ---------------------------------------------------------------------------------------------

const NO_BYTES: readonly Uint8Array[] = Object.freeze([]) as readonly Uint8Array[];
const NO_RESOURCES: readonly ResourceRef[] = Object.freeze([]) as readonly ResourceRef[];
const NO_SCOPES: readonly ScopeRef[] = Object.freeze([]) as readonly ScopeRef[];

/** A completed trace's log records: where they are, and their views made on first use. */
interface TraceLogs {
  readonly where: Array<Buffer | number>;
  readonly parts: Part[];
  views?: Uint8Array[];
  resources?: ResourceRef[];
  scopes?: ScopeRef[];
}

/** Views on the 3-slot (buffer, start, length) list of a trace's spans or log records. */
function viewsOf(w: Array<Buffer | number>, n: number): Uint8Array[] {
  const out: Uint8Array[] = new Array(n);
  for (let j = 0, k = 0; j < w.length; j += 3, k++) {
    const c = w[j] as Buffer;
    out[k] = new Uint8Array(c.buffer, c.byteOffset + (w[j + 1] as number), w[j + 2] as number);
  }
  return out;
}

/**
 * A completed trace as handed to the next stage. Span views and the per-span resource and scope
 * lists are made on first use, so a consumer that looks at few traces (sampling) does not pay for
 * the rest. It keeps the buffers its spans and log records live in.
 */
class AssembledTrace implements CompleteTrace {
  readonly traceId: string;
  readonly reason: CompletionReason;
  readonly hasRoot: boolean;
  readonly firstSeenMs: number;
  readonly completedMs: number;
  readonly wireBytes: number;
  /** 3 slots per span: buffer, start, length. */
  readonly #where: Array<Buffer | number>;
  readonly #parts: Part[];
  /** Its log records; undefined when none arrived (one field, so spans-only traces stay small). */
  readonly #logs: TraceLogs | undefined;
  #spans: Uint8Array[] | undefined;
  #resources: ResourceRef[] | undefined;
  #scopes: ScopeRef[] | undefined;

  constructor(
    traceId: string,
    where: Array<Buffer | number>,
    parts: Part[],
    logs: TraceLogs | undefined,
    meta: { reason: CompletionReason; hasRoot: boolean; firstSeenMs: number; completedMs: number; wireBytes: number },
  ) {
    this.traceId = traceId;
    this.reason = meta.reason;
    this.hasRoot = meta.hasRoot;
    this.firstSeenMs = meta.firstSeenMs;
    this.completedMs = meta.completedMs;
    this.wireBytes = meta.wireBytes;
    this.#where = where;
    this.#parts = parts;
    this.#logs = logs;
  }

  get spans(): readonly Uint8Array[] {
    this.#spans ??= viewsOf(this.#where, this.#parts.length);
    return this.#spans;
  }

  get logs(): readonly Uint8Array[] {
    const l = this.#logs;
    if (l === undefined) return NO_BYTES;
    l.views ??= viewsOf(l.where, l.parts.length);
    return l.views;
  }

  get logResources(): readonly ResourceRef[] {
    const l = this.#logs;
    if (l === undefined) return NO_RESOURCES;
    l.resources ??= l.parts.map((p) => p.resource);
    return l.resources;
  }

  get logScopes(): readonly ScopeRef[] {
    const l = this.#logs;
    if (l === undefined) return NO_SCOPES;
    l.scopes ??= l.parts.map((p) => p.scope);
    return l.scopes;
  }

  get resources(): readonly ResourceRef[] {
    this.#resources ??= this.#parts.map((p) => p.resource);
    return this.#resources;
  }

  get scopes(): readonly ScopeRef[] {
    this.#scopes ??= this.#parts.map((p) => p.scope);
    return this.#scopes;
  }
}

function eq8(a: Uint8Array, ai: number, b: Uint8Array, bi: number): boolean {
  for (let i = 0; i < 8; i++) if (a[ai + i] !== b[bi + i]) return false;
  return true;
}

/** Whether the 16-byte ids at a and b are equal (cheaper than hashing again). */
function sameId(buf: Uint8Array, a: number, b: number): boolean {
  if (a === b) return true;
  for (let i = 0; i < 16; i++) if (buf[a + i] !== buf[b + i]) return false;
  return true;
}

function growI32(a: Int32Array<ArrayBuffer>, n: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(n);
  b.set(a);
  return b;
}

function growF64(a: Float64Array<ArrayBuffer>, n: number): Float64Array<ArrayBuffer> {
  const b = new Float64Array(n);
  b.set(a);
  return b;
}

export interface AssemblerDeps {
  /** Asked once per new trace id; a trace it does not want is forwarded but never buffered. */
  interest?: TraceInterest | undefined;
  metrics?: MetricsRegistry | undefined;
  log?: Logger | undefined;
}

export class Assembler implements Consumer<OtlpBatch>, Component {
  private readonly opts: Required<AssemblerOptions>;
  private readonly next: Consumer<CompleteTrace>;
  private readonly interest: TraceInterest | undefined;
  private readonly log: Logger;
  private stopped = false;
  /** Origin of the relative times kept in the trace arrays. */
  private readonly epoch: number;

  // Traces: one row per buffered trace, rows recycled through a free list (linked via tNext).
  private tCap = 0;
  private tId = new Int32Array(0); // 4 words per row
  private tFirst = new Float64Array(0);
  private tLast = new Float64Array(0);
  private tRoot = new Float64Array(0); // -1: no root yet
  private tCompactDue = new Float64Array(0); // -1: nothing to compact
  private tSlot = new Float64Array(0); // wheel slot, -1 when not filed
  private tPrev = new Int32Array(0); // wheel list
  private tNext = new Int32Array(0);
  private tOlder = new Int32Array(0); // age list (oldest first), for eviction and shutdown
  private tNewer = new Int32Array(0);
  private tHead = new Int32Array(0); // span list
  private tTail = new Int32Array(0);
  private tCount = new Int32Array(0);
  private tLastChunk = new Int32Array(0); // chunk id of the newest span
  private tWire = new Float64Array(0);
  private tLogHead = new Int32Array(0); // log record list
  private tLogTail = new Int32Array(0);
  private tLogCount = new Int32Array(0);
  private tFree = NONE;
  private oldest = NONE;
  private newest = NONE;
  private live = 0;
  /**
   * Every id the assembler knows, buffered or decided, in one table, so a span costs one lookup:
   * value >= 0 is a buffered trace's row, value <= -2 a decided id (see decidedMark).
   */
  private readonly ids: IdTable;
  /** Span-id sets of traces past LINEAR_DEDUP_LIMIT spans (rare), by row. */
  private readonly bigTraces = new Map<number, Set<string>>();

  // Spans: one record per buffered span (chunk id, start, length, span-id offset, part index,
  // next span of the same trace), recycled through a free list linked via sNext.
  private sCap = 0;
  private sChunk = new Int32Array(0);
  private sStart = new Int32Array(0);
  private sLen = new Int32Array(0);
  private sIdOff = new Int32Array(0);
  private sPart = new Int32Array(0);
  private sNext = new Int32Array(0);
  private sFree = NONE;

  // Log records: one record per buffered log record (chunk id, start, length, part index, next
  // record of the same trace), recycled through a free list linked via lNext. Allocated on the
  // first log record, so spans-only traffic never touches them.
  private lCap = 0;
  private lChunk = new Int32Array(0);
  private lStart = new Int32Array(0);
  private lLen = new Int32Array(0);
  private lPart = new Int32Array(0);
  private lNext = new Int32Array(0);
  private lFree = NONE;

  // Chunks in use, by id; ids are recycled.
  private readonly chunks: Array<Chunk | undefined> = [];
  private readonly chunkFree: number[] = [];

  // Decision cache: the last decisionCacheSize finished ids, in a ring (oldest at decidedNext
  // once full); their entries in `ids` hold decidedMark(ring position).
  private readonly decidedRing: Int32Array;
  private decidedCount = 0;
  private decidedNext = 0;

  /** First and last trace filed in each wheel slot. */
  private readonly wheel = new Int32Array(WHEEL_SLOTS).fill(NONE);
  private readonly wheelTail = new Int32Array(WHEEL_SLOTS).fill(NONE);
  private lastSweptSlot = 0;
  private timer: NodeJS.Timeout | undefined;
  private bufferedBytes = 0;
  private readonly resourceIntern = new Map<string, ResourceRef>();
  private readonly scopeIntern = new Map<string, ScopeRef>();
  readonly counters: AssemblerCounters = {
    spansBuffered: 0,
    spansDuplicate: 0,
    spansLate: 0,
    spansNotSampled: 0,
    tracesDroppedAtShutdown: 0,
    tracesCompleted: { root: 0, idle: 0, max_age: 0, shutdown: 0 },
    tracesEvicted: 0,
    spansEvicted: 0,
    tracesCompacted: 0,
    consumerErrors: 0,
    logsBuffered: 0,
    logsLate: 0,
    logsNotSampled: 0,
    logsUnsampled: 0,
    logsEvicted: 0,
    logsWithoutSpans: 0,
  };

  constructor(opts: AssemblerOptions, next: Consumer<CompleteTrace>, deps: AssemblerDeps = {}) {
    this.opts = {
      tickMs: 100,
      compactAfterMs: Math.max(5_000, opts.settleMs * 2),
      now: Date.now,
      onShutdown: 'complete',
      ...opts,
    };
    this.next = next;
    this.interest = deps.interest;
    this.log = deps.log ?? silentLogger;
    if (deps.metrics) this.registerMetrics(deps.metrics);
    this.epoch = this.opts.now();
    const cap = Math.max(1, this.opts.decisionCacheSize);
    this.decidedRing = new Int32Array(cap * 4);
    this.ids = new IdTable(2 * (cap + 4096));
    this.growTraces(1024);
    this.growSpans(8192);
  }

  /** Bytes charged for buffered traces (encoded spans plus bookkeeping). */
  get bytes(): number {
    return this.bufferedBytes;
  }
  get traceCount(): number {
    return this.live;
  }

  private registerMetrics(m: MetricsRegistry): void {
    const c = this.counters;
    m.counterFunc('scorecar_assembler_spans_total', 'Spans seen by the assembler, by outcome', ['outcome'], () => [
      [{ outcome: 'buffered' }, c.spansBuffered],
      [{ outcome: 'duplicate' }, c.spansDuplicate],
      [{ outcome: 'late' }, c.spansLate],
      [{ outcome: 'evicted' }, c.spansEvicted],
      [{ outcome: 'not_sampled' }, c.spansNotSampled],
    ]);
    m.counterFunc(
      'scorecar_assembler_log_records_total',
      'Log records carrying a trace id seen by the assembler, by outcome',
      ['outcome'],
      () => [
        [{ outcome: 'buffered' }, c.logsBuffered],
        [{ outcome: 'late' }, c.logsLate],
        [{ outcome: 'evicted' }, c.logsEvicted],
        [{ outcome: 'not_sampled' }, c.logsNotSampled],
        [{ outcome: 'unsampled' }, c.logsUnsampled],
        [{ outcome: 'no_spans' }, c.logsWithoutSpans],
      ],
    );
    m.counterFunc('scorecar_assembler_traces_completed_total', 'Traces handed to scoring, by completion rule', ['reason'], () =>
      Object.entries(c.tracesCompleted).map(([reason, v]) => [{ reason }, v]),
    );
    m.counterFunc('scorecar_assembler_traces_evicted_total', 'Traces dropped from the buffer because it was full', [], () => c.tracesEvicted);
    m.counterFunc(
      'scorecar_assembler_traces_dropped_at_shutdown_total',
      'Traces still buffered at shutdown and dropped (assembler.onShutdown: drop)',
      [],
      () => c.tracesDroppedAtShutdown,
    );
    m.gauge('scorecar_assembler_buffer_bytes', 'Bytes charged for buffered traces', [], () => this.bytes);
    m.gauge('scorecar_assembler_buffer_traces', 'Traces currently buffered', [], () => this.traceCount);
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.sweep(), this.opts.tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Stops the timer, then applies assembler.onShutdown to every trace still buffered: completes
   * them (reason shutdown) or drops them (counted). Later spans are only forwarded.
   */
  shutdown(_deadlineMs?: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.stopped = true;
    this.stop();
    if (this.opts.onShutdown === 'drop') {
      const n = this.dropAll();
      if (n > 0) this.log.info('dropped buffered traces at shutdown (assembler.onShutdown: drop)', { traces: n });
    } else {
      const n = this.flushAll('shutdown');
      if (n > 0) this.log.info('completed buffered traces at shutdown', { traces: n });
    }
    return Promise.resolve();
  }

  /** Takes the spans of a received trace request and the log records of a logs request; metrics pass by. */
  consume(batch: OtlpBatch): void {
    if (batch.scanned === undefined || this.stopped) return;
    if (batch.scan !== undefined) {
      if (batch.signal === 'traces') this.ingest(batch.scanned, batch.scan, batch.experimentHeader);
    } else if (batch.logScan !== undefined && batch.signal === 'logs') {
      this.ingestLogs(batch.scanned, batch.logScan, batch.experimentHeader);
    }
  }

  /**
   * Buffers the valid spans of a scanned ExportTraceServiceRequest. Buffered spans point into
   * `buf`, which must then never be modified, or, when `scan.home` is set, into those buffers
   * (and `buf` is only read during the call).
   */
  ingest(buf: Buffer, scan: ScanResult, experimentHeader?: string): void {
    const now = this.opts.now() - this.epoch;
    // Spans are kept from `buf`, or, when it is a transient copy, from the pieces the request
    // arrived in (scan.home), walked with a cursor as span offsets only grow. One chunk per piece
    // used; a span cut by a piece boundary is copied out on its own.
    const pieces: readonly Buffer[] = scan.home ?? [buf];
    const pieceChunks: Array<Chunk | undefined> = new Array(pieces.length);
    const parts: Part[] = [];
    let pi = 0;
    let pStart = 0;
    let pEnd = pieces.length > 0 ? pieces[0]!.length : 0;
    let added = 0;
    const interest = this.interest;
    for (const rs of scan.resources) {
      const resource = this.internResource(buf, rs.resource, rs.schemaUrl, experimentHeader);
      for (const ss of rs.scopes) {
        const part = parts.length;
        parts.push({ resource, scope: this.internScope(buf, ss.scope, ss.schemaUrl) });
        const s = ss.spans;
        let t = NONE;
        let lastOff = -1;
        // The current run of spans belongs to a trace no stage wants (NONE with a skip).
        let skip = false;
        for (let i = 0; i < s.length; i += SPAN_STRIDE) {
          const tOff = s[i + 2]!;
          if (tOff < 0) continue; // rejected by the scanner
          if ((t === NONE && !skip) || !sameId(buf, tOff, lastOff)) {
            lastOff = tOff;
            skip = false;
            const w0 = word(buf, tOff);
            const w1 = word(buf, tOff + 4);
            const w2 = word(buf, tOff + 8);
            const w3 = word(buf, tOff + 12);
            const slot = this.ids.find(w0, w1, w2, w3);
            t = slot === NONE ? NONE : this.ids.value(slot);
            if (t < -1) {
              this.counters.spansLate++;
              t = NONE;
              continue;
            }
            if (t === NONE) {
              if (interest !== undefined && !interest.wants(buf, tOff, resource)) {
                // Nothing downstream may read it: forwarded (already), never buffered.
                skip = true;
                this.counters.spansNotSampled++;
                continue;
              }
              t = this.newTrace(w0, w1, w2, w3, now);
            }
          } else if (skip) {
            this.counters.spansNotSampled++;
            continue;
          }
          const rawId = s[i + 3]!;
          const hasParent = rawId < 0;
          const idOff = hasParent ? -rawId - 1 : rawId;
          if (this.isDuplicate(t, buf, idOff)) {
            this.counters.spansDuplicate++;
            continue;
          }
          const start = s[i]!;
          const end = s[i + 1]!;
          while (start >= pEnd && pi + 1 < pieces.length) {
            pi++;
            pStart = pEnd;
            pEnd += pieces[pi]!.length;
          }
          let chunk: Chunk;
          let local: number;
          if (end <= pEnd) {
            let c = pieceChunks[pi];
            if (c === undefined) {
              c = this.newChunk(pieces[pi]!, parts);
              pieceChunks[pi] = c;
            }
            chunk = c;
            local = start - pStart;
          } else {
            const own = Buffer.allocUnsafeSlow(end - start);
            buf.copy(own, 0, start, end);
            chunk = this.newChunk(own, parts);
            local = 0;
          }
          if (this.tLastChunk[t] !== chunk.id) {
            this.tLastChunk[t] = chunk.id;
            if (chunk.refs++ === 0) this.bufferedBytes += chunk.bytes;
            if (this.tCompactDue[t]! < 0) {
              // Compacted earlier; this span sits in a shared request buffer again.
              this.tCompactDue[t] = now + this.opts.compactAfterMs;
              this.refile(t);
            }
          }
          const len = end - start;
          this.appendSpan(t, chunk.id, local, len, local + idOff - start, part);
          this.tWire[t] = this.tWire[t]! + len;
          this.tLast[t] = now;
          added++;
          if (!hasParent && this.tRoot[t]! < 0) {
            this.tRoot[t] = now;
            this.refile(t);
          }
        }
      }
    }
    this.bufferedBytes += added * SPAN_OVERHEAD_BYTES;
    this.counters.spansBuffered += added;
    if (this.bufferedBytes > this.opts.maxBytes) this.evict();
  }

  /**
   * Buffers the log records of a scanned ExportLogsServiceRequest that carry a trace id, with
   * their trace (see the module header): a record of a buffered trace joins it; one of an unknown
   * trace opens its entry if its flags mark the trace sampled and the interest gate wants the
   * trace (the spans may come later); one of a decided trace is late. Kept records point into
   * `buf` or `scan.home`, as spans do.
   */
  ingestLogs(buf: Buffer, scan: LogScanResult, experimentHeader?: string): void {
    if (scan.withTraceId === 0) return; // plain application logs: nothing to join
    const now = this.opts.now() - this.epoch;
    const pieces: readonly Buffer[] = scan.home ?? [buf];
    const pieceChunks: Array<Chunk | undefined> = new Array(pieces.length);
    const parts: Part[] = [];
    let pi = 0;
    let pStart = 0;
    let pEnd = pieces.length > 0 ? pieces[0]!.length : 0;
    let added = 0;
    const interest = this.interest;
    for (const rs of scan.resources) {
      let resource: ResourceRef | undefined;
      for (const ss of rs.scopes) {
        const l = ss.logs;
        let part = NONE;
        // The current run of records shares one trace id: its row, or why it is skipped.
        let t = NONE;
        let skip: 'late' | 'not_sampled' | undefined;
        let lastOff = -1;
        for (let i = 0; i < l.length; i += LOG_STRIDE) {
          const tOff = l[i + 2]!;
          if (tOff < 0) continue; // no trace id: not part of any trace
          if (resource === undefined) resource = this.internResource(buf, rs.resource, rs.schemaUrl, experimentHeader);
          if (lastOff < 0 || !sameId(buf, tOff, lastOff)) {
            lastOff = tOff;
            skip = undefined;
            const w0 = word(buf, tOff);
            const w1 = word(buf, tOff + 4);
            const w2 = word(buf, tOff + 8);
            const w3 = word(buf, tOff + 12);
            const slot = this.ids.find(w0, w1, w2, w3);
            t = slot === NONE ? NONE : this.ids.value(slot);
            if (t < -1) skip = 'late';
            else if (t === NONE) {
              if (!logSampled(l, i)) {
                // Not remembered for the run: a later record of this trace may carry the flag.
                this.counters.logsUnsampled++;
                lastOff = -1;
                continue;
              }
              if (interest !== undefined && !interest.wants(buf, tOff, resource)) skip = 'not_sampled';
              else t = this.newTrace(w0, w1, w2, w3, now);
            }
          }
          if (skip === 'late') {
            this.counters.logsLate++;
            continue;
          }
          if (skip === 'not_sampled') {
            this.counters.logsNotSampled++;
            continue;
          }
          if (part === NONE) {
            part = parts.length;
            parts.push({ resource, scope: this.internScope(buf, ss.scope, ss.schemaUrl) });
          }
          const start = l[i]!;
          const end = l[i + 1]!;
          while (start >= pEnd && pi + 1 < pieces.length) {
            pi++;
            pStart = pEnd;
            pEnd += pieces[pi]!.length;
          }
          let chunk: Chunk;
          let local: number;
          if (end <= pEnd) {
            let c = pieceChunks[pi];
            if (c === undefined) {
              c = this.newChunk(pieces[pi]!, parts);
              pieceChunks[pi] = c;
            }
            chunk = c;
            local = start - pStart;
          } else {
            const own = Buffer.allocUnsafeSlow(end - start);
            buf.copy(own, 0, start, end);
            chunk = this.newChunk(own, parts);
            local = 0;
          }
          // Each log record holds its own reference (log records are few; spans hold one per run).
          if (chunk.refs++ === 0) this.bufferedBytes += chunk.bytes;
          if (this.tCompactDue[t]! < 0) {
            this.tCompactDue[t] = now + this.opts.compactAfterMs;
            this.refile(t);
          }
          const len = end - start;
          this.appendLog(t, chunk.id, local, len, part);
          this.tWire[t] = this.tWire[t]! + len;
          this.tLast[t] = now;
          added++;
        }
      }
    }
    this.bufferedBytes += added * LOG_OVERHEAD_BYTES;
    this.counters.logsBuffered += added;
    if (this.bufferedBytes > this.opts.maxBytes) this.evict();
  }

  // --- rows ------------------------------------------------------------------------------------

  private growTraces(n: number): void {
    const from = this.tCap;
    this.tId = growI32(this.tId, n * 4);
    this.tFirst = growF64(this.tFirst, n);
    this.tLast = growF64(this.tLast, n);
    this.tRoot = growF64(this.tRoot, n);
    this.tCompactDue = growF64(this.tCompactDue, n);
    this.tSlot = growF64(this.tSlot, n);
    this.tPrev = growI32(this.tPrev, n);
    this.tNext = growI32(this.tNext, n);
    this.tOlder = growI32(this.tOlder, n);
    this.tNewer = growI32(this.tNewer, n);
    this.tHead = growI32(this.tHead, n);
    this.tTail = growI32(this.tTail, n);
    this.tCount = growI32(this.tCount, n);
    this.tLastChunk = growI32(this.tLastChunk, n);
    this.tWire = growF64(this.tWire, n);
    this.tLogHead = growI32(this.tLogHead, n);
    this.tLogTail = growI32(this.tLogTail, n);
    this.tLogCount = growI32(this.tLogCount, n);
    for (let i = n - 1; i >= from; i--) {
      this.tNext[i] = this.tFree;
      this.tFree = i;
    }
    this.tCap = n;
  }

  private newTrace(w0: number, w1: number, w2: number, w3: number, now: number): number {
    if (this.tFree === NONE) this.growTraces(this.tCap * 2);
    const t = this.tFree;
    this.tFree = this.tNext[t]!;
    const k = t * 4;
    this.tId[k] = w0;
    this.tId[k + 1] = w1;
    this.tId[k + 2] = w2;
    this.tId[k + 3] = w3;
    this.tFirst[t] = now;
    this.tLast[t] = now;
    this.tRoot[t] = -1;
    this.tCompactDue[t] = now + this.opts.compactAfterMs;
    this.tHead[t] = NONE;
    this.tTail[t] = NONE;
    this.tCount[t] = 0;
    this.tLastChunk[t] = NONE;
    this.tWire[t] = 0;
    this.tLogHead[t] = NONE;
    this.tLogTail[t] = NONE;
    this.tLogCount[t] = 0;
    // Age list: newest at the end.
    this.tOlder[t] = this.newest;
    this.tNewer[t] = NONE;
    if (this.newest !== NONE) this.tNewer[this.newest] = t;
    else this.oldest = t;
    this.newest = t;
    this.ids.add(w0, w1, w2, w3, t);
    this.live++;
    this.bufferedBytes += TRACE_OVERHEAD_BYTES;
    this.tSlot[t] = -1;
    this.file(t);
    return t;
  }

  /**
   * Unlinks a row from every structure and frees its spans; the caller has read what it needs
   * and turned its id into a decided one (remember).
   */
  private dropTrace(t: number): void {
    this.unfile(t);
    const older = this.tOlder[t]!;
    const newer = this.tNewer[t]!;
    if (older !== NONE) this.tNewer[older] = newer;
    else this.oldest = newer;
    if (newer !== NONE) this.tOlder[newer] = older;
    else this.newest = older;
    this.releaseSpans(t);
    if (this.tLogHead[t] !== NONE) this.releaseLogs(t);
    this.bigTraces.delete(t);
    this.bufferedBytes -=
      TRACE_OVERHEAD_BYTES + this.tCount[t]! * SPAN_OVERHEAD_BYTES + this.tLogCount[t]! * LOG_OVERHEAD_BYTES;
    this.tNext[t] = this.tFree;
    this.tFree = t;
    this.live--;
  }

  // --- spans -----------------------------------------------------------------------------------

  private growSpans(n: number): void {
    const from = this.sCap;
    this.sChunk = growI32(this.sChunk, n);
    this.sStart = growI32(this.sStart, n);
    this.sLen = growI32(this.sLen, n);
    this.sIdOff = growI32(this.sIdOff, n);
    this.sPart = growI32(this.sPart, n);
    this.sNext = growI32(this.sNext, n);
    for (let i = n - 1; i >= from; i--) {
      this.sNext[i] = this.sFree;
      this.sFree = i;
    }
    this.sCap = n;
  }

  private appendSpan(t: number, chunkId: number, start: number, len: number, idOff: number, part: number): void {
    if (this.sFree === NONE) this.growSpans(this.sCap * 2);
    const sp = this.sFree;
    this.sFree = this.sNext[sp]!;
    this.sChunk[sp] = chunkId;
    this.sStart[sp] = start;
    this.sLen[sp] = len;
    this.sIdOff[sp] = idOff;
    this.sPart[sp] = part;
    this.sNext[sp] = NONE;
    const tail = this.tTail[t]!;
    if (tail === NONE) this.tHead[t] = sp;
    else this.sNext[tail] = sp;
    this.tTail[t] = sp;
    this.tCount[t] = this.tCount[t]! + 1;
  }

  /** Returns a trace's span records to the free list and lets go of its chunks. */
  private releaseSpans(t: number): void {
    let prevChunk = NONE;
    let sp = this.tHead[t]!;
    while (sp !== NONE) {
      const next = this.sNext[sp]!;
      const c = this.sChunk[sp]!;
      // A trace's spans from one chunk are contiguous: each run holds one reference.
      if (c !== prevChunk) {
        this.unref(this.chunks[c]!);
        prevChunk = c;
      }
      this.sNext[sp] = this.sFree;
      this.sFree = sp;
      sp = next;
    }
    this.tHead[t] = NONE;
    this.tTail[t] = NONE;
    this.tLastChunk[t] = NONE;
  }

  // --- log records -----------------------------------------------------------------------------

  private growLogs(n: number): void {
    const from = this.lCap;
    this.lChunk = growI32(this.lChunk, n);
    this.lStart = growI32(this.lStart, n);
    this.lLen = growI32(this.lLen, n);
    this.lPart = growI32(this.lPart, n);
    this.lNext = growI32(this.lNext, n);
    for (let i = n - 1; i >= from; i--) {
      this.lNext[i] = this.lFree;
      this.lFree = i;
    }
    this.lCap = n;
  }

  private appendLog(t: number, chunkId: number, start: number, len: number, part: number): void {
    if (this.lFree === NONE) this.growLogs(Math.max(1024, this.lCap * 2));
    const r = this.lFree;
    this.lFree = this.lNext[r]!;
    this.lChunk[r] = chunkId;
    this.lStart[r] = start;
    this.lLen[r] = len;
    this.lPart[r] = part;
    this.lNext[r] = NONE;
    const tail = this.tLogTail[t]!;
    if (tail === NONE) this.tLogHead[t] = r;
    else this.lNext[tail] = r;
    this.tLogTail[t] = r;
    this.tLogCount[t] = this.tLogCount[t]! + 1;
  }

  /** Returns a trace's log records to the free list, each letting go of its chunk reference. */
  private releaseLogs(t: number): void {
    let r = this.tLogHead[t]!;
    while (r !== NONE) {
      const next = this.lNext[r]!;
      this.unref(this.chunks[this.lChunk[r]!]!);
      this.lNext[r] = this.lFree;
      this.lFree = r;
      r = next;
    }
    this.tLogHead[t] = NONE;
    this.tLogTail[t] = NONE;
  }

  /** Whether the span id at buf[idOff] is already buffered for this trace. */
  private isDuplicate(t: number, buf: Buffer, idOff: number): boolean {
    const n = this.tCount[t]!;
    if (n === 0) return false;
    let set = this.bigTraces.get(t);
    if (set === undefined && n >= LINEAR_DEDUP_LIMIT) {
      set = new Set<string>();
      for (let sp = this.tHead[t]!; sp !== NONE; sp = this.sNext[sp]!) {
        const at = this.sIdOff[sp]!;
        set.add(this.chunks[this.sChunk[sp]!]!.buf.toString('latin1', at, at + 8));
      }
      this.bigTraces.set(t, set);
    }
    if (set !== undefined) {
      const id = buf.toString('latin1', idOff, idOff + 8);
      if (set.has(id)) return true;
      set.add(id);
      return false;
    }
    for (let sp = this.tHead[t]!; sp !== NONE; sp = this.sNext[sp]!) {
      if (eq8(this.chunks[this.sChunk[sp]!]!.buf, this.sIdOff[sp]!, buf, idOff)) return true;
    }
    return false;
  }

  // --- chunks ----------------------------------------------------------------------------------

  /** A registered chunk for spans about to be added (it is unregistered when its refs drop to 0). */
  private newChunk(buf: Buffer, parts: Part[]): Chunk {
    const c: Chunk = { buf, bytes: buf.length + CHUNK_OVERHEAD_BYTES, refs: 0, id: NONE, parts };
    this.registerChunk(c);
    return c;
  }

  private registerChunk(c: Chunk): void {
    const id = this.chunkFree.length > 0 ? this.chunkFree.pop()! : this.chunks.length;
    c.id = id;
    this.chunks[id] = c;
  }

  private unregisterChunk(c: Chunk): void {
    this.chunks[c.id] = undefined;
    this.chunkFree.push(c.id);
    c.id = NONE;
  }

  private unref(c: Chunk): void {
    if (--c.refs === 0) {
      this.bufferedBytes -= c.bytes;
      this.unregisterChunk(c);
    }
  }

  /**
   * Copies a trace's spans and log records out of the shared request buffers into one buffer of
   * its own. The copy is referenced once by the run of spans and once per log record.
   */
  private compact(t: number): void {
    let total = 0;
    for (let sp = this.tHead[t]!; sp !== NONE; sp = this.sNext[sp]!) total += this.sLen[sp]!;
    for (let r = this.tLogHead[t]!; r !== NONE; r = this.lNext[r]!) total += this.lLen[r]!;
    const hasSpans = this.tHead[t]! !== NONE;
    const own: Chunk = {
      buf: Buffer.allocUnsafeSlow(total),
      bytes: total + CHUNK_OVERHEAD_BYTES,
      refs: (hasSpans ? 1 : 0) + this.tLogCount[t]!,
      id: NONE,
      parts: [],
    };
    this.registerChunk(own);
    const partIndex = new Map<Part, number>();
    const released: Chunk[] = [];
    let at = 0;
    for (let sp = this.tHead[t]!; sp !== NONE; sp = this.sNext[sp]!) {
      const c = this.chunks[this.sChunk[sp]!]!;
      if (released[released.length - 1] !== c) released.push(c);
      const start = this.sStart[sp]!;
      const len = this.sLen[sp]!;
      own.buf.set(c.buf.subarray(start, start + len), at);
      const p = c.parts[this.sPart[sp]!]!;
      let pi = partIndex.get(p);
      if (pi === undefined) {
        pi = own.parts.length;
        own.parts.push(p);
        partIndex.set(p, pi);
      }
      this.sChunk[sp] = own.id;
      this.sIdOff[sp] = at + this.sIdOff[sp]! - start;
      this.sStart[sp] = at;
      this.sPart[sp] = pi;
      at += len;
    }
    for (let r = this.tLogHead[t]!; r !== NONE; r = this.lNext[r]!) {
      const c = this.chunks[this.lChunk[r]!]!;
      released.push(c); // one reference per log record
      const start = this.lStart[r]!;
      const len = this.lLen[r]!;
      own.buf.set(c.buf.subarray(start, start + len), at);
      const p = c.parts[this.lPart[r]!]!;
      let pi = partIndex.get(p);
      if (pi === undefined) {
        pi = own.parts.length;
        own.parts.push(p);
        partIndex.set(p, pi);
      }
      this.lChunk[r] = own.id;
      this.lStart[r] = at;
      this.lPart[r] = pi;
      at += len;
    }
    // Let go only now: a chunk unreferenced mid-loop would leave the table under later spans.
    for (const c of released) this.unref(c);
    this.bufferedBytes += own.bytes;
    if (hasSpans) this.tLastChunk[t] = own.id;
    this.tCompactDue[t] = -1;
    this.counters.tracesCompacted++;
  }

  // --- completion ------------------------------------------------------------------------------

  /** Completes every trace whose deadline has passed. Returns how many completed. */
  sweep(now = this.opts.now()): number {
    const rel = now - this.epoch;
    const nowSlot = Math.floor(rel / this.opts.tickMs);
    if (nowSlot < this.lastSweptSlot) return 0; // the clock went back: wait for it
    let done = 0;
    // After a pause longer than the ring, every slot is looked at once. lastSweptSlot moves
    // first, so traces refiled during the walk are filed relative to the new position.
    const first = this.lastSweptSlot;
    const last = Math.min(nowSlot, first + WHEEL_SLOTS - 1);
    this.lastSweptSlot = nowSlot;
    for (let slot = first; slot <= last; slot++) done += this.sweepSlot(slot & WHEEL_MASK, rel);
    return done;
  }

  /** Drops everything buffered, counted (shutdown with onShutdown: drop). */
  dropAll(): number {
    let n = 0;
    while (this.oldest !== NONE) {
      const t = this.oldest;
      this.counters.tracesDroppedAtShutdown++;
      this.remember(t);
      this.dropTrace(t);
      n++;
    }
    return n;
  }

  /** Completes everything buffered (shutdown). */
  flushAll(reason: CompletionReason = 'shutdown'): number {
    let n = 0;
    const now = this.opts.now() - this.epoch;
    while (this.oldest !== NONE) {
      this.complete(this.oldest, reason, now);
      n++;
    }
    return n;
  }

  private sweepSlot(index: number, now: number): number {
    let t = this.wheel[index]!;
    if (t === NONE) return 0;
    this.wheel[index] = NONE;
    this.wheelTail[index] = NONE;
    let done = 0;
    while (t !== NONE) {
      const next = this.tNext[t]!;
      this.tSlot[t] = -1;
      this.tPrev[t] = NONE;
      this.tNext[t] = NONE;
      if (this.deadline(t) <= now) {
        const root = this.tRoot[t]!;
        const byActivity = root >= 0 ? root + this.opts.settleMs : this.tLast[t]! + this.opts.idleTimeoutMs;
        const reason: CompletionReason =
          byActivity > this.tFirst[t]! + this.opts.maxAgeMs ? 'max_age' : root >= 0 ? 'root' : 'idle';
        this.complete(t, reason, now);
        done++;
      } else {
        const due = this.tCompactDue[t]!;
        if (due >= 0 && due <= now) this.compact(t);
        this.file(t);
      }
      t = next;
    }
    return done;
  }

  private deadline(t: number): number {
    const root = this.tRoot[t]!;
    const byActivity = root >= 0 ? root + this.opts.settleMs : this.tLast[t]! + this.opts.idleTimeoutMs;
    return Math.min(byActivity, this.tFirst[t]! + this.opts.maxAgeMs);
  }

  /** The wheel slot a trace must be looked at in: its deadline or its compaction, earlier first. */
  private slotFor(t: number): number {
    let at = this.deadline(t);
    const due = this.tCompactDue[t]!;
    if (due >= 0 && due < at) at = due;
    // Not before the slot the next sweep starts at (it looks at that one again).
    const slot = Math.max(Math.ceil(at / this.opts.tickMs), this.lastSweptSlot);
    return Math.min(slot, this.lastSweptSlot + WHEEL_SLOTS - 1);
  }

  /** Files a trace that is in no slot, at the end of its slot's list (completion order = filing order). */
  private file(t: number): void {
    const slot = this.slotFor(t);
    const i = slot & WHEEL_MASK;
    const tail = this.wheelTail[i]!;
    this.tSlot[t] = slot;
    this.tPrev[t] = tail;
    this.tNext[t] = NONE;
    if (tail !== NONE) this.tNext[tail] = t;
    else this.wheel[i] = t;
    this.wheelTail[i] = t;
  }

  private unfile(t: number): void {
    const slot = this.tSlot[t]!;
    if (slot < 0) return;
    const i = slot & WHEEL_MASK;
    const prev = this.tPrev[t]!;
    const next = this.tNext[t]!;
    if (prev !== NONE) this.tNext[prev] = next;
    else this.wheel[i] = next;
    if (next !== NONE) this.tPrev[next] = prev;
    else this.wheelTail[i] = prev;
    this.tPrev[t] = NONE;
    this.tNext[t] = NONE;
    this.tSlot[t] = -1;
  }

  /** Moves a trace whose wake-up time may have come earlier; later ones are refiled by sweep. */
  private refile(t: number): void {
    const slot = this.slotFor(t);
    const cur = this.tSlot[t]!;
    if (cur >= 0 && slot >= cur) return;
    this.unfile(t);
    this.file(t);
  }

  /** Turns a buffered trace's id into a decided one, forgetting the oldest decided id if full. */
  private remember(t: number): void {
    const ids = this.ids;
    const ring = this.decidedRing;
    const cap = ring.length / 4;
    const pos = this.decidedNext;
    const k = pos * 4;
    if (this.decidedCount === cap) {
      // Forget the oldest before looking up t's slot: removal moves slots.
      const old = ids.find(ring[k]!, ring[k + 1]!, ring[k + 2]!, ring[k + 3]!);
      if (old !== NONE && ids.value(old) === decidedMark(pos)) ids.removeAt(old);
    } else this.decidedCount++;
    const id = this.tId;
    const w = t * 4;
    ring[k] = id[w]!;
    ring[k + 1] = id[w + 1]!;
    ring[k + 2] = id[w + 2]!;
    ring[k + 3] = id[w + 3]!;
    ids.setValue(ids.find(id[w]!, id[w + 1]!, id[w + 2]!, id[w + 3]!), decidedMark(pos));
    this.decidedNext = pos + 1 === cap ? 0 : pos + 1;
  }

  private complete(t: number, reason: CompletionReason, now: number): void {
    const n = this.tCount[t]!;
    if (n === 0) {
      // Only log records arrived (their spans were never sent here, or are later than the idle
      // timeout): there is no trace to view. Decided, so stragglers count as late.
      this.counters.logsWithoutSpans += this.tLogCount[t]!;
      this.remember(t);
      this.dropTrace(t);
      return;
    }
    const where: Array<Buffer | number> = new Array(n * 3);
    const parts: Part[] = new Array(n);
    let j = 0;
    for (let sp = this.tHead[t]!; sp !== NONE; sp = this.sNext[sp]!, j++) {
      const c = this.chunks[this.sChunk[sp]!]!;
      where[j * 3] = c.buf;
      where[j * 3 + 1] = this.sStart[sp]!;
      where[j * 3 + 2] = this.sLen[sp]!;
      parts[j] = c.parts[this.sPart[sp]!]!;
    }
    const nl = this.tLogCount[t]!;
    let logs: TraceLogs | undefined;
    if (nl > 0) {
      const logWhere: Array<Buffer | number> = new Array(nl * 3);
      const logParts: Part[] = new Array(nl);
      logs = { where: logWhere, parts: logParts };
      let k = 0;
      for (let r = this.tLogHead[t]!; r !== NONE; r = this.lNext[r]!, k++) {
        const c = this.chunks[this.lChunk[r]!]!;
        logWhere[k * 3] = c.buf;
        logWhere[k * 3 + 1] = this.lStart[r]!;
        logWhere[k * 3 + 2] = this.lLen[r]!;
        logParts[k] = c.parts[this.lPart[r]!]!;
      }
    }
    const trace = new AssembledTrace(hexOf(this.tId, t * 4), where, parts, logs, {
      reason,
      hasRoot: this.tRoot[t]! >= 0,
      firstSeenMs: this.tFirst[t]! + this.epoch,
      completedMs: now + this.epoch,
      wireBytes: this.tWire[t]!,
    });
    this.remember(t);
    this.dropTrace(t);
    this.counters.tracesCompleted[reason]++;
    try {
      this.next.consume(trace);
    } catch (err) {
      // The next stage refusing or failing must never stop assembly of other traces; it counts
      // its own refusals, this counts what got here.
      this.counters.consumerErrors++;
      this.log.warn('the next stage refused a completed trace', { traceId: trace.traceId, err: errorFields(err) });
    }
  }

  private evict(): void {
    while (this.oldest !== NONE && this.bufferedBytes > this.opts.maxBytes) {
      const t = this.oldest;
      this.counters.tracesEvicted++;
      this.counters.spansEvicted += this.tCount[t]!;
      this.counters.logsEvicted += this.tLogCount[t]!;
      this.remember(t);
      this.dropTrace(t);
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
