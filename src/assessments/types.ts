// Assessment: the verdict of one scorer on one trace (or span), MLflow Feedback-compatible.

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
