// Assessments as OpenTelemetry data, so every trace backend shows the verdict inside the trace:
// a `gen_ai.evaluation.result` log record linked to the evaluated span, and an
// `evaluation {name}` span that is a child of the evaluated span. Both carry the same
// attributes (OTel GenAI evaluation semconv plus scorecar.* extras).
import { createHash } from 'node:crypto';
import { otlpType, TYPE } from '../wire/index.ts';
import type { Assessment } from './types.ts';

export const EVALUATION_EVENT = 'gen_ai.evaluation.result';

type KV = { key: string; value: Record<string, unknown> };

const str = (key: string, v: string): KV => ({ key, value: { stringValue: v } });
const dbl = (key: string, v: number): KV => ({ key, value: { doubleValue: v } });
const int = (key: string, v: number): KV => ({ key, value: { intValue: v } });

/** The numeric score OTel's `gen_ai.evaluation.score.value` wants: yes/no and booleans as 1/0. */
export function scoreValue(a: Assessment): number | undefined {
  const v = a.value;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === 'yes') return 1;
  if (v === 'no') return 0;
  return undefined;
}

/** The label: yes/no, a string verdict, the prompt judge's chosen category, or true/false. */
export function scoreLabel(a: Assessment): string | undefined {
  const v = a.value;
  if (a.metadata['scorecar.label'] !== undefined) return a.metadata['scorecar.label'];
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return String(v);
  return undefined;
}

export function assessmentAttributes(a: Assessment): KV[] {
  const attrs: KV[] = [str('gen_ai.evaluation.name', a.name)];
  const value = scoreValue(a);
  if (value !== undefined) attrs.push(dbl('gen_ai.evaluation.score.value', value));
  const label = scoreLabel(a);
  if (label !== undefined) attrs.push(str('gen_ai.evaluation.score.label', label));
  if (a.rationale !== undefined) attrs.push(str('gen_ai.evaluation.explanation', a.rationale));
  if (a.error) {
    attrs.push(str('error.type', a.error.code));
    attrs.push(str('scorecar.error.message', a.error.message));
  }
  attrs.push(
    str('scorecar.assessment_id', a.assessmentId),
    str('scorecar.experiment_id', a.experimentId),
    str('scorecar.scorer.name', a.scorer.name),
    int('scorecar.scorer.version', a.scorer.version),
    str('scorecar.source.type', a.source.type),
    str('scorecar.source.id', a.source.id),
    dbl('scorecar.sample_rate', a.sampleRate),
  );
  if (typeof a.value === 'string' && label !== a.value) attrs.push(str('scorecar.value', a.value));
  for (const [k, v] of Object.entries(a.metadata)) {
    if (k === 'scorecar.label') continue;
    attrs.push(str(k.startsWith('scorecar.') ? k : `scorecar.metadata.${k}`, v));
  }
  return attrs;
}

const RESOURCE = { attributes: [str('service.name', 'scorecar'), str('telemetry.sdk.name', 'scorecar')] };

const msToNs = (ms: number): bigint => BigInt(Math.round(ms)) * 1_000_000n;

/** Deterministic span id of an assessment's evaluation span, so a replay re-sends the same span. */
export function evaluationSpanId(assessmentId: string): Buffer {
  const b = createHash('sha256').update(`span:${assessmentId}`).digest().subarray(0, 8);
  if (b.every((x) => x === 0)) b[7] = 1;
  return Buffer.from(b);
}

export interface EmittedAssessment {
  assessment: Assessment;
  /** When scoring of this job started (evaluation span start), epoch ms. */
  startedMs: number;
}

export function encodeAssessmentLogs(items: readonly EmittedAssessment[], scopeVersion: string): Buffer {
  const logRecords = items.map(({ assessment: a }) => {
    const t = msToNs(Date.parse(a.createdAt));
    return {
      timeUnixNano: t,
      observedTimeUnixNano: t,
      severityNumber: a.error ? 17 : 9,
      severityText: a.error ? 'ERROR' : 'INFO',
      eventName: EVALUATION_EVENT,
      traceId: Buffer.from(a.traceId, 'hex'),
      spanId: Buffer.from(a.spanId, 'hex'),
      attributes: assessmentAttributes(a),
    };
  });
  const type = otlpType(TYPE.logsRequest);
  const msg = type.fromObject({
    resourceLogs: [{ resource: RESOURCE, scopeLogs: [{ scope: { name: 'scorecar', version: scopeVersion }, logRecords }] }],
  });
  return Buffer.from(type.encode(msg).finish());
}

export function encodeEvaluationSpans(items: readonly EmittedAssessment[], scopeVersion: string): Buffer {
  const spans = items.map(({ assessment: a, startedMs }) => {
    const end = Date.parse(a.createdAt);
    return {
      traceId: Buffer.from(a.traceId, 'hex'),
      spanId: evaluationSpanId(a.assessmentId),
      parentSpanId: Buffer.from(a.spanId, 'hex'),
      name: `evaluation ${a.name}`,
      kind: 1,
      startTimeUnixNano: msToNs(Math.min(startedMs, end)),
      endTimeUnixNano: msToNs(end),
      attributes: assessmentAttributes(a),
      status: a.error ? { code: 2, message: a.error.message.slice(0, 1024) } : { code: 0 },
    };
  });
  const type = otlpType(TYPE.traceRequest);
  const msg = type.fromObject({
    resourceSpans: [{ resource: RESOURCE, scopeSpans: [{ scope: { name: 'scorecar', version: scopeVersion }, spans }] }],
  });
  return Buffer.from(type.encode(msg).finish());
}
