// Registration-time check of a code scorer's source, in QuickJS (the same engine the sandbox
// runs), on the calling thread so validateDefinition can stay synchronous. The wasm module is
// loaded once when this module is imported (top-level await, ~10 ms). The check evaluates the
// source as an expression — for a function expression that creates a closure and runs nothing —
// in a fresh runtime with no host functions, a 16 MiB heap (48 MiB wasm memory cap) and a
// 100 ms interrupt deadline, so a hostile source (a comma expression that loops or allocates)
// costs at most that once, at registration.
import { newQuickJSWASMModuleFromVariant, newVariant, RELEASE_SYNC } from 'quickjs-emscripten';

const CHECK_MEMORY_BYTES = 16 * 1024 * 1024;
// The heap limit does not cover ArrayBuffer contents: cap the wasm memory itself (16 MiB base
// of the build + twice the heap limit).
// The project compiles without the DOM lib, which is where TypeScript declares WebAssembly.
const Wasm = (
  globalThis as unknown as {
    WebAssembly: {
      Memory: new (d: { initial: number; maximum: number }) => { readonly buffer: ArrayBuffer };
    };
  }
).WebAssembly;
const wasmMemory = new Wasm.Memory({ initial: 256, maximum: 256 + (2 * CHECK_MEMORY_BYTES) / 65_536 });
const QuickJS = await newQuickJSWASMModuleFromVariant(newVariant(RELEASE_SYNC, { wasmMemory }));

const CHECK_DEADLINE_MS = 100;

/** The expression the sandbox evaluates for a source (a trailing semicolon is tolerated). */
export function wrapSource(source: string): string {
  return `(${source.replace(/;\s*$/, '')}\n)`;
}

/** undefined when the source is a function expression QuickJS accepts, else why not. */
export function checkFunctionSource(source: string): string | undefined {
  const rt = QuickJS.newRuntime();
  rt.setMemoryLimit(CHECK_MEMORY_BYTES);
  rt.setMaxStackSize(256 * 1024);
  const deadline = Date.now() + CHECK_DEADLINE_MS;
  rt.setInterruptHandler(() => Date.now() > deadline);
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
      const o = (d && typeof d === 'object' ? d : {}) as {
        name?: unknown;
        message?: unknown;
        lineNumber?: unknown;
      };
      const name = typeof o.name === 'string' ? o.name : 'Error';
      const message = typeof o.message === 'string' ? o.message : String(d);
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
