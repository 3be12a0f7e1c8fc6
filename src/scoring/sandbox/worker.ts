// Worker-thread side of the code-scorer sandbox. QuickJS (wasm) with a heap limit, a stack
// limit and an interrupt handler at the CPU deadline, and no host functions at all: the scorer
// sees only the ECMAScript built-ins and its `ctx`. The result leaves the sandbox as one JSON
// string built inside it; the host validates it.
//
// The per-call limit is this thread's own CPU time, never wall time: on a busy machine the
// thread may be descheduled for long stretches, and a scorer must not be stopped for time it
// did not use (compile.ts checks sources the same way).
//
// Runs under Node's type stripping (no imports from the rest of the project but the leaf
// thread-clock.ts, so the worker starts fast and a broken sibling module cannot take it down).
import { parentPort, workerData } from 'node:worker_threads';
import {
  newQuickJSWASMModuleFromVariant,
  newVariant,
  type QuickJSContext,
  type QuickJSHandle,
  RELEASE_SYNC,
} from 'quickjs-emscripten';
import { raceWallClock, threadCpuMs } from './thread-clock.ts';

/** Sent once, when the worker can take jobs. */
export interface WorkerReady {
  ready: true;
  /** CPU time this thread has used so far (loading QuickJS), in ms: the host's baseline. */
  threadCpuMs: number;
}

export interface WorkerInit {
  /** The heap limit of every job this worker will run (sizes the wasm memory cap). */
  memoryBytes: number;
  /**
   * Tests only: every reading of this thread's wall clock (Date.now, performance.now, and so
   * the scorer's own Date.now) is this much later than the one before, as on a machine so
   * loaded that the thread is descheduled between any two readings. A limit that measured wall
   * time would stop every scorer at its first check; one that measures CPU time does not.
   */
  wallClockStepMs?: number;
}

export interface WorkerJob {
  id: number;
  /** The kept context this job runs in (SandboxJob.context): one per scorer version. */
  context: string;
  source: string;
  ctxJson: string;
  traceJson: string | null;
  timeoutMs: number;
  memoryBytes: number;
  maxResultBytes: number;
}

export type WorkerReply = (
  | { id: number; ok: true; json: string }
  | {
      id: number;
      ok: false;
      code: 'CODE_SCORER_ERROR' | 'CODE_SCORER_INVALID_RESULT' | 'TIMEOUT' | 'OUT_OF_MEMORY';
      message: string;
    }
) & {
  /** The worker exits right after this reply; the host must not send it another job. */
  recycle?: boolean;
};

/** What the worker posts back: the reply, and the thread's CPU clock when it was sent. */
export type WorkerResult = WorkerReply & {
  /**
   * CPU time this thread has used in all, in ms. The difference from the previous message is
   * what this job cost (the pool's fair-share accounting); it is also the baseline of the next
   * job's hard deadline.
   */
  threadCpuMs: number;
};

const STACK_BYTES = 512 * 1024;

// Builds ctx inside the sandbox; `trace` is parsed on first access only, since most scorers
// never read it and it is by far the largest part.
const BOOT = `(function (ctxJson, traceJson) {
  var ctx = JSON.parse(ctxJson);
  var trace = null, parsed = false;
  Object.defineProperty(ctx, 'trace', {
    enumerable: true, configurable: true,
    get: function () { if (!parsed) { trace = traceJson === null ? null : JSON.parse(traceJson); parsed = true; } return trace; },
    set: function (v) { trace = v; parsed = true; }
  });
  return ctx;
})`;

// Non-finite numbers and undefined would silently become null in JSON; tag them so the host
// can report them precisely. BigInts are converted instead of making stringify throw.
const SERIALISE = `(function (v) {
  return JSON.stringify({ v: v }, function (k, x) {
    if (typeof x === 'number' && !isFinite(x)) return { __scorecarNonFinite: String(x) };
    if (typeof x === 'bigint') return x.toString();
    if (x === undefined && k === 'v' && this && Object.keys(this).length === 1) return { __scorecarUndefined: true };
    return x;
  });
})`;

const WASM_PAGE = 64 * 1024;
/** The QuickJS build's own initial memory (16 MiB); the imported memory must be at least that. */
const INITIAL_PAGES = 256;
const MAX_PAGES = 32_768; // 2 GiB, the build's ceiling

// QuickJS's heap limit does not count ArrayBuffer contents, so the wasm memory itself gets a
// hard cap: the module's base plus twice the heap limit. Past it, allocations fail inside
// QuickJS and surface as "out of memory" like any other.
const init = (workerData ?? {}) as Partial<WorkerInit>;
if (init.wallClockStepMs) raceWallClock(init.wallClockStepMs);
const capPages = Math.min(
  MAX_PAGES,
  INITIAL_PAGES + Math.ceil((2 * (init.memoryBytes ?? 64 * 1024 * 1024)) / WASM_PAGE),
);
// The project compiles without the DOM lib, which is where TypeScript declares WebAssembly.
const Wasm = (
  globalThis as unknown as {
    WebAssembly: {
      Memory: new (d: { initial: number; maximum: number }) => { readonly buffer: ArrayBuffer };
    };
  }
).WebAssembly;
const wasmMemory = new Wasm.Memory({ initial: INITIAL_PAGES, maximum: capPages });
const QuickJS = await newQuickJSWASMModuleFromVariant(newVariant(RELEASE_SYNC, { wasmMemory }));
// Wasm memory only grows. A job that grew it by more than half its heap limit gets the worker
// recycled, so a burst of allocation does not stay resident in every worker for good.
const baselineWasmBytes = QuickJS.getWasmMemory().buffer.byteLength;

/**
 * The thread's CPU time at its last message to the host. A job's budget counts from there, not
 * from its own start: in between the thread only waits (using no CPU time) and then receives
 * this job's message, which is the job's own cost. One reading per job instead of two keeps
 * the fast path as cheap as before (the clock is a system call, not a vDSO read).
 */
let lastCpuMs = 0;

function describe(vm: QuickJSContext, err: QuickJSHandle): { name: string; message: string; stack: string } {
  try {
    const d: unknown = vm.dump(err);
    if (d && typeof d === 'object') {
      const o = d as { name?: unknown; message?: unknown; stack?: unknown };
      return {
        name: typeof o.name === 'string' ? o.name : 'Error',
        message: typeof o.message === 'string' ? o.message : JSON.stringify(d).slice(0, 500),
        stack: typeof o.stack === 'string' ? o.stack : '',
      };
    }
    return { name: 'thrown value', message: String(d).slice(0, 500), stack: '' };
  } catch {
    return { name: 'Error', message: 'unreadable error', stack: '' };
  }
}

function nearMemoryCap(): boolean {
  return wasmMemory.buffer.byteLength >= (capPages - 16) * WASM_PAGE;
}

function failure(
  id: number,
  job: WorkerJob,
  vm: QuickJSContext,
  err: QuickJSHandle,
  what: string,
): WorkerReply {
  const e = describe(vm, err);
  // When even the error object cannot be allocated, QuickJS throws null.
  const unallocatable = e.name === 'thrown value' && e.message === 'null' && nearMemoryCap();
  if (e.name === 'InternalError' && e.message === 'interrupted') {
    return {
      id,
      ok: false,
      code: 'TIMEOUT',
      message: `the scorer exceeded its CPU time limit of ${job.timeoutMs} ms`,
    };
  }
  if (e.message === 'out of memory' || unallocatable) {
    return {
      id,
      ok: false,
      code: 'OUT_OF_MEMORY',
      message: `the scorer exceeded its memory limit of ${job.memoryBytes} bytes`,
    };
  }
  const where = e.stack
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .slice(0, 3)
    .join(' ← ');
  return {
    id,
    ok: false,
    code: 'CODE_SCORER_ERROR',
    message: `${what}: ${e.name}: ${e.message.slice(0, 1000)}${where ? ` (${where})` : ''}`,
  };
}

/**
 * Runs one job. `recycle` says the worker must be replaced: the wasm module may be corrupt, or
 * a scorer grew its memory a lot.
 */
// One runtime per worker, and one context per scorer (experiment, name, version: the job's
// `context` key, never its source text, so two experiments registering the same source do not
// share globals), kept between calls: the scorer, the ctx builder and the serialiser are
// compiled once, so a call costs a JSON parse, the scorer itself and a JSON stringify. Scorers
// stay isolated from each other (separate contexts, separate globals); a scorer's own globals
// may persist from one call to the next, as a Python scorer's module globals do. Any failure discards the context, and a timeout or
// out-of-memory the whole runtime, so the next call starts clean. The interrupt handler reads
// the current job's deadline, in this thread's CPU time.
interface Prepared {
  /** The source it was compiled from: a context key that comes back with another is recompiled. */
  source: string;
  vm: QuickJSContext;
  fn: QuickJSHandle;
  boot: QuickJSHandle;
  ser: QuickJSHandle;
}

const MAX_CONTEXTS = 32;
let runtime: ReturnType<typeof QuickJS.newRuntime> | undefined;
let runtimeMemoryBytes = 0;
/** The current job's limit: the thread CPU time (ms) past which the scorer is interrupted. */
let deadline = 0;
const prepared = new Map<string, Prepared>();

function disposePrepared(p: Prepared): void {
  for (const h of [p.ser, p.boot, p.fn]) if (h.alive) h.dispose();
  p.vm.dispose();
}

function disposeRuntime(): void {
  for (const p of prepared.values()) disposePrepared(p);
  prepared.clear();
  runtime?.dispose();
  runtime = undefined;
}

function getRuntime(memoryBytes: number): ReturnType<typeof QuickJS.newRuntime> {
  if (!runtime || runtimeMemoryBytes !== memoryBytes) {
    disposeRuntime();
    runtime = QuickJS.newRuntime();
    runtime.setMemoryLimit(memoryBytes);
    runtime.setMaxStackSize(STACK_BYTES);
    runtime.setInterruptHandler(() => threadCpuMs() > deadline);
    runtimeMemoryBytes = memoryBytes;
  }
  return runtime;
}

/** The compiled scorer for this source, or the failure reply when it does not compile. */
function prepare(job: WorkerJob, rt: ReturnType<typeof QuickJS.newRuntime>): Prepared | WorkerReply {
  const cached = prepared.get(job.context);
  if (cached && cached.source === job.source) {
    // Most recently used last, so eviction below drops the least recently used.
    prepared.delete(job.context);
    prepared.set(job.context, cached);
    return cached;
  }
  if (cached) {
    prepared.delete(job.context);
    disposePrepared(cached);
  }
  const vm = rt.newContext();
  const fail = (err: QuickJSHandle, what: string): WorkerReply => {
    const r = failure(job.id, job, vm, err, what);
    err.dispose();
    vm.dispose();
    return r;
  };
  const compiled = vm.evalCode(`(${job.source.replace(/;\s*$/, '')}\n)`, 'scorer.js');
  if (compiled.error) return fail(compiled.error, 'scorer source');
  const fn = compiled.value;
  if (vm.typeof(fn) !== 'function') {
    const kind = vm.typeof(fn);
    fn.dispose();
    vm.dispose();
    return { id: job.id, ok: false, code: 'CODE_SCORER_ERROR', message: `scorer source is a ${kind}, not a function expression` };
  }
  const boot = vm.evalCode(BOOT, 'scorecar-boot.js');
  if (boot.error) {
    fn.dispose();
    return fail(boot.error, 'building ctx');
  }
  const ser = vm.evalCode(SERIALISE, 'scorecar-serialise.js');
  if (ser.error) {
    fn.dispose();
    boot.value.dispose();
    return fail(ser.error, 'serialising the result');
  }
  const p: Prepared = { source: job.source, vm, fn, boot: boot.value, ser: ser.value };
  prepared.set(job.context, p);
  if (prepared.size > MAX_CONTEXTS) {
    const [oldest, old] = prepared.entries().next().value as [string, Prepared];
    prepared.delete(oldest);
    disposePrepared(old);
  }
  return p;
}

function runJob(job: WorkerJob): { reply: WorkerReply; recycle: boolean } {
  const { id } = job;
  let recycle = false;
  let reply: WorkerReply;
  let p: Prepared | undefined;
  const handles: QuickJSHandle[] = [];
  try {
    const rt = getRuntime(job.memoryBytes);
    // Compiling a new source counts against the call's budget, as running it does.
    deadline = lastCpuMs + job.timeoutMs;
    const got = prepare(job, rt);
    if ('vm' in got) {
      p = got;
      const keep = (h: QuickJSHandle): QuickJSHandle => {
        handles.push(h);
        return h;
      };
      reply = evaluate(job, p, keep, () => rt.executePendingJobs(-1));
    } else reply = got;
  } catch (e) {
    reply = {
      id,
      ok: false,
      code: 'CODE_SCORER_ERROR',
      message: `sandbox failure: ${e instanceof Error ? e.message : String(e)}`,
    };
  }
  recycle = QuickJS.getWasmMemory().buffer.byteLength > baselineWasmBytes + job.memoryBytes / 2;
  try {
    for (let i = handles.length - 1; i >= 0; i--) if (handles[i]!.alive) handles[i]!.dispose();
    if (!reply.ok) {
      if (reply.code === 'TIMEOUT' || reply.code === 'OUT_OF_MEMORY') disposeRuntime();
      else if (p) {
        prepared.delete(job.context);
        disposePrepared(p);
      }
    }
  } catch {
    // A leaked object makes QuickJS abort in JS_FreeRuntime; the module is unusable afterwards.
    recycle = true;
  }
  return { reply, recycle };
}

function evaluate(
  job: WorkerJob,
  p: Prepared,
  keep: (h: QuickJSHandle) => QuickJSHandle,
  drainJobs: () => { error?: QuickJSHandle; dispose?: () => void },
): WorkerReply {
  const { id } = job;
  const { vm, fn } = p;
  const ctxArg = keep(vm.newString(job.ctxJson));
  const traceArg = job.traceJson === null ? vm.null : keep(vm.newString(job.traceJson));
  const ctxRes = vm.callFunction(p.boot, vm.undefined, ctxArg, traceArg);
  if (ctxRes.error) return failure(id, job, vm, keep(ctxRes.error), 'building ctx');
  const ctx = keep(ctxRes.value);

  const called = vm.callFunction(fn, vm.undefined, ctx);
  if (called.error) return failure(id, job, vm, keep(called.error), 'scorer threw');
  const ret = keep(called.value);
  // Async scorers: run the job queue to completion (bounded by the interrupt handler).
  const drained = drainJobs();
  if (drained.error) return failure(id, job, vm, keep(drained.error), 'scorer threw');
  const state = vm.getPromiseState(ret);
  let value: QuickJSHandle;
  if (state.type === 'pending') {
    return {
      id,
      ok: false,
      code: 'CODE_SCORER_ERROR',
      message: 'scorer returned a promise that never settles (the sandbox has no timers or I/O)',
    };
  } else if (state.type === 'rejected') {
    return failure(id, job, vm, keep(state.error), 'scorer rejected');
  } else {
    value = keep(state.value);
  }

  const out = vm.callFunction(p.ser, vm.undefined, value);
  if (out.error) {
    const f = failure(id, job, vm, keep(out.error), 'serialising the result');
    return f.ok || f.code !== 'CODE_SCORER_ERROR' ? f : { ...f, code: 'CODE_SCORER_INVALID_RESULT' };
  }
  const outH = keep(out.value);
  if (vm.typeof(outH) !== 'string') {
    return {
      id,
      ok: false,
      code: 'CODE_SCORER_INVALID_RESULT',
      message: 'the result cannot be represented as JSON',
    };
  }
  const json = vm.getString(outH);
  if (json.length > job.maxResultBytes) {
    return {
      id,
      ok: false,
      code: 'CODE_SCORER_INVALID_RESULT',
      message: `the result is larger than ${job.maxResultBytes} bytes`,
    };
  }
  return { id, ok: true, json };
}

const port = parentPort;
if (port) {
  // Start-up (wasm compile and instantiation) is not part of any job's deadline.
  lastCpuMs = threadCpuMs();
  const ready: WorkerReady = { ready: true, threadCpuMs: lastCpuMs };
  port.postMessage(ready);
  port.on('message', (job: WorkerJob) => {
    const { reply, recycle } = runJob(job);
    lastCpuMs = threadCpuMs();
    const result = reply as WorkerResult;
    result.threadCpuMs = lastCpuMs;
    if (recycle) result.recycle = true;
    port.postMessage(result);
    if (recycle) process.exit(0);
  });
}
