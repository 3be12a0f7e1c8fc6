// Scoring jobs on the wire: proto/scorecar/v1/scoring_job.proto. A sidecar in kafka mode turns
// each SelectedJob (with its trace's encoded spans and log records) into a ScoringJob message; a
// worker turns the message back into a SelectedJob by rebuilding the trace's GenAI view from the
// OTLP bytes, under its own genai.viewLimits (workers share the sidecar's config for that).
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { type CompleteTrace, tracesFromRequest } from '../assembly/index.ts';
import { type ScorerVersion, validateDefinition } from '../definitions/index.ts';
import { buildTraceView } from '../genai/index.ts';
import type { SelectedJob } from '../select/index.ts';
import { ScorecarError } from '../util/index.ts';
import { encodeSpans, ViewDecoder, type ViewLimits } from '../wire/index.ts';

/** The schema this build writes and the only one it reads. */
export const JOB_SCHEMA_VERSION = 1;
/** Kafka header naming the schema version of a message's value (jobs and assessments). */
export const SCHEMA_VERSION_HEADER = 'scorecar.schema.version';

const COMPLETIONS = new Set<CompleteTrace['reason']>(['root', 'idle', 'max_age', 'shutdown']);

export interface JobMessage {
  jobId: string;
  traceId: string;
  experimentId: string;
  scorer: ScorerVersion;
  sampleRate: number;
  completion: CompleteTrace['reason'];
  /** ExportTraceServiceRequest bytes. */
  spans: Uint8Array;
  /** ExportLogsServiceRequest bytes; empty when the trace had no log records. */
  logs: Uint8Array;
  experimentHeader: string | undefined;
  selectedUnixMs: number;
}

let jobType: protobuf.Type | undefined;

function type(): protobuf.Type {
  if (!jobType) {
    const root = new protobuf.Root();
    root.loadSync(fileURLToPath(new URL('../../proto/scorecar/v1/scoring_job.proto', import.meta.url)), {
      keepCase: false,
    });
    jobType = root.lookupType('scorecar.v1.ScoringJob');
  }
  return jobType;
}

/** Deterministic: the same (trace, scorer version) selected twice is the same job. */
export function jobId(traceId: string, experimentId: string, scorer: string, version: number): string {
  return createHash('sha256')
    .update(JSON.stringify([traceId.toLowerCase(), experimentId, scorer, version]))
    .digest('hex')
    .slice(0, 32);
}

/** The message of a selected job; it must carry its trace (the selector's keepTrace). */
export function jobMessage(job: SelectedJob, nowMs: number): JobMessage {
  const t = job.trace;
  if (!t)
    throw new ScorecarError('INTERNAL', 'a job for Kafka must carry its trace (TraceSelector keepTrace)');
  const logs = t.logs ?? [];
  const withLogs =
    logs.length > 0 && t.logResources?.length === logs.length && t.logScopes?.length === logs.length;
  const { scorer } = job;
  return {
    jobId: jobId(t.traceId, scorer.experimentId, scorer.name, scorer.version),
    traceId: t.traceId,
    experimentId: scorer.experimentId,
    scorer,
    sampleRate: job.sampleRate,
    completion: job.completion,
    // Re-framed, never re-encoded: each span's bytes are as the app sent them.
    spans: encodeSpans(t.spans, t.resources, t.scopes),
    // ResourceLogs/ScopeLogs frame records exactly as ResourceSpans/ScopeSpans frame spans.
    logs: withLogs ? encodeSpans(logs, t.logResources!, t.logScopes!) : new Uint8Array(0),
    experimentHeader: t.resources[0]?.experimentHeader,
    selectedUnixMs: nowMs,
  };
}

export function encodeJob(j: JobMessage): Buffer {
  const t = type();
  const msg = t.fromObject({
    schemaVersion: JOB_SCHEMA_VERSION,
    jobId: j.jobId,
    traceId: j.traceId,
    experimentId: j.experimentId,
    scorer: {
      experimentId: j.scorer.experimentId,
      name: j.scorer.name,
      version: j.scorer.version,
      definitionJson: JSON.stringify(j.scorer.definition),
    },
    sampleRate: j.sampleRate,
    completion: j.completion,
    spans: j.spans,
    logs: j.logs,
    experimentHeader: j.experimentHeader ?? '',
    selectedUnixMs: j.selectedUnixMs,
  });
  return Buffer.from(t.encode(msg).finish());
}

const invalid = (why: string, cause?: unknown): ScorecarError =>
  new ScorecarError(
    'INVALID_JOB',
    `not a scoring job this worker can run: ${why}`,
    cause === undefined ? {} : { cause },
  );

/** Decodes and checks a job message; throws INVALID_JOB for anything a worker cannot run. */
export function decodeJob(bytes: Uint8Array): JobMessage {
  let o: Record<string, unknown>;
  try {
    o = type().toObject(type().decode(bytes), { longs: Number, defaults: true }) as Record<string, unknown>;
  } catch (e) {
    throw invalid('the value is not a scorecar.v1.ScoringJob', e);
  }
  if (o.schemaVersion !== JOB_SCHEMA_VERSION)
    throw invalid(`schema version ${String(o.schemaVersion)} (this worker reads ${JOB_SCHEMA_VERSION})`);
  const s = (o.scorer ?? {}) as Record<string, unknown>;
  let def: unknown;
  try {
    def = JSON.parse(String(s.definitionJson ?? ''));
  } catch (e) {
    throw invalid('the scorer definition is not JSON', e);
  }
  const v = validateDefinition(def);
  if (!v.ok)
    throw invalid(
      `the scorer definition is invalid (${v.errors.map((e) => `${e.path}: ${e.message}`).join('; ')})`,
    );
  const traceId = String(o.traceId ?? '');
  if (!/^[0-9a-f]{32}$/.test(traceId)) throw invalid('the trace id is not 32 lowercase hex characters');
  const completion = String(o.completion) as CompleteTrace['reason'];
  if (!COMPLETIONS.has(completion)) throw invalid(`unknown completion ${JSON.stringify(o.completion)}`);
  const sampleRate = Number(o.sampleRate);
  if (!(sampleRate > 0 && sampleRate <= 1)) throw invalid(`sample rate ${sampleRate} is not in (0, 1]`);
  const version = Number(s.version);
  if (!(Number.isInteger(version) && version >= 1) || !s.name || !s.experimentId)
    throw invalid('the scorer version is incomplete');
  return {
    jobId: String(o.jobId ?? ''),
    traceId,
    experimentId: String(o.experimentId ?? ''),
    scorer: { experimentId: String(s.experimentId), name: String(s.name), version, definition: v.definition },
    sampleRate,
    completion,
    spans: o.spans as Uint8Array,
    logs: o.logs as Uint8Array,
    experimentHeader: o.experimentHeader ? String(o.experimentHeader) : undefined,
    selectedUnixMs: Number(o.selectedUnixMs ?? 0),
  };
}

export interface ViewSettings {
  resolution: readonly string[];
  defaultExperiment: string;
  limits: Readonly<ViewLimits>;
}

/**
 * The job as the scoring engine takes it: the trace rebuilt from the job's bytes, its GenAI view
 * built under the view limits. The experiment is the sidecar's (it may have come from a request
 * header the bytes no longer carry).
 */
export function selectedJob(j: JobMessage, view: ViewSettings): SelectedJob {
  const traces = tracesFromRequest(j.spans, {
    reason: j.completion,
    ...(j.experimentHeader ? { experimentHeader: j.experimentHeader } : {}),
    ...(j.logs.length > 0 ? { logs: j.logs } : {}),
  });
  const trace = traces.find((t) => t.traceId === j.traceId);
  if (!trace) throw invalid(`the spans do not contain trace ${j.traceId}`);
  const dec = new ViewDecoder(view.limits);
  const built = buildTraceView(
    trace,
    { resolution: view.resolution, defaultExperiment: view.defaultExperiment },
    dec,
  );
  built.experimentId = j.experimentId;
  return {
    view: built,
    scorer: j.scorer,
    sampleRate: j.sampleRate,
    completion: j.completion,
    approxBytes: built.approxBytes ?? trace.wireBytes * 3,
  };
}
