// Assessment: the verdict of one scorer on one trace (or span), MLflow Feedback-compatible.
import type { Usage } from '../util/index.ts';

export type AssessmentSourceType = 'LLM_JUDGE' | 'CODE';
export type AssessmentValue = string | number | boolean | null;

export interface Assessment {
  /** Deterministic: hash of (traceId, spanId, scorer name, scorer version, assessment name). */
  assessmentId: string;
  name: string;
  traceId: string;
  spanId: string;
  experimentId: string;
  scorer: { name: string; version: number };
  source: { type: AssessmentSourceType; id: string };
  value: AssessmentValue;
  rationale?: string;
  error?: { code: string; message: string };
  /** String map, as MLflow Feedback metadata. */
  metadata: Record<string, string>;
  /** Inclusion probability of the trace under this scorer's sampling. */
  sampleRate: number;
  /** ISO-8601. */
  createdAt: string;
}

/**
 * An assessment as the scoring engine hands it on: with the judge usage it cost, typed (the
 * `scorecar.usage.*` metadata strings are its public form, written once and never parsed back).
 */
export interface ScoredAssessment {
  assessment: Assessment;
  /** Judge calls only. */
  usage?: Usage | undefined;
  /** How long the scoring job took (ms; the same for every assessment of one job), when measured. */
  latencyMs?: number | undefined;
}
