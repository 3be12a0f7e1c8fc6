// Worker-thread side of the Python scorer sandbox: CPython compiled to wasm (Pyodide, from its npm
// package: the runtime and the standard library ship in node_modules, nothing is downloaded), one
// interpreter per worker thread, loaded once. Speaks the JavaScript sandbox's protocol
// (worker.ts: WorkerInit / WorkerJob / WorkerReady / WorkerResult), so pool.ts schedules, limits
// and replaces these workers exactly as it does QuickJS ones.
//
// What a scorer can reach, and what closes it:
//  - the interpreter's in-memory file system only: no host directory is mounted, and mounting
//    one is disabled (FS.mount and Pyodide's mountNodeFS throw);
//  - no JavaScript: the `js` module is an empty object and `pyodide_js` is unregistered; the
//    harness (python-harness.py) also blocks importing them, ctypes, sockets, subprocess and more;
//  - and whatever JavaScript code it might still reach finds, after start-up, no module loading
//    (every import and require is refused by a resolve hook), no `require` global, no network
//    globals (fetch, WebSocket …) and a `process` without getBuiltinModule, binding, dlopen or env;
//  - CPU time: CPython's periodic signal check reads an "interrupt buffer"; ours answers SIGINT
//    once the call has used `timeoutMs` of this thread's CPU time (not wall time), so the call
//    ends in KeyboardInterrupt → TIMEOUT. Code that never reaches the check (one long C call)
//    is stopped by the pool's hard deadline, which terminates and replaces the worker;
//  - memory: the wasm memory may not grow past its size after start-up plus `memoryBytes`
//    (WebAssembly.Memory.prototype.grow refuses; malloc fails; Python raises MemoryError →
//    OUT_OF_MEMORY, and the worker is replaced since its heap may be left fragmented).
// Per-scorer isolation: each scorer version gets its own namespace and builtins; the worker is
// replaced after a call that ran out of time or memory (its interpreter may be inconsistent).
import { existsSync, readFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import { loadPyodide, type PyodideInterface } from 'pyodide';
import { raceWallClock, threadCpuMs } from './thread-clock.ts';
import type { WorkerInit, WorkerJob, WorkerReady, WorkerReply, WorkerResult } from './worker.ts';

const init = (workerData ?? {}) as Partial<WorkerInit>;
const port = parentPort;
if (!port) throw new Error('python-worker.ts runs as a worker thread');


// Tests: a thread so descheduled that every wall-clock reading jumps (see WorkerInit).
if (init.wallClockStepMs) raceWallClock(init.wallClockStepMs);

// WebAssembly is a global of every Node thread; the project's TypeScript lib has no typings for it.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(delta: number): number;
}
const WASM = (globalThis as unknown as { WebAssembly: { Memory: { prototype: WasmMemory } } }).WebAssembly;

// ---------------------------------------------------------------- memory cap
// The interpreter's memory grows through WebAssembly.Memory.prototype.grow (emscripten's
// resize_heap, which treats a throw as "no memory"). Until start-up is done there is no cap.
let memoryCapBytes = Number.POSITIVE_INFINITY;
let pyMemory: WasmMemory | undefined;
/** The interpreter's heap as of start-up: the memory it views is the one to cap. */
let bootHeap: ArrayBuffer | undefined;
const grow = WASM.Memory.prototype.grow;
WASM.Memory.prototype.grow = function (this: WasmMemory, delta: number): number {
  if (pyMemory === undefined && bootHeap !== undefined && this.buffer === bootHeap) pyMemory = this;
  if (this === pyMemory && this.buffer.byteLength + delta * 65536 > memoryCapBytes) {
    throw new RangeError('scorecar sandbox: memory limit reached');
  }
  return grow.call(this, delta);
};

// ---------------------------------------------------------------- CPU-time interrupt
// Read by CPython's periodic signal check (_Py_CheckEmscriptenSignals): [0] === 2 is SIGINT.
// Wall time is read first (cheap): a call cannot have used more CPU time than wall time.
let deadlineCpuMs = Number.POSITIVE_INFINITY;
let callStartCpuMs = 0;
let nextLookWall = Number.POSITIVE_INFINITY;
let timedOut = false;
const interrupt = {
  get 0(): number {
    if (deadlineCpuMs === Number.POSITIVE_INFINITY) return 0;
    const now = performance.now();
    if (now < nextLookWall) return 0;
    const cpu = threadCpuMs();
    if (cpu >= deadlineCpuMs) {
      timedOut = true;
      return 2;
    }
    nextLookWall = now + Math.max(1, deadlineCpuMs - cpu);
    return 0;
  },
  set 0(_v: number) {
    /* CPython clears the flag after reading it; ours is computed */
  },
};

let py: PyodideInterface;
let harness: {
  load(context: string, source: string, fn: string | null): void;
  call(context: string, ctxJson: string, traceJson: string | null): string;
  check(source: string, fn: string | null): string;
  forget(context: string): void;
};

function lockDown(): void {
  // Module loading: nothing may be imported or required from now on (dynamic import() from any
  // JavaScript a scorer might reach included). process.getBuiltinModule bypasses resolution, so
  // it goes too.
  registerHooks({
    resolve(specifier) {
      throw new Error(`module loading is disabled in the scorecar sandbox (${specifier})`);
    },
  });
  const p = process as unknown as Record<string, unknown>;
  for (const k of ['getBuiltinModule', 'binding', '_linkedBinding', 'dlopen', 'chdir', 'kill', 'setuid', 'setgid', '_kill']) {
    try {
      p[k] = undefined;
    } catch {
      /* non-writable: nothing to do */
    }
  }
  for (const k of Object.keys(process.env)) delete process.env[k];
  const g = globalThis as Record<string, unknown>;
  for (const k of ['require', 'fetch', 'WebSocket', 'EventSource', 'XMLHttpRequest', 'Request', 'Response', 'Headers', 'BroadcastChannel', 'Worker', 'navigator', 'loadPyodide']) {
    try {
      delete g[k];
    } catch {
      /* ignore */
    }
  }
  // The emscripten module (reachable from Pyodide's API object): no host file system, ever.
  const api = py as unknown as Record<string, unknown>;
  const mod = (api._module ?? {}) as { FS?: Record<string, unknown> };
  const refuse = (): never => {
    throw new Error('file system mounts are disabled in the scorecar sandbox');
  };
  if (mod.FS) {
    mod.FS.mount = refuse;
    const fss = mod.FS.filesystems as Record<string, unknown> | undefined;
    if (fss) for (const k of Object.keys(fss)) if (k !== 'MEMFS') fss[k] = undefined;
  }
  api.mountNodeFS = refuse;
  api.mountNativeFS = refuse;
  api.loadPackage = refuse;
  api.loadPackagesFromImports = refuse;
  api.pyimport = refuse;
  api.runPythonAsync = refuse;
}

async function boot(): Promise<void> {
  py = await loadPyodide({
      // The `js` module: an empty object instead of this thread's globals.
      jsglobals: Object.create(null) as object,
      env: { HOME: '/home/pyodide' },
      stdout: () => {},
      stderr: () => {},
      stdin: () => null,
      fullStdLib: false,
    } as Parameters<typeof loadPyodide>[0]);
  // The memory may be created inside the wasm module, out of reach: it is recognised by its
  // buffer (the one the interpreter's heap views) on its first growth.
  bootHeap = (py as unknown as { _module?: { HEAP8?: Int8Array } })._module?.HEAP8?.buffer as ArrayBuffer | undefined;
  py.setInterruptBuffer(interrupt as unknown as Int32Array);
  const source = readFileSync(harnessPath(), 'utf8');
  const ns = py.globals.get('dict')();
  py.runPython(source, { globals: ns, filename: '<scorecar-harness>' });
  harness = {
    load: ns.get('load'),
    call: ns.get('call'),
    check: ns.get('check'),
    forget: ns.get('forget'),
  };
  try {
    py.unregisterJsModule('pyodide_js');
  } catch {
    /* not registered under that name in this version */
  }
  py.runPython('import sys\nfor _k in ("js", "pyodide_js"): sys.modules.pop(_k, None)');
  lockDown();
  // The lock must hold: a worker that could still load modules never takes a job.
  let loaded = true;
  try {
    await import('node:child_process');
  } catch {
    loaded = false;
  }
  if (loaded || typeof (process as { getBuiltinModule?: unknown }).getBuiltinModule === 'function') {
    throw new Error('the Python sandbox could not disable module loading');
  }
}

/**
 * The harness sits next to this file in the sources; a compiled copy (dist/, where tsc copies no
 * .py file) reads it from the sources it was built from.
 */
function harnessPath(): URL {
  const here = new URL('./python-harness.py', import.meta.url);
  return existsSync(here) ? here : new URL('../../../src/scoring/sandbox/python-harness.py', import.meta.url);
}

/** Python's exception as (type, message), from the PythonError Pyodide throws. */
function pythonError(e: unknown): { type: string; message: string } {
  const err = e as { type?: string; message?: string };
  const text = String(err?.message ?? e);
  const type = typeof err?.type === 'string' ? err.type : 'Error';
  // The last line of the traceback is "Type: message".
  const lines = text.trimEnd().split('\n');
  const last = lines[lines.length - 1] ?? text;
  const tb = lines.filter((l) => /^\s+File "<scorer>"/.test(l)).pop();
  const where = tb ? ` (${tb.trim().replace(/^File "<scorer>", /, '')})` : '';
  return { type, message: `${last}${where}` };
}

let baselineBytes = 0;

function runJob(job: WorkerJob): { reply: WorkerReply; recycle: boolean } {
  const [kind, fn] = job.context.startsWith('check\u0000') ? ['check', job.context.slice(6)] : ['call', ''];
  if (kind === 'check') {
    const problem = harness.check(job.source, fn === '' ? null : fn);
    return { reply: { id: job.id, ok: true, json: JSON.stringify({ problem }) }, recycle: false };
  }
  memoryCapBytes = baselineBytes + job.memoryBytes;
  timedOut = false;
  callStartCpuMs = threadCpuMs();
  deadlineCpuMs = callStartCpuMs + job.timeoutMs;
  nextLookWall = performance.now() + job.timeoutMs;
  // The function to call travels after the context key: "<context>\u0001<function>".
  const sep = job.context.indexOf('\u0001');
  const context = sep >= 0 ? job.context.slice(0, sep) : job.context;
  const func = sep >= 0 ? job.context.slice(sep + 1) : '';
  try {
    harness.load(context, job.source, func === '' ? null : func);
    const json = harness.call(context, job.ctxJson, job.traceJson);
    if (json.length > job.maxResultBytes) {
      return {
        reply: { id: job.id, ok: false, code: 'CODE_SCORER_INVALID_RESULT', message: `the result is larger than ${job.maxResultBytes} bytes` },
        recycle: false,
      };
    }
    return { reply: { id: job.id, ok: true, json }, recycle: false };
  } catch (e) {
    const { type, message } = pythonError(e);
    if (timedOut || type === 'KeyboardInterrupt') {
      return { reply: { id: job.id, ok: false, code: 'TIMEOUT', message: `the scorer used more than ${job.timeoutMs} ms of CPU time` }, recycle: true };
    }
    if (type === 'MemoryError' || type === 'RecursionError' && /memory/i.test(message)) {
      return { reply: { id: job.id, ok: false, code: 'OUT_OF_MEMORY', message: `the scorer went over its memory limit (${message})` }, recycle: true };
    }
    const fatal = !(e as { type?: unknown })?.type;
    if (fatal) {
      // Not a Python exception: the interpreter itself failed (a refused host call, a wasm trap).
      return { reply: { id: job.id, ok: false, code: 'CODE_SCORER_ERROR', message: `the scorer stopped the interpreter: ${String((e as Error)?.message ?? e).split('\n')[0]}` }, recycle: true };
    }
    if (type === 'ScorerError') harness.forget(context);
    const code = message.startsWith('TypeError: the scorer must return') ? 'CODE_SCORER_INVALID_RESULT' : 'CODE_SCORER_ERROR';
    return { reply: { id: job.id, ok: false, code, message }, recycle: false };
  } finally {
    deadlineCpuMs = Number.POSITIVE_INFINITY;
    memoryCapBytes = Number.POSITIVE_INFINITY;
  }
}

await boot();
baselineBytes = bootHeap?.byteLength ?? 0;
let lastCpuMs = threadCpuMs();
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
