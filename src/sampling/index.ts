// Which traces each scorer sees: the deterministic sampler and MLflow-syntax filter strings.
export type { CompiledFilter } from './filter.ts';
export { compileFilter } from './filter.ts';
export type {
  FilterClause,
  FilterField,
  FilterLiteral,
  FilterOp,
  SpanFieldKey,
  TraceFieldKey,
} from './filter-parse.ts';
export {
  FilterSyntaxError,
  MAX_FILTER_LENGTH,
  parseFilter,
  SPAN_STATUS_VALUES,
  TRACE_STATUS_VALUES,
} from './filter-parse.ts';
export { DEFAULT_SAMPLING_SALT, inclusionHash, inclusionProbability, isSelected } from './sampler.ts';
