// MLflow as a destination (exporters.mlflow): every completed trace of a mapped experiment goes to
// the MLflow server's OTLP endpoint (POST /v1/traces, protobuf, x-mlflow-experiment-id), and every
// assessment scorecar emits on it is logged there as MLflow Feedback (POST
// /api/3.0/mlflow/traces/tr-<id>/assessments) with the fields and metadata keys MLflow's own
// online scorer writes (source LLM_JUDGE/CODE, rationale, error, mlflow.assessment.scorerName,
// scorerVersion, judge tokens), so MLflow's UI and client read them as its own.
//
// Delivery: one bounded queue, a few requests in flight, each retried with exponential backoff
// and jitter (exporters.mlflow.retry) on network errors, 429 and 5xx, until retry.maxElapsedMs;
// other 4xx are permanent (counted, logged once per status). A feedback waits for its trace's
// export, and 404 (the trace not stored yet: MLflow logs spans asynchronously) is retried too.
// Idempotent: every feedback carries scorecar's deterministic assessment id in its metadata
// (scorecar.assessment_id), and before each POST the trace's assessments are read back, so a
// retry after a lost answer, a replay or a backfill never logs the same feedback twice.
import type { CompleteTrace } from '../assembly/index.ts';
import type { Assessment } from '../assessments/index.ts';
import type { MlflowExporterConfig } from '../config/index.ts';
import { encodeSpans } from '../wire/index.ts';
import { type Counter, errorMessage, jitteredInterval, type Logger, type MetricsRegistry, parseRetryAfter, silentLogger } from '../util/index.ts';

/** Metadata key carrying scorecar's assessment id on the MLflow side (the idempotency key). */
export const ASSESSMENT_ID_KEY = 'scorecar.assessment_id';

/** Metadata keys MLflow's online scorer writes on its feedback (read from its own store). */
export const MLFLOW_FEEDBACK_KEYS = {
  scorerName: 'mlflow.assessment.scorerName',
  scorerVersion: 'mlflow.assessment.scorerVersion',
  judgeInputTokens: 'mlflow.assessment.judgeInputTokens',
  judgeOutputTokens: 'mlflow.assessment.judgeOutputTokens',
} as const;

type Task =
  | { kind: 'trace'; traceId: string; experiment: string; body: Buffer; attempt: number; firstMs: number }
  | { kind: 'feedback'; assessment: Assessment; experiment: string; attempt: number; firstMs: number };

/** MLflow's trace id of an OTel trace id. */
export function mlflowTraceId(hex: string): string {
  return `tr-${hex}`;
}

/** The Feedback MLflow's create-assessment endpoint takes for an assessment of ours. */
export function feedbackJson(a: Assessment): Record<string, unknown> {
  const metadata: Record<string, string> = {
    ...a.metadata,
    [ASSESSMENT_ID_KEY]: a.assessmentId,
    [MLFLOW_FEEDBACK_KEYS.scorerName]: a.scorer.name,
    [MLFLOW_FEEDBACK_KEYS.scorerVersion]: String(a.scorer.version),
    'scorecar.sample_rate': String(a.sampleRate),
  };
  const inTok = a.metadata['scorecar.usage.input_tokens'];
  const outTok = a.metadata['scorecar.usage.output_tokens'];
  if (inTok !== undefined) metadata[MLFLOW_FEEDBACK_KEYS.judgeInputTokens] = inTok;
  if (outTok !== undefined) metadata[MLFLOW_FEEDBACK_KEYS.judgeOutputTokens] = outTok;
  const feedback: Record<string, unknown> = { value: a.value ?? null };
  if (a.error) feedback.error = { error_code: a.error.code, error_message: a.error.message };
  const out: Record<string, unknown> = {
    assessment_name: a.name,
    trace_id: mlflowTraceId(a.traceId),
    span_id: a.spanId,
    source: { source_type: a.source.type, source_id: a.source.id },
    create_time: a.createdAt,
    last_update_time: a.createdAt,
    feedback,
    metadata,
    valid: true,
  };
  if (a.rationale !== undefined) out.rationale = a.rationale;
  return { assessment: out };
}

class HttpStatusError extends Error {
  readonly status: number;
  readonly retryAfterMs: number | undefined;
  constructor(status: number, message: string, retryAfterMs: number | undefined) {
    super(message);
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

export interface MlflowExporterOptions {
  config: MlflowExporterConfig;
  metrics: MetricsRegistry;
  log?: Logger;
  /** Requests in flight at once (default 4). */
  concurrency?: number;
}

export class MlflowExporter {
  private readonly c: MlflowExporterConfig;
  private readonly log: Logger;
  private readonly base: string;
  private readonly queue: Task[] = [];
  private readonly concurrency: number;
  private inFlight = 0;
  /** Feedback waiting (outside the request slots) for its trace's export to finish. */
  private parked = 0;
  private readonly waiting = new Set<NodeJS.Timeout>();
  /** Exports of traces not finished yet, by trace id: their feedback waits for them. */
  private readonly traceExports = new Map<string, Promise<void>>();
  private readonly idle = new Set<() => void>();
  private closed = false;
  private readonly m: { sent: Counter; failed: Counter; dropped: Counter; retries: Counter };
  private readonly loggedStatus = new Set<string>();

  constructor(opts: MlflowExporterOptions) {
    this.c = opts.config;
    this.log = opts.log ?? silentLogger;
    this.base = opts.config.trackingUri.replace(/\/+$/, '');
    this.concurrency = opts.concurrency ?? 4;
    const m = opts.metrics;
    this.m = {
      sent: m.counter('scorecar_mlflow_export_sent_total', 'Traces and feedback the MLflow server accepted', ['kind']),
      failed: m.counter('scorecar_mlflow_export_failed_total', 'Traces and feedback given up on (permanent refusal or retries exhausted)', ['kind', 'reason']),
      dropped: m.counter('scorecar_mlflow_export_dropped_total', 'Traces and feedback dropped because the MLflow queue was full', ['kind']),
      retries: m.counter('scorecar_mlflow_export_retries_total', 'Retried requests to the MLflow server', ['kind']),
    };
    m.gauge('scorecar_mlflow_export_queue', 'Requests waiting for the MLflow server', [], () => this.queue.length + this.waiting.size);
  }

  get enabled(): boolean {
    return this.base !== '';
  }

  /** The MLflow experiment id of a scorecar experiment; undefined = not sent. */
  experimentOf(experimentId: string): string | undefined {
    const map = this.c.experimentMapping;
    if (Object.hasOwn(map, experimentId)) return map[experimentId];
    return Object.hasOwn(map, '*') ? map['*'] : undefined;
  }

  /** Whether traces of this experiment are exported (the assembler buffers them). */
  wantsExperiment(experimentId: string): boolean {
    return this.enabled && !this.closed && this.experimentOf(experimentId) !== undefined;
  }

  start(): void {}

  /** A completed trace of a mapped experiment: to MLflow's OTLP endpoint. */
  consumeTrace(trace: CompleteTrace, experimentId: string): void {
    const experiment = this.experimentOf(experimentId);
    if (!this.enabled || this.closed || experiment === undefined || trace.spans.length === 0) return;
    const body = encodeSpans(trace.spans, trace.resources, trace.scopes);
    this.enqueue({ kind: 'trace', traceId: trace.traceId, experiment, body, attempt: 0, firstMs: Date.now() });
  }

  /** An emitted assessment (an AssessmentListener): to MLflow as Feedback on its trace. */
  readonly onAssessment = (a: Assessment): void => {
    const experiment = this.experimentOf(a.experimentId);
    if (!this.enabled || this.closed || experiment === undefined) return;
    this.enqueue({ kind: 'feedback', assessment: a, experiment, attempt: 0, firstMs: Date.now() });
  };

  /** Resolves once nothing is queued, waiting for a retry or in flight. */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idle.add(resolve));
  }

  private isIdle(): boolean {
    return this.queue.length === 0 && this.inFlight === 0 && this.waiting.size === 0 && this.parked === 0;
  }

  private enqueue(t: Task): void {
    if (this.queue.length >= this.c.queueSize) {
      // The oldest goes: what is queued longest is most likely to find MLflow still down.
      const old = this.queue.shift()!;
      this.m.dropped.inc({ kind: old.kind });
      this.settleTrace(old);
    }
    if (t.kind === 'trace' && t.attempt === 0) {
      let done!: () => void;
      const p = new Promise<void>((r) => {
        done = r;
      });
      (t as { done?: () => void }).done = done;
      this.traceExports.set(t.traceId, p);
    }
    this.queue.push(t);
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.queue.length > 0) {
      const t = this.queue.shift()!;
      const pending = t.kind === 'feedback' ? this.traceExports.get(t.assessment.traceId) : undefined;
      if (pending) {
        // Its trace is still on its way (maybe retrying while MLflow is down): the feedback waits
        // without holding a request slot, or feedback could take every slot from the traces.
        this.parked++;
        void pending.then(() => {
          this.parked--;
          if (!this.closed) this.queue.push(t);
          this.pump();
          this.notifyIdle();
        });
        continue;
      }
      this.inFlight++;
      void this.run(t).finally(() => {
        this.inFlight--;
        this.pump();
        this.notifyIdle();
      });
    }
  }

  private notifyIdle(): void {
    if (!this.isIdle()) return;
    for (const r of this.idle) r();
    this.idle.clear();
  }

  private async run(t: Task): Promise<void> {
    try {
      if (t.kind === 'trace') await this.sendTrace(t);
      else await this.sendFeedback(t);
      this.m.sent.inc({ kind: t.kind });
      this.settleTrace(t);
    } catch (e) {
      const status = e instanceof HttpStatusError ? e.status : 0;
      // 404 on a feedback: its trace is not stored yet (MLflow logs spans asynchronously).
      const retryable = status === 0 || status === 429 || status >= 500 || (status === 404 && t.kind === 'feedback');
      const elapsed = Date.now() - t.firstMs;
      if (retryable && !this.closed && elapsed < this.c.retry.maxElapsedMs) {
        const hint = e instanceof HttpStatusError ? e.retryAfterMs : undefined;
        const wait = Math.min(hint ?? jitteredInterval(this.c.retry, t.attempt), Math.max(0, this.c.retry.maxElapsedMs - elapsed));
        this.m.retries.inc({ kind: t.kind });
        const timer = setTimeout(() => {
          this.waiting.delete(timer);
          this.queue.unshift({ ...t, attempt: t.attempt + 1 });
          this.pump();
        }, wait);
        timer.unref();
        this.waiting.add(timer);
        return;
      }
      const reason = retryable ? 'retries_exhausted' : `http_${status}`;
      this.m.failed.inc({ kind: t.kind, reason });
      const key = `${t.kind}:${reason}`;
      if (!this.loggedStatus.has(key)) {
        this.loggedStatus.add(key);
        this.log.warn('MLflow export failed', { kind: t.kind, reason, err: errorMessage(e) });
      }
      this.settleTrace(t);
    }
  }

  private settleTrace(t: Task): void {
    if (t.kind !== 'trace') return;
    (t as { done?: () => void }).done?.();
    this.traceExports.delete(t.traceId);
  }

  private async request(method: string, path: string, body: Buffer | string | undefined, headers: Record<string, string>): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: { ...this.c.headers, ...headers },
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.timeout(this.c.timeoutMs),
      });
    } catch (e) {
      throw new HttpStatusError(0, `${method} ${path}: ${errorMessage(e)}`, undefined);
    }
    if (!res.ok) {
      const text = (await res.text().catch(() => '')).slice(0, 500);
      throw new HttpStatusError(res.status, `${method} ${path}: HTTP ${res.status} ${text}`, parseRetryAfter(res.headers.get('retry-after')));
    }
    return res;
  }

  private async sendTrace(t: Extract<Task, { kind: 'trace' }>): Promise<void> {
    const res = await this.request('POST', '/v1/traces', t.body, {
      'content-type': 'application/x-protobuf',
      'x-mlflow-experiment-id': t.experiment,
    });
    await res.arrayBuffer();
  }

  private async sendFeedback(t: Extract<Task, { kind: 'feedback' }>): Promise<void> {
    const a = t.assessment;
    const tid = mlflowTraceId(a.traceId);
    // Idempotency: is this assessment there already (a retry whose first answer was lost, a replay)?
    const info = await this.request('GET', `/api/3.0/mlflow/traces/${tid}?trace_id=${tid}`, undefined, {});
    const existing = ((await info.json()) as { trace?: { trace_info?: { assessments?: { metadata?: Record<string, string> }[] } } }).trace
      ?.trace_info?.assessments;
    if (existing?.some((x) => x.metadata?.[ASSESSMENT_ID_KEY] === a.assessmentId)) return;
    const res = await this.request('POST', `/api/3.0/mlflow/traces/${tid}/assessments`, JSON.stringify(feedbackJson(a)), {
      'content-type': 'application/json',
    });
    await res.arrayBuffer();
  }

  /** Stops taking new work and waits, until the deadline, for what is queued to be sent. */
  async shutdown(deadlineMs: number): Promise<void> {
    const left = deadlineMs - Date.now();
    if (left > 0 && !this.isIdle()) {
      await Promise.race([this.whenIdle(), new Promise((r) => setTimeout(r, left).unref())]);
    }
    this.closed = true;
    for (const t of this.waiting) clearTimeout(t);
    const lost = this.queue.length + this.waiting.size + this.parked;
    this.waiting.clear();
    this.queue.length = 0;
    if (lost > 0) this.log.warn('MLflow export: requests left unsent at shutdown', { lost });
  }
}
