// Host side of the code-scorer sandbox: a small pool of worker threads, each running QuickJS
// (worker.ts), one job at a time per worker. Code scorers never run on the main event
// loop, so a runaway scorer cannot stall the OTLP receivers.
//
// Limits, in two layers. Normally the interrupt handler inside QuickJS stops a call that has
// used `timeoutMs` of the worker thread's CPU time (not wall time: a call descheduled on a busy
// machine keeps its budget), and the heap limit stops one that allocates too much. The backstop
// here terminates and replaces a worker that stopped answering (native code that never reaches
// an interrupt check, a wasm abort): one whose job has used `hardDeadlineMs` of CPU time (read
// from outside the thread, see checkDeadline), or has not answered within
// HARD_DEADLINE_WALL_FACTOR times that in wall time whatever its CPU use. A legitimate call
// uses at most `timeoutMs` of CPU, so only the wall ceiling could ever stop one — at the
// defaults 30 s of wall time for a call of at most 1 s of CPU, i.e. on a machine giving the
// thread less than a thirtieth of a core.
//
// Scheduling is fair between scorers (fair-queue.ts). Each scorer (SandboxJob.key: experiment
// + name) has its own queue; a free worker goes to the waiting scorer that has used the least
// worker CPU time, a scorer that starts waiting joins level with the least-served active one
// (idling banks no credit), and with W ≥ 2 workers no scorer starts a call on its last free
// worker while another scorer has a call waiting. What that guarantees against a runaway
// scorer R (every call runs into its limit):
//  - a scorer that starts waiting while R is busy has its first call started as soon as one
//    of R's running calls ends — each within `timeoutMs` of CPU time, or at the backstop —
//    never after R's queued calls; after that the workers are shared by CPU time, so a scorer
//    whose calls use a hundredth of the limit runs about a hundred calls for each of R's;
//  - with W ≥ 2, R never takes the last free worker while another scorer has a call waiting,
//    so once one of R's running calls has ended the others always have a worker. With W = 1
//    there is no such reserve: the other scorer's call waits for R's running call, then goes
//    first.
// These are guarantees of order and CPU time, not of wall time: each call's wall time depends
// on the machine's load, and a call may also wait for other well-behaved scorers' calls.
import { Worker } from 'node:worker_threads';
import type { ErrorCode } from '../../util/index.ts';
import { FairQueue } from './fair-queue.ts';
import type { WorkerInit, WorkerJob, WorkerReady, WorkerResult } from './worker.ts';

/** `scoring.sandbox`. */
export interface SandboxOptions {
  /** Budget of one code-scorer call in the worker thread's CPU time (the interrupt handler's limit). */
  timeoutMs?: number;
  /** Heap limit of the scorer's JavaScript runtime. */
  memoryBytes?: number;
  /** Worker threads in the pool (default 2). */
  workers?: number;
  /**
   * The backstop when the interrupt handler cannot fire: a worker whose job has used this much
   * CPU time, or has not answered within HARD_DEADLINE_WALL_FACTOR times this much wall time,
   * is terminated and replaced (default hardDeadlineFor(timeoutMs)).
   */
  hardDeadlineMs?: number;
  /** Largest JSON a scorer may return (default 1 MiB). */
  maxResultBytes?: number;
}

export const SANDBOX_DEFAULTS = {
  timeoutMs: 1000,
  memoryBytes: 64 * 1024 * 1024,
  workers: 2,
  maxResultBytes: 1024 * 1024,
} as const;

/**
 * The default backstop for a call budget: twice the budget plus a second of CPU time. Well past
 * where the interrupt handler stops a call (it checks about every 0.2 ms of execution), so only
 * a worker stuck outside QuickJS's checks reaches it.
 */
export function hardDeadlineFor(timeoutMs: number): number {
  return 2 * timeoutMs + 1000;
}

/**
 * The wall-clock ceiling is this many times hardDeadlineMs. It catches a worker that stopped
 * answering without using CPU time. A legitimate call (at most timeoutMs of CPU time) reaches
 * it only if its thread got less than a twentieth of a core all along (a thirtieth at the
 * default budget of 1 s): on a machine that loaded the call is better reported as a TIMEOUT.
 */
export const HARD_DEADLINE_WALL_FACTOR = 10;

export interface SandboxJob {
  /**
   * The scorer this call belongs to (experiment + name): calls are scheduled fairly between
   * keys. Calls without a key share one queue.
   */
  key?: string;
  /**
   * Whose kept context the call runs in: one per scorer version (experiment, name, version), so
   * two scorers never share globals even when their sources are the same text. Calls without
   * one (tests, embedders calling the pool directly) keep a context per source text.
   */
  context?: string;
  source: string;
  ctxJson: string;
  /** Parsed lazily inside the sandbox on first access of ctx.trace; null = no trace. */
  traceJson: string | null;
}

/** Not configuration: hooks for tests, and the runtime a pool's workers run. */
export interface SandboxInternals {
  /** See WorkerInit.wallClockStepMs: the workers' wall clocks run fast. */
  wallClockStepMs?: number;
  /**
   * The worker each slot runs (default the QuickJS worker.ts). Any worker speaking worker.ts's
   * messages fits: python-worker.ts runs Python scorers under the same scheduling and limits.
   */
  workerUrl?: URL;
  /** How long a worker may take to load its runtime (default 30 s; Pyodide needs longer on a busy machine). */
  startupTimeoutMs?: number;
}

export type SandboxOutcome =
  | { ok: true; json: string }
  | { ok: false; code: ErrorCode; message: string };

export interface SandboxStats {
  workers: number;
  busy: number;
  queued: number;
  /** Workers replaced: terminated after a hard deadline, crashed, or recycled after an out-of-memory. */
  replaced: number;
}

interface Entry {
  job: SandboxJob;
  key: string;
  resolve: (o: SandboxOutcome) => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  settled: boolean;
}

interface Slot {
  worker: Worker | null;
  /** The worker has loaded QuickJS; until then a job's hard deadline has not started. */
  ready: boolean;
  entry: Entry | null;
  jobId: number;
  timer: ReturnType<typeof setTimeout> | null;
  lastError: unknown;
  /** The worker thread's CPU time (ms) as of its last message: the running job's baseline. */
  threadCpuMs: number;
  /**
   * Wall time the running job's hard deadline has waited: the sum of its timers' delays (each
   * fires no earlier than its delay, so this is a lower bound of the time passed).
   */
  waitedMs: number;
}

const MiB = 1024 * 1024;
/** A worker that has not loaded QuickJS after this long is given up on. */
const STARTUP_TIMEOUT_MS = 30_000;
/** The hard deadline's re-checks are at least this far apart (the thread's CPU clock is read each time). */
const MIN_RECHECK_MS = 10;

function workerUrl(): URL {
  // Sources run as .ts under type stripping; a compiled build has .js next to this file.
  return new URL(
    import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js',
    import.meta.url,
  );
}

export class SandboxPool {
  readonly timeoutMs: number;
  readonly memoryBytes: number;
  readonly hardDeadlineMs: number;
  readonly maxResultBytes: number;
  private readonly slots: Slot[];
  private readonly queue: FairQueue<Entry>;
  private readonly internals: SandboxInternals;
  private nextId = 1;
  private replacedCount = 0;
  private closed = false;
  private warmed = false;

  constructor(opts: SandboxOptions = {}, internals: SandboxInternals = {}) {
    this.timeoutMs = opts.timeoutMs ?? SANDBOX_DEFAULTS.timeoutMs;
    this.memoryBytes = opts.memoryBytes ?? SANDBOX_DEFAULTS.memoryBytes;
    this.hardDeadlineMs = opts.hardDeadlineMs ?? hardDeadlineFor(this.timeoutMs);
    this.maxResultBytes = opts.maxResultBytes ?? SANDBOX_DEFAULTS.maxResultBytes;
    this.internals = internals;
    const n = Math.max(1, Math.floor(opts.workers ?? SANDBOX_DEFAULTS.workers));
    this.queue = new FairQueue<Entry>(n);
    this.slots = Array.from({ length: n }, () => ({
      worker: null,
      ready: false,
      entry: null,
      jobId: 0,
      timer: null,
      lastError: undefined,
      threadCpuMs: 0,
      waitedMs: 0,
    }));
  }

  /** Runs one scorer call. Resolves with the outcome; rejects only when the signal aborts or the pool is closed. */
  run(job: SandboxJob, signal?: AbortSignal): Promise<SandboxOutcome> {
    if (this.closed) return Promise.reject(new Error('sandbox pool is closed'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const entry: Entry = {
        job,
        key: job.key ?? '',
        resolve,
        reject,
        signal,
        onAbort: undefined,
        settled: false,
      };
      if (signal) {
        // An aborted caller stops waiting; a job already running finishes (bounded by its
        // deadline) and its result is discarded.
        entry.onAbort = () => {
          this.queue.remove(entry.key, entry);
          this.settle(entry, () => reject(signal.reason));
        };
        signal.addEventListener('abort', entry.onAbort, { once: true });
      }
      this.queue.push(entry.key, entry);
      this.pump();
    });
  }

  stats(): SandboxStats {
    return {
      workers: this.slots.filter((s) => s.worker !== null).length,
      busy: this.slots.filter((s) => s.entry !== null).length,
      queued: this.queue.size,
      replaced: this.replacedCount,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new Error('sandbox pool is closed');
    for (const e of this.queue.drain()) this.settle(e, () => e.reject(err));
    const exits: Promise<unknown>[] = [];
    for (const slot of this.slots) {
      if (slot.timer) clearTimeout(slot.timer);
      slot.timer = null;
      const entry = slot.entry;
      slot.entry = null;
      if (entry) this.settle(entry, () => entry.reject(err));
      const w = slot.worker;
      slot.worker = null;
      if (w) exits.push(w.terminate());
    }
    await Promise.allSettled(exits);
  }

  private settle(entry: Entry, fn: () => void): void {
    if (entry.settled) return;
    entry.settled = true;
    if (entry.signal && entry.onAbort) entry.signal.removeEventListener('abort', entry.onAbort);
    fn();
  }

  private pump(): void {
    if (this.closed) return;
    if (this.queue.size > 0 && !this.warmed) {
      // Once code scorers are in use, start every worker, so that a second job does not pay
      // a worker's start-up while the first one runs.
      this.warmed = true;
      for (const slot of this.slots) {
        if (slot.worker === null) {
          slot.ready = false;
          slot.worker = this.spawn(slot);
        }
      }
    }
    for (const slot of this.slots) {
      if (slot.entry !== null) continue;
      let next = this.queue.next();
      // Entries whose caller gave up leave the queue on abort, so this is only a safeguard.
      while (next?.item.settled) {
        this.queue.done(next.key, 0);
        next = this.queue.next();
      }
      if (!next) return;
      this.dispatch(slot, next.item);
    }
  }

  private spawn(slot: Slot): Worker {
    const heapMb = Math.max(64, Math.ceil((2 * this.memoryBytes) / MiB));
    const init: WorkerInit = { memoryBytes: this.memoryBytes };
    if (this.internals.wallClockStepMs) init.wallClockStepMs = this.internals.wallClockStepMs;
    slot.threadCpuMs = 0; // a new thread's clock
    const w = new Worker(this.internals.workerUrl ?? workerUrl(), {
      workerData: init,
      // The wasm heap is outside V8's heap; these bound the JSON strings passing through.
      resourceLimits: { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: 16 },
      stdout: false,
      stderr: false,
    });
    w.unref();
    w.on('message', (msg: WorkerResult | WorkerReady) => {
      if (slot.worker !== w) return;
      const cpuMs = msg.threadCpuMs - slot.threadCpuMs;
      slot.threadCpuMs = msg.threadCpuMs;
      if ('ready' in msg) {
        slot.ready = true;
        if (slot.entry !== null) this.startDeadline(slot);
        return;
      }
      const reply = msg;
      if (slot.entry === null || reply.id !== slot.jobId) return;
      if (reply.recycle) {
        // The worker exits after this reply: take it out of the slot before the next dispatch.
        slot.worker = null;
        this.replacedCount++;
      }
      this.finish(
        slot,
        reply.ok ? { ok: true, json: reply.json } : { ok: false, code: reply.code, message: reply.message },
        cpuMs,
      );
    });
    w.on('error', (e) => {
      if (slot.worker === w) slot.lastError = e;
    });
    w.on('exit', (code) => {
      if (slot.worker !== w) return; // terminated on purpose, already replaced
      slot.worker = null;
      this.replacedCount++;
      if (slot.entry !== null) {
        const e = slot.lastError as { code?: string; message?: string } | undefined;
        const oom = e?.code === 'ERR_WORKER_OUT_OF_MEMORY';
        this.finish(
          slot,
          oom
            ? {
                ok: false,
                code: 'OUT_OF_MEMORY',
                message: 'the sandbox worker ran out of memory and was replaced',
              }
            : {
                ok: false,
                code: 'SANDBOX_CRASHED',
                message: `the sandbox worker exited (code ${code}${e?.message ? `: ${e.message}` : ''}) and was replaced`,
              },
          // What it used is unknown: charge the whole budget.
          this.timeoutMs,
        );
      }
      slot.lastError = undefined;
    });
    return w;
  }

  private dispatch(slot: Slot, entry: Entry): void {
    if (slot.worker === null) {
      slot.ready = false;
      slot.worker = this.spawn(slot);
    }
    slot.entry = entry;
    slot.jobId = this.nextId++;
    const msg: WorkerJob = {
      id: slot.jobId,
      context: entry.job.context ?? `source\u0000${entry.job.source}`,
      source: entry.job.source,
      ctxJson: entry.job.ctxJson,
      traceJson: entry.job.traceJson,
      timeoutMs: this.timeoutMs,
      memoryBytes: this.memoryBytes,
      maxResultBytes: this.maxResultBytes,
    };
    slot.worker.postMessage(msg);
    if (slot.ready) this.startDeadline(slot);
    else slot.timer = setTimeout(() => this.hardDeadline(slot, 'startup', 0), this.internals.startupTimeoutMs ?? STARTUP_TIMEOUT_MS);
  }

  private startDeadline(slot: Slot): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.waitedMs = 0;
    // The thread cannot have used more CPU time than wall time has passed: no need to look
    // before hardDeadlineMs of wall time.
    this.armDeadline(slot, this.hardDeadlineMs);
  }

  private armDeadline(slot: Slot, delayMs: number): void {
    const jobId = slot.jobId;
    slot.waitedMs += delayMs;
    slot.timer = setTimeout(() => void this.checkDeadline(slot, jobId), delayMs);
  }

  /**
   * The backstop's check: the job's CPU time is read from outside the worker thread (answered
   * even while the thread is stuck in a loop), relative to the CPU time the thread reported
   * before the job. A job below its CPU allowance was only descheduled: look again once it could
   * have used the rest, up to the wall-clock ceiling.
   */
  private async checkDeadline(slot: Slot, jobId: number): Promise<void> {
    slot.timer = null;
    const w = slot.worker;
    if (w === null || slot.jobId !== jobId || slot.entry === null) return;
    const wallMs = slot.waitedMs;
    let cpuMs = wallMs; // without worker.cpuUsage (Node < 24.6), wall time is all there is
    if (typeof w.cpuUsage === 'function') {
      try {
        const u = await w.cpuUsage();
        cpuMs = (u.user + u.system) / 1000 - slot.threadCpuMs;
      } catch {
        return; // the worker is gone: its exit event settles the job
      }
      // It answered, crashed or was replaced while we asked.
      if (slot.worker !== w || slot.jobId !== jobId || slot.entry === null) return;
    }
    const wallCeilingMs = this.hardDeadlineMs * HARD_DEADLINE_WALL_FACTOR;
    if (cpuMs >= this.hardDeadlineMs || wallMs >= wallCeilingMs) {
      this.hardDeadline(slot, 'job', cpuMs);
      return;
    }
    // Whole milliseconds, never past the ceiling, so that the waits add up to it exactly.
    const left = wallCeilingMs - wallMs;
    const again = Math.ceil(Math.min(this.hardDeadlineMs - cpuMs, left));
    this.armDeadline(slot, Math.max(Math.min(MIN_RECHECK_MS, left), again));
  }

  private hardDeadline(slot: Slot, phase: 'startup' | 'job', cpuMs: number): void {
    slot.timer = null;
    const w = slot.worker;
    slot.worker = null;
    if (w) {
      this.replacedCount++;
      void w.terminate();
    }
    const wallMs = slot.waitedMs;
    this.finish(
      slot,
      phase === 'job'
        ? {
            ok: false,
            code: 'TIMEOUT',
            message:
              cpuMs >= this.hardDeadlineMs
                ? `the scorer did not stop within the hard deadline of ${this.hardDeadlineMs} ms of CPU time; its worker was terminated and replaced`
                : `the scorer did not answer within the hard deadline of ${wallMs} ms of wall time (having used ${Math.round(cpuMs)} ms of CPU time); its worker was terminated and replaced`,
          }
        : {
            ok: false,
            code: 'SANDBOX_CRASHED',
            message: `the sandbox worker did not start within ${this.internals.startupTimeoutMs ?? STARTUP_TIMEOUT_MS} ms`,
          },
      cpuMs,
    );
  }

  private finish(slot: Slot, outcome: SandboxOutcome, cpuMs: number): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    const entry = slot.entry;
    slot.entry = null;
    if (entry) {
      this.queue.done(entry.key, cpuMs);
      this.settle(entry, () => entry.resolve(outcome));
    }
    this.pump();
  }
}
