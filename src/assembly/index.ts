export { Assembler, type AssemblerCounters, type AssemblerOptions, SPAN_OVERHEAD_BYTES, TRACE_OVERHEAD_BYTES } from './assembler.ts';
export { type CollectOptions, tracesFromRequest } from './collect.ts';
export type { CompleteTrace, CompletionReason, TraceConsumer } from './types.ts';
