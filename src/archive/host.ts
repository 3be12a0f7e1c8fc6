// The archive writer's message protocol: what the main thread (archiver.ts) asks of the writer
// thread (worker.ts) and what comes back. `WriterHost` is the writer-thread side; it is plain
// code, so tests drive it in-process.
import type { Assessment } from '../assessments/index.ts';
import { errorMessage, isScorecarError, type Logger } from '../util/index.ts';
import type { PackedTrace } from './rows.ts';
import { type ArchiveStatus, ArchiveWriter, type FlushReport, type SkipReason, type WriterOptions } from './writer.ts';

export interface HostOptions extends WriterOptions {
  retentionDays: number;
  vacuumRetainMs: number;
  /** Longest run of row building per turn of the writer's event loop (default 20 ms). */
  sliceMs?: number;
}

export type Request =
  | { op: 'open'; experimentId: string; tablePath: string }
  | { op: 'close'; experimentId: string }
  | { op: 'flush' }
  | { op: 'status' }
  | { op: 'maintain' };

export type Item =
  | { op: 'trace'; experimentId: string; packed: PackedTrace; est: number }
  | { op: 'assessment'; assessment: Assessment; est: number };

/** An answer to a Request: a value or an error with its code. */
export type Reply = { ok: true; value: unknown } | { ok: false; code: string; message: string };

/** What the writer reports after work the main thread did not ask for (timed commits). */
export interface Report {
  flushes: FlushReport[];
  /** Items not buffered, by experiment, table and reason, with their memory estimates. */
  skipped: Array<{ experimentId: string; table: 'traces' | 'assessments'; reason: SkipReason; count: number; est: number }>;
}

export class WriterHost {
  readonly writer: ArchiveWriter;
  private readonly o: HostOptions;
  private skipped = new Map<string, Report['skipped'][number]>();
  private pendingFlushes: FlushReport[] = [];
  private busy: Promise<unknown> = Promise.resolve();
  private queue: Item[] = [];
  private head = 0;
  private scheduled = false;
  private idle: Array<() => void> = [];
  private readonly sliceMs: number;

  constructor(o: HostOptions, log?: Logger) {
    this.o = o;
    this.sliceMs = o.sliceMs ?? 20;
    this.writer = new ArchiveWriter({ ...o, ...(log ? { log } : {}) });
  }

  /**
   * Items wait in a queue and are turned into rows in slices of at most `sliceMs` per turn of
   * the event loop (a trace's row needs its GenAI view): a burst of items must not keep the
   * commit timer from firing, or rows would pile up uncommitted behind the backlog.
   */
  item(it: Item): void {
    this.queue.push(it);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  /** Items received and not yet turned into rows. */
  get backlog(): number {
    return this.queue.length - this.head;
  }

  private drain(): void {
    this.scheduled = false;
    const until = performance.now() + this.sliceMs;
    while (this.head < this.queue.length) {
      const it = this.queue[this.head]!;
      this.queue[this.head++] = undefined as unknown as Item;
      this.buffer(it);
      if (performance.now() >= until) break;
    }
    if (this.head >= this.queue.length) {
      this.queue = [];
      this.head = 0;
      const w = this.idle;
      this.idle = [];
      for (const f of w) f();
    } else {
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  /** Resolves once every item received so far is a buffered row (or skipped). */
  whenDrained(): Promise<void> {
    if (this.backlog === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  private buffer(it: Item): void {
    const reason =
      it.op === 'trace' ? this.writer.addTrace(it.experimentId, it.packed, it.est) : this.writer.addAssessment(it.assessment, it.est);
    if (reason === undefined) return;
    const experimentId = it.op === 'trace' ? it.experimentId : it.assessment.experimentId;
    const table = it.op === 'trace' ? 'traces' : 'assessments';
    const key = `${experimentId}\u0000${table}\u0000${reason}`;
    const s = this.skipped.get(key) ?? { experimentId, table, reason, count: 0, est: 0 };
    s.count++;
    s.est += it.est;
    this.skipped.set(key, s);
  }

  /** Requests run one at a time (a flush never interleaves with an open or close). */
  request(req: Request): Promise<Reply> {
    const run = async (): Promise<Reply> => {
      try {
        return { ok: true, value: await this.handle(req) };
      } catch (e) {
        return { ok: false, code: isScorecarError(e) ? e.code : 'INTERNAL', message: errorMessage(e) };
      }
    };
    const p = this.busy.then(run, run);
    this.busy = p;
    return p;
  }

  private async handle(req: Request): Promise<unknown> {
    switch (req.op) {
      case 'open':
        return this.writer.open(req.experimentId, req.tablePath);
      case 'close':
        await this.whenDrained();
        this.pendingFlushes.push(...(await this.writer.close(req.experimentId)));
        return null;
      case 'flush':
        await this.whenDrained();
        this.pendingFlushes.push(...(await this.writer.flush(true)));
        return null;
      case 'status':
        return [...this.writer.archives.values()].map((a) => this.writer.status(a)) satisfies ArchiveStatus[];
      case 'maintain':
        return this.writer.maintain(this.o.retentionDays, this.o.vacuumRetainMs);
    }
  }

  /** Commits what is due; resolves to what happened since the last report (undefined: nothing). */
  async tick(): Promise<Report | undefined> {
    // The results join the report inside the chain, so a request queued behind this tick (a
    // flush) reports them before it replies.
    const run = async (): Promise<void> => {
      this.pendingFlushes.push(...(await this.writer.flush(false)));
    };
    const p = this.busy.then(run, run);
    this.busy = p;
    await p;
    return this.takeReport();
  }

  /** What happened since the last report, or undefined when nothing did. */
  takeReport(): Report | undefined {
    if (this.pendingFlushes.length === 0 && this.skipped.size === 0) return undefined;
    const r: Report = { flushes: this.pendingFlushes, skipped: [...this.skipped.values()] };
    this.pendingFlushes = [];
    this.skipped = new Map();
    return r;
  }
}
