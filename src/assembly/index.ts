// Trace assembly: spans (and the log records carrying their trace id) grouped by trace id until
// the trace is complete, bounded by bytes, with the decision cache that recognises late spans;
// and the timer-free grouping of one request.
export {
  Assembler,
  type AssemblerCounters,
  type AssemblerDeps,
  type AssemblerOptions,
  LOG_OVERHEAD_BYTES,
  SPAN_OVERHEAD_BYTES,
  TRACE_OVERHEAD_BYTES,
} from './assembler.ts';
export { type CollectOptions, tracesFromRequest } from './collect.ts';
export type { CompleteTrace, CompletionReason, TraceInterest } from './types.ts';
