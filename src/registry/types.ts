// Scorer definitions and registry records: the REST resource shapes of DESIGN.md.

export const BUILTIN_JUDGES = [
  'safety',
  'relevance_to_query',
  'correctness',
  'guidelines',
  'expectations_guidelines',
  'retrieval_groundedness',
  'retrieval_relevance',
  'retrieval_sufficiency',
  'equivalence',
] as const;
export type BuiltinJudge = (typeof BUILTIN_JUDGES)[number];

export const AGGREGATIONS = ['mean', 'min', 'max', 'median', 'variance', 'p90'] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];

export interface BuiltinDefinition {
  type: 'builtin';
  judge: BuiltinJudge;
  model?: string;
  /** For judge = guidelines. */
  guidelines?: string[];
}
export interface GuidelinesDefinition {
  type: 'guidelines';
  guidelines: string[];
  model?: string;
}
export interface PromptDefinition {
  type: 'prompt';
  promptTemplate: string;
  numericValues?: Record<string, number>;
  model?: string;
}
export type FeedbackValueType = 'yes_no' | 'bool' | 'number' | 'string';
export interface JudgeDefinition {
  type: 'judge';
  instructions: string;
  feedbackValueType?: FeedbackValueType;
  model?: string;
}
export interface CodeDefinition {
  type: 'code';
  source: string;
  aggregations?: Aggregation[];
}
export type ScorerDefinition =
  | BuiltinDefinition
  | GuidelinesDefinition
  | PromptDefinition
  | JudgeDefinition
  | CodeDefinition;

export type ScorerStatus = 'registered' | 'active' | 'stopped';

/** One immutable version of a scorer plus its current sampling config (REST resource). */
export interface Scorer {
  experimentId: string;
  name: string;
  version: number;
  definition: ScorerDefinition;
  /** 0 = not running. */
  sampleRate: number;
  filterString: string | null;
  status: ScorerStatus;
  /** ISO-8601. */
  createdAt: string;
  updatedAt: string;
}
