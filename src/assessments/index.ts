// Assessments: the model, deterministic ids, the store, OTLP encoding and the emitter.
export { type AssessmentListener, AssessmentEmitter, MAX_UNSTORED, type EmitItem, type OtlpSink } from './emitter.ts';
export { assessmentId } from './id.ts';
export {
  assessmentAttributes,
  EVALUATION_EVENT,
  type EmittedAssessment,
  encodeAssessmentLogs,
  encodeEvaluationSpans,
  evaluationSpanId,
  scoreLabel,
  scoreValue,
} from './otlp.ts';
export { PostgresAssessmentStore } from './postgres.ts';
export {
  type AggregateQuery,
  type AggregateRow,
  ASSESSMENTS_FILE_NAME,
  type AssessmentStore,
  type RecentQuery,
  SqliteAssessmentStore,
  type UsageTotals,
} from './store.ts';
export type { Assessment, AssessmentSourceType, AssessmentValue, ScoredAssessment } from './types.ts';
