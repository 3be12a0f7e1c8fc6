// Deterministic assessment ids: the same (trace, span, scorer version, assessment name) always
// yields the same id, so a replay, a retry or a backfill of a job never duplicates a verdict.
import { createHash } from 'node:crypto';

/**
 * `a-` + the first 32 hex digits (128 bits) of sha256 over the five fields. The fields are
 * JSON-encoded as an array so that no choice of separator can make two tuples collide
 * (("a|b", "c") vs ("a", "b|c")).
 */
export function assessmentId(
  traceId: string,
  spanId: string,
  scorerName: string,
  scorerVersion: number,
  assessmentName: string,
): string {
  const key = JSON.stringify([
    traceId.toLowerCase(),
    spanId.toLowerCase(),
    scorerName,
    scorerVersion,
    assessmentName,
  ]);
  return `a-${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;
}
