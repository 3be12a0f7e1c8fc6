// A registered scorer as the REST API, the SDK, the CLI and the pipeline see it, and the rules
// on its names. The registry stores these; the selection stage and the scoring engine carry the
// immutable part (ScorerVersion) in every job, so a job needs no registry lookup.
import type { ScorerDefinition } from './schema.ts';

/** One immutable version of a scorer: what a scoring job runs. */
export interface ScorerVersion {
  experimentId: string;
  name: string;
  version: number;
  definition: ScorerDefinition;
}

export type ScorerStatus = 'registered' | 'active' | 'stopped';

/** One immutable version of a scorer plus its current sampling config (REST resource). */
export interface Scorer extends ScorerVersion {
  /** 0 = not running. */
  sampleRate: number;
  filterString: string | null;
  status: ScorerStatus;
  /** ISO-8601. */
  createdAt: string;
  updatedAt: string;
}

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
/** Longest filter string accepted (characters). */
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

/** Result of deleting one version or all versions of a scorer. */
export interface DeleteResult {
  experimentId: string;
  name: string;
  /** Versions removed, ascending. */
  deletedVersions: number[];
  /** True when no version is left and the name (with its sampling config) is gone. */
  nameRemoved: boolean;
}
