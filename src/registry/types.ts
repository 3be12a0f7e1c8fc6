// Scorer definitions and registry records: the REST resource shapes of DESIGN.md.
import type { TraceView } from '../genai/types.ts';

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

// ---------------------------------------------------------------------------------------------
// Registry rules and records shared by the store, the REST API, the SDK and the CLI.

/**
 * Scorer names: 1–64 characters, a letter or digit first, then letters, digits, `_`, `.`, `-`.
 * Safe in URLs, file names, metric labels and Kafka headers without escaping.
 */
export const SCORER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/**
 * Experiment ids: 1–128 characters, a letter or digit first, then letters, digits and
 * `_ . - : @ /` (MLflow numeric ids and OTel `service.name` values such as `chat-app` or
 * `shop/checkout` fit; `/` must be percent-encoded in URLs).
 */
export const EXPERIMENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}$/;
/** Databricks documents at most 20 monitored scorers per experiment; the 21st name is refused. */
export const MAX_SCORERS_PER_EXPERIMENT = 20;
/** Longest filter string accepted (characters; the same bound as src/sampling's parser). */
export const MAX_FILTER_LENGTH = 10_000;

/** An experiment known to the registry (created on the first registration in it). */
export interface Experiment {
  experimentId: string;
  /** Scorer names currently registered (at most MAX_SCORERS_PER_EXPERIMENT). */
  scorerCount: number;
  /** How many of them have sampleRate > 0. */
  activeCount: number;
  createdAt: string;
}

/** A parsed filter string, as src/sampling's compileFilter returns it. */
export interface CompiledFilter {
  readonly text: string;
  matches(view: TraceView): boolean;
}

/**
 * What the pipeline runs: the latest version of one active scorer (sampleRate > 0) with its
 * filter compiled once per registry change. Frozen; replaced (never mutated) on every change.
 */
export interface ActiveScorer {
  readonly experimentId: string;
  readonly name: string;
  readonly version: number;
  readonly definition: ScorerDefinition;
  /** In (0, 1]: the inclusion probability every assessment records. */
  readonly sampleRate: number;
  readonly filterString: string | null;
  /** null = every trace of the experiment matches. */
  readonly filter: CompiledFilter | null;
  readonly updatedAt: string;
}

/** Result of deleting one version or all versions of a scorer. */
export interface DeleteResult {
  experimentId: string;
  name: string;
  /** Versions removed, ascending. */
  deletedVersions: number[];
  /** True when no version is left and the name (with its sampling config) is gone. */
  nameRemoved: boolean;
}
