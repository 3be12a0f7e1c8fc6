// Registration-time check of a code scorer's source, in QuickJS (the same engine the sandbox
// runs). The check evaluates the source as an expression — for a function expression that
// creates a closure and runs nothing — in a fresh runtime with no host functions, a 16 MiB heap
// (48 MiB wasm memory cap) and a CPU-time budget, so a hostile source (a comma expression that
// loops or allocates) costs at most that once, at registration.
//
// The budget is this thread's CPU time, never wall time: on a busy machine a valid source must
// not be refused because the check was descheduled (it used to be a 100 ms wall-clock deadline).
// Running out of it is a TIMEOUT (retryable), never a definition error: the source was not
// shown to be wrong. QuickJS is loaded on first use, so importing this module costs nothing.
import type { QuickJSWASMModule } from 'quickjs-emscripten';
import { ScorecarError } from '../../util/index.ts';
import { threadCpuMs } from './thread-clock.ts';

const CHECK_MEMORY_BYTES = 16 * 1024 * 1024;
/** CPU time one check may use. Evaluating a function expression takes microseconds. */
export const CHECK_CPU_MS = 200;

let loading: Promise<QuickJSWASMModule> | undefined;

function quickjs(): Promise<QuickJSWASMModule> {
  loading ??= (async () => {
    const { newQuickJSWASMModuleFromVariant, newVariant, RELEASE_SYNC } = await import('quickjs-emscripten');
    // The heap limit does not cover ArrayBuffer contents: cap the wasm memory itself (16 MiB
    // base of the build + twice the heap limit). The project compiles without the DOM lib,
    // which is where TypeScript declares WebAssembly.
    const Wasm = (
      globalThis as unknown as {
        WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => { readonly buffer: ArrayBuffer } };
      }
    ).WebAssembly;
    const wasmMemory = new Wasm.Memory({ initial: 256, maximum: 256 + (2 * CHECK_MEMORY_BYTES) / 65_536 });
    return newQuickJSWASMModuleFromVariant(newVariant(RELEASE_SYNC, { wasmMemory }));
  })();
  return loading;
}


/** The expression the sandbox evaluates for a source (a trailing semicolon is tolerated). */
export function wrapSource(source: string): string {
  return `(${source.replace(/;\s*$/, '')}\n)`;
}

/**
 * undefined when the source is a function expression QuickJS accepts, else why not. Throws
 * TIMEOUT when evaluating it used up the CPU budget.
 */
export async function checkFunctionSource(source: string, cpuBudgetMs = CHECK_CPU_MS): Promise<string | undefined> {
  const QuickJS = await quickjs();
  const rt = QuickJS.newRuntime();
  rt.setMemoryLimit(CHECK_MEMORY_BYTES);
  rt.setMaxStackSize(256 * 1024);
  const deadline = threadCpuMs() + cpuBudgetMs;
  let interrupted = false;
  rt.setInterruptHandler(() => {
    interrupted = threadCpuMs() > deadline;
    return interrupted;
  });
  const vm = rt.newContext();
  let problem: string | undefined;
  try {
    const r = vm.evalCode(wrapSource(source), 'scorer.js');
    if (r.error) {
      let d: unknown;
      try {
        d = vm.dump(r.error);
      } finally {
        r.error.dispose();
      }
      const o = (d && typeof d === 'object' ? d : {}) as { name?: unknown; message?: unknown; lineNumber?: unknown };
      const name = typeof o.name === 'string' ? o.name : 'Error';
      const message = typeof o.message === 'string' ? o.message : String(d);
      if (interrupted) {
        throw new ScorecarError(
          'TIMEOUT',
          `checking the code scorer's source used more than ${cpuBudgetMs} ms of CPU time (does evaluating it run code?); retry, or register a plain function expression`,
        );
      }
      problem =
        name === 'SyntaxError'
          ? `does not compile: ${message}${typeof o.lineNumber === 'number' ? ` (line ${o.lineNumber})` : ''}`
          : `is not a plain function expression (evaluating it failed: ${name}: ${message})`;
    } else {
      const t = vm.typeof(r.value);
      r.value.dispose();
      if (t !== 'function') problem = `is not a function expression (it evaluates to a ${t})`;
    }
  } finally {
    vm.dispose();
    try {
      rt.dispose();
    } catch {
      // Every handle above is disposed; a failure here would be a QuickJS bug, not the source's.
    }
  }
  return problem;
}
