// Host side of the Python scorer sandbox: a SandboxPool (pool.ts: fair scheduling between
// scorers, CPU-time and memory limits, hard deadline, replacement of dead workers) whose workers
// run python-worker.ts (Pyodide) instead of QuickJS. Workers start on first use, on their own
// threads: loading the interpreter (about 2 s of CPU time each) never runs on the event loop, so
// receivers are not held up; calls that arrive meanwhile wait in the pool's queue.
import { type SandboxJob, type SandboxOptions, type SandboxOutcome, SandboxPool, type SandboxStats } from './pool.ts';

/** `scoring.python`. */
export const PYTHON_SANDBOX_DEFAULTS = {
  timeoutMs: 2_000,
  memoryBytes: 128 * 1024 * 1024,
  workers: 1,
} as const;

/** Loading Pyodide takes seconds of CPU; on a loaded machine, much longer in wall time. */
const PYTHON_STARTUP_TIMEOUT_MS = 180_000;

function pythonWorkerUrl(): URL {
  return new URL(import.meta.url.endsWith('.ts') ? './python-worker.ts' : './python-worker.js', import.meta.url);
}

export interface PythonJob {
  /** The scorer (experiment + name): calls are scheduled fairly between keys. */
  key: string;
  /** The kept namespace this call runs in: one per scorer version. */
  context: string;
  source: string;
  /** The function to call; default the last top-level def. */
  function?: string | undefined;
  ctxJson: string;
  traceJson: string | null;
}

export class PythonSandbox {
  private readonly pool: SandboxPool;

  constructor(opts: SandboxOptions = {}, internals: { wallClockStepMs?: number } = {}) {
    this.pool = new SandboxPool(
      {
        timeoutMs: opts.timeoutMs ?? PYTHON_SANDBOX_DEFAULTS.timeoutMs,
        memoryBytes: opts.memoryBytes ?? PYTHON_SANDBOX_DEFAULTS.memoryBytes,
        workers: opts.workers ?? PYTHON_SANDBOX_DEFAULTS.workers,
        ...(opts.hardDeadlineMs === undefined ? {} : { hardDeadlineMs: opts.hardDeadlineMs }),
        ...(opts.maxResultBytes === undefined ? {} : { maxResultBytes: opts.maxResultBytes }),
      },
      { ...internals, workerUrl: pythonWorkerUrl(), startupTimeoutMs: PYTHON_STARTUP_TIMEOUT_MS },
    );
  }

  get timeoutMs(): number {
    return this.pool.timeoutMs;
  }

  run(job: PythonJob, signal?: AbortSignal): Promise<SandboxOutcome> {
    const j: SandboxJob = {
      key: job.key,
      // The worker reads the function to call after \u0001 (python-worker.ts).
      context: `${job.context}\u0001${job.function ?? ''}`,
      source: job.source,
      ctxJson: job.ctxJson,
      traceJson: job.traceJson,
    };
    return this.pool.run(j, signal);
  }

  /**
   * Registration-time check: compiles the source (nothing runs) and finds the function. Undefined
   * when it is fine, else what is wrong ("does not compile: invalid syntax (line 2)").
   */
  async check(source: string, fn?: string): Promise<string | undefined> {
    const out = await this.pool.run({ key: '\u0000check', context: `check\u0000${fn ?? ''}`, source, ctxJson: '{}', traceJson: null });
    if (!out.ok) return `could not be checked (${out.message})`;
    const problem = (JSON.parse(out.json) as { problem?: string }).problem ?? '';
    return problem === '' ? undefined : problem;
  }

  stats(): SandboxStats {
    return this.pool.stats();
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
