// The code-scorer sandbox: QuickJS (wasm) on worker threads with CPU-time and memory limits,
// the registration-time source check, and the host side of a call (ctx in, feedbacks out); and
// the Python sandbox (Pyodide on the same pool, python.ts).
export { aggregate, type CodeFeedback, readCodeResult, sandboxInput, sourceMayReadTrace } from './code-scorer.ts';
export { CHECK_CPU_MS, checkFunctionSource, wrapSource } from './compile.ts';
export { PYTHON_SANDBOX_DEFAULTS, type PythonJob, PythonSandbox } from './python.ts';
export {
  SANDBOX_DEFAULTS,
  type SandboxJob,
  type SandboxOptions,
  type SandboxOutcome,
  SandboxPool,
  type SandboxStats,
} from './pool.ts';
