// The selection stage (which completed traces become scoring jobs, and which traces are worth
// buffering at all), the deterministic sampler and MLflow-syntax filter strings.
export { type CompiledFilter, compileFilter } from './filter.ts';
export type { FilterClause, FilterField, FilterLiteral, FilterOp, SpanFieldKey, TraceFieldKey } from './filter-parse.ts';
export {
  FilterSyntaxError,
  MAX_FILTER_LENGTH,
  parseFilter,
  SPAN_STATUS_VALUES,
  TRACE_STATUS_VALUES,
} from './filter-parse.ts';
export { DEFAULT_SAMPLING_SALT, inclusionHash, inclusionProbability, isSelected, isSelectedId } from './sampler.ts';
export {
  type ActiveScorer,
  type ActiveScorerSource,
  type JobAdmission,
  type SelectedJob,
  type SelectorOptions,
  TraceSelector,
  VIEW_BYTES_PER_WIRE_BYTE,
} from './selector.ts';
